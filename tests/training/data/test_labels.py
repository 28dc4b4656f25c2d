"""Loss masks token by token: only assistant content and its end-of-turn token are trained.

Expected flags come from hand-written renderings of each template (pieces marked trained or
not), never from the code under test: each token's position in the rendered text says which
piece it belongs to."""

import pytest
from transformers import AutoTokenizer

from training.data.labels import CHATML, encode_example, encode_examples, ensure_chat_template

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And Italy?"},
    {"role": "assistant", "content": "Rome, I think.", "weight": 0},
    {"role": "user", "content": "Sure?"},
    {"role": "assistant", "content": "Yes!\n"},
]

# (text, trained) pieces of the rendered conversation, written out by hand per template.
CHATML_PIECES = [
    ("<|im_start|>system\nBe brief.<|im_end|>\n", False),
    ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n", False),
    ("<|im_start|>assistant\n", False),
    ("Paris.<|im_end|>", True),
    ("\n<|im_start|>user\nAnd Italy?<|im_end|>\n", False),
    ("<|im_start|>assistant\nRome, I think.<|im_end|>\n", False),  # weight 0
    ("<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\n", False),
    ("Yes!\n<|im_end|>", True),
    ("\n", False),
]
LLAMA3_PIECES = [
    ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>", False),
    ("<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>", False),
    ("<|start_header_id|>assistant<|end_header_id|>\n\n", False),
    ("Paris.<|eot_id|>", True),
    ("<|start_header_id|>user<|end_header_id|>\n\nAnd Italy?<|eot_id|>", False),
    ("<|start_header_id|>assistant<|end_header_id|>\n\nRome, I think.<|eot_id|>", False),
    ("<|start_header_id|>user<|end_header_id|>\n\nSure?<|eot_id|>", False),
    ("<|start_header_id|>assistant<|end_header_id|>\n\n", False),
    ("Yes!\n<|eot_id|>", True),
]


def expected_flags(tokenizer, ids, pieces):
    """Per token: the trained flag of the hand-written piece the token starts in."""
    bounds, pos = [], 0
    for text, trained in pieces:
        bounds.append((pos, pos + len(text), trained))
        pos += len(text)
    flags, pos = [], 0
    for token in ids:
        flags.append(next(t for s, e, t in bounds if s <= pos < e))
        pos += len(tokenizer.decode([token]))
    assert pos == bounds[-1][1], "tokens do not decode back to the rendered text"
    return flags


@pytest.mark.parametrize(
    ("fixture", "pieces", "end"),
    [
        ("tiny_model_dir", CHATML_PIECES, "<|im_end|>"),
        ("tiny_llama3_model_dir", LLAMA3_PIECES, "<|eot_id|>"),
    ],
)
def test_assistant_only_mask_token_by_token(request, fixture, pieces, end):
    tok = AutoTokenizer.from_pretrained(request.getfixturevalue(fixture))
    rendered = tok.apply_chat_template(
        [{k: m[k] for k in ("role", "content")} for m in CONVERSATION], tokenize=False
    )
    assert rendered == "".join(text for text, _ in pieces)  # the hand-written pieces are right

    row = encode_example(tok, {"messages": CONVERSATION})
    ids, labels = row["input_ids"], row["labels"]
    assert ids == tok(rendered, add_special_tokens=False)["input_ids"]
    flags = expected_flags(tok, ids, pieces)
    for i, (token, label, trained) in enumerate(zip(ids, labels, flags, strict=True)):
        assert label == (token if trained else -100), (i, tok.decode([token]), label, trained)
    trained_text = tok.decode([t for t, f in zip(ids, flags, strict=True) if f])
    assert trained_text == f"Paris.{end}Yes!\n{end}"
    # the end-of-turn token is trained after each weighted assistant reply
    eot = tok.convert_tokens_to_ids(end)
    assert sum(1 for t, label in zip(ids, labels, strict=True) if t == eot and label == eot) == 2


def test_text_examples_train_every_token_plus_eos(tiny_tokenizer):
    row = encode_example(tiny_tokenizer, {"text": "The quick brown fox."})
    assert row["labels"] == row["input_ids"]
    assert row["input_ids"][-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(row["input_ids"]) == "The quick brown fox.<|im_end|>"


def test_truncation_and_examples_with_nothing_to_learn(tiny_tokenizer):
    long_prompt = {"role": "user", "content": "word " * 200}
    examples = [
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ]
        },
        {"messages": [long_prompt, {"role": "assistant", "content": "late"}]},  # answer cut off
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "x", "weight": 0},
            ]
        },
        {"text": "word " * 100},
    ]
    rows, stats = encode_examples(tiny_tokenizer, examples, max_length=32)
    assert stats["examples"] == 2 and stats["dropped_nothing_to_learn"] == 2
    assert stats["truncated"] == 2
    assert all(len(r["input_ids"]) <= 32 for r in rows)
    assert stats["trained_tokens"] == sum(sum(x != -100 for x in r["labels"]) for r in rows)


def test_tokenizer_without_template_gets_chatml(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    ensure_chat_template(tok)
    assert tok.chat_template == CHATML.replace("%END%", "<|im_end|>")
    row = encode_example(tok, {"messages": CONVERSATION[1:3]})
    trained = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tok.decode(trained) == "Paris.<|im_end|>"
