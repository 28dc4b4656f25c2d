"""Token counting: the fast paths (template skeletons, memoised chunks) agree with the full
tokenizer on adversarial text, and fall back when an assumption breaks."""

import random

import pytest

from tests.assets import CHATML, CORPUS, SPECIALS
from training.data import render_example
from training.data.tokens import TokenCounter, char_budget

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PIECES = list("ab xyz  \n\n\t.,!?'\"-()<>|0123456789éß中😀\u200b\u00a0\u3000") + [
    "<|im_end|>",
    "'s",
    " the",
    "\n\n\n",
    "   ",
    "quick brown fox",
]


@pytest.fixture(scope="module")
def split_tokenizer():
    """A Llama-3-style pipeline: regex Split, then byte-level without its own regex."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|pad|>"
    )
    fast.chat_template = CHATML
    return fast


def random_examples(seed: int, n: int = 400) -> list[dict]:
    rng = random.Random(seed)

    def text():
        return "".join(rng.choices(PIECES, k=rng.randint(1, 40)))

    out = []
    for _ in range(n):
        m = [{"role": "system", "content": text()}] if rng.random() < 0.5 else []
        for _ in range(rng.randint(1, 3)):
            m.append({"role": "user", "content": text()})
            reply = {"role": "assistant", "content": text()}
            out_weight = rng.random() < 0.2
            m.append({**reply, "weight": 0} if out_weight else reply)
        out.append({"messages": m})
    return out


def exact_counter(tokenizer) -> TokenCounter:
    counter = TokenCounter(tokenizer)
    counter.fast = None
    return counter


@pytest.mark.parametrize("which", ["tiny_tokenizer", "llama3", "split"])
def test_fast_path_agrees_with_full_tokenizer(
    which, request, tiny_llama3_model_dir, split_tokenizer
):
    from transformers import AutoTokenizer

    tok = {
        "tiny_tokenizer": lambda: request.getfixturevalue("tiny_tokenizer"),
        "llama3": lambda: AutoTokenizer.from_pretrained(tiny_llama3_model_dir),
        "split": lambda: split_tokenizer,
    }[which]()
    examples = random_examples(seed=len(which))
    counter = TokenCounter(tok)
    assert counter.fast is not None  # the fast path is really under test
    counter._verified = 10**6 + 1  # no sampled checks: compare raw results
    fast = counter.count(examples, max_length=60)
    assert fast == exact_counter(tok).count(examples, max_length=60)
    assert counter.fast is not None
    lengths = [len(tok.apply_chat_template(e["messages"], return_dict=False)) for e in examples]
    assert [r[0] for r in fast] == lengths


def test_a_wrong_fast_count_is_caught_and_dropped(tiny_tokenizer):
    examples = random_examples(seed=9, n=50)
    counter = TokenCounter(tiny_tokenizer)
    counter.fast.count = lambda items, limit: [(1, 1, 1)] * len(items)  # a broken assumption
    assert counter.count(examples, 60) == exact_counter(tiny_tokenizer).count(examples, 60)
    assert counter.fast is None


def test_templates_that_change_content_are_rendered_row_by_row(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = tok.chat_template.replace("message['content']", "message['content'] | trim")
    example = {
        "messages": [
            {"role": "user", "content": "  hi  "},
            {"role": "assistant", "content": " yo "},
        ]
    }
    counter = TokenCounter(tok)
    text, _ = counter.render(example)
    assert text == tok.apply_chat_template(example["messages"], tokenize=False)
    assert counter._skeletons[("user", "assistant")] is None
    assert counter.count([example], 100)[0][0] == len(
        tok.apply_chat_template(example["messages"], return_dict=False)
    )


def test_render_example(tiny_tokenizer):
    example = {
        "messages": [
            {"role": "user", "content": "<script>x</script>"},
            {"role": "assistant", "content": "ok"},
        ]
    }
    assert render_example(example, tiny_tokenizer) == (
        "<|im_start|>user\n<script>x</script><|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n"
    )
    assert render_example({"text": "story"}, tiny_tokenizer) == "story<|im_end|>"
    assert render_example(example).startswith("<|im_start|>user\n")  # no tokenizer: ChatML


def test_span_edges_inside_plain_text(tiny_model_dir):
    """No added tokens around the content: both edges of each trained span are cut inside
    one piece of plain text (several cuts in one piece), or the row falls back."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = (
        "{% for m in messages %}{{ ' ' + m['role'] + ':\n' + m['content'] + ' done' }}{% endfor %}"
    )
    examples = [
        {
            "messages": [
                {"role": r, "content": e["messages"][-1]["content"]}
                for r in ("user", "assistant") * 2
            ]
        }
        for e in random_examples(seed=3, n=300)
    ]
    counter = TokenCounter(tok)
    counter._verified = 10**6 + 1
    assert counter.fast is not None
    fast_rows = counter.fast.count([counter.render(e) for e in examples], 30)
    assert sum(r is not None for r in fast_rows) > 100  # most rows take the fast path
    assert counter.count(examples, 30) == exact_counter(tok).count(examples, 30)


def test_counts_ignore_truncation_left_on_the_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    example = {
        "messages": [
            {"role": "user", "content": "a " * 50},
            {"role": "assistant", "content": "b " * 50},
        ]
    }
    full = len(tok.apply_chat_template(example["messages"], return_dict=False))
    tok.backend_tokenizer.enable_truncation(8)  # e.g. left over from an earlier call
    assert TokenCounter(tok).count([example], 1000)[0][0] == full
    assert tok.backend_tokenizer.truncation is not None  # the caller's tokenizer is untouched


@pytest.mark.parametrize("fast", [True, False])
def test_the_tokenizer_sees_at_most_the_character_budget(tiny_tokenizer, fast):
    """A multi-MB example is cut before tokenizing (it took GBs); what training keeps is
    still counted exactly, the rest estimated at 4 characters per token."""
    counter, seen = TokenCounter(tiny_tokenizer, fast=fast), []
    real = counter.backend

    class Spy:  # records what reaches the Rust tokenizer
        def __getattr__(self, name):
            return getattr(real, name)

        def encode_batch(self, texts, **kw):
            seen.extend(map(len, texts))
            return real.encode_batch(texts, **kw)

    counter.backend = Spy()
    if counter.fast is not None:  # the fast path tokenizes only pieces of what it is given
        count = counter.fast.count
        counter.fast.count = lambda items, n: (
            seen.extend(len(t) for t, _ in items) or count(items, n)
        )
    q = {"role": "user", "content": "Why?"}
    huge = {"messages": [q, {"role": "assistant", "content": "so it goes " * 300_000}]}
    short = {"messages": [q, {"role": "assistant", "content": "so it goes " * 300}]}
    (tokens, trained, kept, error), _ = counter.count([huge, short], 128)
    assert seen and max(seen) <= char_budget(128) == 4096
    assert error is None and kept == exact_counter(tiny_tokenizer).count([short], 128)[0][2]
    assert trained > 3_300_000 // 4 and tokens > trained  # the cut text, estimated
