"""Turn normalised examples into token ids and labels: loss only on what the model should learn.

Conversations (`{"messages": [...]}`) are rendered with the tokenizer's own chat template and
only the assistant turns are trained: each turn's content *and* its end-of-turn token (so the
model learns to stop), never the prompt, the role headers or the template's layout. A message
with `"weight": 0` is context only (OpenAI semantics). Plain text (`{"text": ...}`) is causal
language modelling on every token, with EOS appended.

Tool use (tools.py): the definitions go to the template as `tools=`, an assistant's calls as
its `tool_calls`, and a turn that calls a tool is trained like any reply (the model learns to
emit the call); tool results are context. A template without tool support refuses such rows.

Why not TRL's `assistant_only_loss`: it needs `{% generation %}` markers in the template and
refuses most ChatML templates (SmolLM2's included). Instead we find each assistant turn's
characters by rendering the conversation prefix up to that turn (with the generation prompt)
and the prefix including it: the difference is exactly what the model must produce, for any
template. Characters map to tokens via the tokenizer's offsets. The result (`input_ids` plus
`labels` with -100 on untrained tokens) goes to TRL pre-tokenized, so TRL does no masking.
"""

from .examples import load_examples
from .tools import supports_tools, template_messages, uses_tools

# ChatML, for tokenizers that ship without a chat template. The end-of-turn marker is the
# tokenizer's own EOS when it has no <|im_end|> token, so generation still stops there.
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '%END%' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def ensure_chat_template(tokenizer) -> None:
    """Give the tokenizer a chat template (ChatML) and a pad token if it lacks them."""
    if not tokenizer.chat_template:
        end = "<|im_end|>" if "<|im_end|>" in tokenizer.get_vocab() else tokenizer.eos_token
        tokenizer.chat_template = CHATML.replace("%END%", end or "\n")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def _render(tokenizer, messages, generation_prompt=False, tools=None) -> str:
    extra = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt, **extra
    )


def _render_prefix(tokenizer, messages, tools=None) -> str:
    """The prompt the model sees before an assistant turn, generation header included."""
    try:
        return _render(tokenizer, messages, generation_prompt=True, tools=tools)
    except Exception:  # some templates cannot render an empty conversation
        if messages:
            raise
        return ""


def assistant_spans(
    tokenizer, messages: list[dict], tools: list | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans the model is trained on."""
    plain = template_messages(messages)
    full = _render(tokenizer, plain, tools=tools)
    spans, cursor = [], 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        before = _render_prefix(tokenizer, plain[:i], tools)
        upto = _render(tokenizer, plain[: i + 1], tools=tools)
        if upto.startswith(before) and full.startswith(upto) and len(upto) > len(before):
            start, end = len(before), len(upto)
        else:
            # Templates that render history differently from the last turn (e.g. ones that
            # drop earlier reasoning): find the content itself, then its end-of-turn token.
            start = full.find(message["content"], cursor)
            if start < 0:
                raise ValueError(
                    f"The chat template changes assistant message {i + 1}; cannot locate it."
                )
            end = start + len(message["content"])
            for marker in (tokenizer.eos_token, "<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
                if marker and full[end:].lstrip(" \n").startswith(marker):
                    end = full.index(marker, end) + len(marker)
                    break
        # Whitespace after the end-of-turn token is template layout, not model output.
        found = full.find(message["content"], start)
        content_end = found + len(message["content"]) if found >= 0 else start
        while end > max(start, content_end) and full[end - 1].isspace():
            end -= 1
        spans.append((start, end))
        cursor = end
    return full, spans


def _trained_flags(tokenizer, text: str, spans: list[tuple[int, int]]) -> tuple[list, list]:
    """Token ids of `text` and, per token, whether it overlaps a trained span."""
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        flags = [any(s < e_tok and b_tok < e for s, e in spans) for b_tok, e_tok in offsets]
        return ids, flags
    except NotImplementedError:  # tokenizers without offsets: compare token prefixes instead
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]

        def boundary(char: int) -> int:
            prefix = tokenizer(text[:char], add_special_tokens=False)["input_ids"]
            n = 0
            while n < min(len(prefix), len(ids)) and prefix[n] == ids[n]:
                n += 1
            return n

        flags = [False] * len(ids)
        for s, e in spans:
            for k in range(boundary(s), boundary(e) if e < len(text) else len(ids)):
                flags[k] = True
        return ids, flags


def encode_example(tokenizer, example: dict, max_length: int | None = None) -> dict:
    """`{"input_ids", "labels"}` for one normalised example, truncated to max_length."""
    if "messages" in example:
        if uses_tools(example) and not supports_tools(tokenizer):
            raise ValueError("The model's chat template does not support tools (tool calls).")
        text, spans = assistant_spans(tokenizer, example["messages"], example.get("tools"))
        ids, flags = _trained_flags(tokenizer, text, spans)
        labels = [t if f else -100 for t, f in zip(ids, flags, strict=True)]
    else:
        ids = list(tokenizer(example["text"])["input_ids"])
        if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
            ids.append(tokenizer.eos_token_id)
        labels = list(ids)
    if max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


def encode_examples(tokenizer, examples: list[dict], max_length: int) -> tuple[list[dict], dict]:
    """Encode all examples; drop those left with nothing to learn. Returns (rows, stats)."""
    rows, truncated, empty, tokens, trained = [], 0, 0, 0, 0
    for example in examples:
        full = encode_example(tokenizer, example)
        row = {k: v[:max_length] for k, v in full.items()}
        truncated += len(full["input_ids"]) > max_length
        n_trained = sum(label != -100 for label in row["labels"])
        if not n_trained:
            empty += 1  # no assistant turn, all weight 0, or truncated before the answer
            continue
        rows.append(row)
        tokens += len(row["input_ids"])
        trained += n_trained
    stats = {
        "examples": len(rows),
        "dropped_nothing_to_learn": empty,
        "truncated": truncated,
        "tokens": tokens,
        "trained_tokens": trained,
    }
    return rows, stats


def explain_example(tokenizer, example: dict, max_length: int | None = None) -> list[tuple]:
    """(token text, trained?) pairs: the "what the model learns" view of one example."""
    row = encode_example(tokenizer, example, max_length)
    return [
        (tokenizer.decode([t]), label != -100)
        for t, label in zip(row["input_ids"], row["labels"], strict=True)
    ]


def explain_choice(tokenizer, choice, number: int, max_length: int | None = None) -> list[tuple]:
    """explain_example for the number-th usable example (1-based, clamped) of a DataChoice."""
    examples = load_examples(choice.path, fmt=choice.format, mapping=choice.mapping or None)
    if not examples:
        raise ValueError("The dataset holds no usable examples.")
    example = examples[min(max(int(number or 1), 1), len(examples)) - 1]
    return explain_example(tokenizer, example, max_length)
