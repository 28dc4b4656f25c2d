"""Token counts with the model's own tokenizer and chat template, fast enough for big files.

For each example `TokenCounter.count` gives (tokens, trained tokens, trained tokens kept
within max_length, template error). "Trained" tokens are the assistant turns with weight
1: each turn's content plus the end-of-turn marker the template writes after it (layout
whitespace after the marker excluded), the span training learns (training/data/labels.py).

Rendering: a chat template's output depends only on the sequence of roles, with contents
pasted in verbatim, so each distinct role sequence is rendered once with placeholder
contents (a "skeleton") and rows are assembled by string joins. Templates that alter
content (trim, escape) fail the probe and are rendered row by row; the first row of each
role sequence and every 500th row are checked against a direct render.

Counting, per chunk of rows: exact counts from memoised word pieces (fastcount.py) for
byte-level BPE tokenizers, with a sample of rows checked against the full tokenizer; for
every other tokenizer, and rows the fast path cannot cut safely, one `encode_batch` call
(Rust, all cores) with character->token lookups for the trained spans. Without a
tokenizer, counts are estimated at about 4 characters per token.

Bounded: only the first `char_budget(max_length)` characters of an example go to the
tokenizer (32 per token of max_length, at most 256K), so a multi-MB example never meets
it whole. Tokens within max_length lie far inside that budget, so what training keeps is
counted exactly; the text beyond is counted at about 4 characters per token.

Tool use (tools.py) is rendered row by row with `tools=` and each message's `tool_calls`:
no skeleton, since the calls, not the contents, make up most of such a turn.

Its length: the fast counting path, the chat-template path and the character budget share
one pass and are read together.
"""

from pathlib import Path

from .fastcount import fast_counter
from .tools import supports_tools, template_messages, tool_text, uses_tools

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '%END%' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHARS_PER_TOKEN = 32  # characters sent to the tokenizer per token of max_length...
MAX_TOKENIZED_CHARS = 1 << 18  # ...and at most this many per example
CHECK_EVERY = 500  # rows between checks of a skeleton against a direct render
VERIFY_FIRST, VERIFY_EVERY = 100, 1000  # rows whose fast count is checked with the full tokenizer


def _mark(i: int) -> str:
    # private-use characters that no real data contains; spaces around them expose
    # templates that trim content (those fall back to rendering row by row)
    return f" \ue000{i}\ue001 "


def chatml_for(tokenizer) -> str | None:
    """The template to pass when the tokenizer has none (ChatML with its end token)."""
    if tokenizer is None or getattr(tokenizer, "chat_template", None):
        return None
    vocab = tokenizer.get_vocab()
    end = "<|im_end|>" if "<|im_end|>" in vocab else (tokenizer.eos_token or "\n")
    return CHATML.replace("%END%", end)


def char_budget(max_length: int) -> int:
    """Characters of one example's text the tokenizer sees (see the module docstring)."""
    return min(MAX_TOKENIZED_CHARS, CHARS_PER_TOKEN * max_length)


def _cut(text: str, spans: list, budget: int) -> tuple[str, list, int, int]:
    """(text, spans) within the budget, and the characters cut from the text and from its
    trained spans."""
    if len(text) <= budget:
        return text, spans, 0, 0
    beyond = sum(max(0, end - max(start, budget)) for start, end in spans)
    kept = [(start, min(end, budget)) for start, end in spans if start < budget]
    return text[:budget], kept, len(text) - budget, beyond


def _trained(message: dict) -> bool:
    return message["role"] == "assistant" and message.get("weight", 1) != 0


class TokenCounter:
    """Renders and counts examples for one tokenizer; keeps its caches for one file."""

    def __init__(self, tokenizer=None, fast: bool = True):
        self.tokenizer = tokenizer
        self.estimate = tokenizer is None
        self.backend = getattr(tokenizer, "backend_tokenizer", None)
        if self.backend is not None and (self.backend.truncation or self.backend.padding):
            from tokenizers import Tokenizer  # a private copy: counts must not be cut or padded

            self.backend = Tokenizer.from_str(self.backend.to_str())
            self.backend.no_truncation()
            self.backend.no_padding()
        self.fallback_template = chatml_for(tokenizer)
        self.eos = (getattr(tokenizer, "eos_token", None) or "") if tokenizer else ""
        # Tool calls need a template that renders them (ChatML's fallback does not).
        self.tools_ok = self.fallback_template is None and supports_tools(tokenizer)
        name = getattr(tokenizer, "name_or_path", "") if tokenizer is not None else ""
        self.model = Path(str(name).rstrip("/")).name or "this model"
        self._skeletons: dict[tuple, tuple | None] = {}
        self._seen = self._verified = 0
        self.fast = fast_counter(self.backend) if fast and self.backend is not None else None

    # -- rendering ------------------------------------------------------------------------
    def _apply(self, messages: list[dict], generation_prompt: bool = False, tools=None) -> str:
        kwargs = {"chat_template": self.fallback_template} if self.fallback_template else {}
        if tools:
            kwargs["tools"] = tools
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt, **kwargs
        )

    def _skeleton(self, roles: tuple) -> tuple | None:
        """(text pieces around each content, tail length after each trained turn) or None."""
        marks = [_mark(i) for i in range(len(roles))]
        probe = [{"role": r, "content": m} for r, m in zip(roles, marks, strict=True)]
        try:
            full = self._apply(probe)
        except Exception:
            return None  # the template refuses this role order: rows report it one by one
        parts, pos = [], 0
        for m in marks:
            i = full.find(m, pos)
            if i < 0 or full.count(m) != 1:
                return None
            parts.append(full[pos:i])
            pos = i + len(m)
        parts.append(full[pos:])
        tails = []
        for i, role in enumerate(roles):
            tail = 0
            if role == "assistant":
                try:
                    prefix = self._apply(probe[: i + 1])
                    if full.startswith(prefix):
                        after = prefix[prefix.index(marks[i]) + len(marks[i]) :]
                        tail = len(after.rstrip())  # layout whitespace is not trained
                except Exception:
                    pass
            tails.append(tail)
        return parts, tails

    def _render_slow(self, messages: list[dict], tools=None) -> tuple[str, list]:
        plain = template_messages(messages)
        full = self._apply(plain, tools=tools)
        spans, cursor = [], 0
        for i, m in enumerate(messages):
            if not _trained(m):
                continue
            try:
                before = self._apply(plain[:i], True, tools) if i else ""
                upto = self._apply(plain[: i + 1], tools=tools)
            except Exception:
                before = upto = ""
            if before and upto and full.startswith(upto) and upto.startswith(before):
                start, end = len(before), len(upto)
                content_end = full.find(m["content"], start)
                content_end = start if content_end < 0 else content_end + len(m["content"])
                while end > content_end and full[end - 1].isspace():
                    end -= 1  # whitespace after the end-of-turn marker is layout
            else:  # unusual template: fall back to finding the content itself
                start = full.find(m["content"], cursor)
                start = start if start >= 0 else cursor
                end = start + len(m["content"])
            spans.append((start, end))
            cursor = end
        return full, spans

    def render(self, example: dict) -> tuple[str, list[tuple[int, int]]]:
        """The training text of one example and the character spans that are trained."""
        if "text" in example:
            text = example["text"] + self.eos
            return text, [(0, len(text))]
        messages = example["messages"]
        if uses_tools(example):
            return self._render_slow(messages, example.get("tools"))
        roles = tuple(m["role"] for m in messages)
        if roles not in self._skeletons and len(self._skeletons) < 1000:
            self._skeletons[roles] = self._skeleton(roles)
            self._seen = 0  # check the first row of every new role sequence
        skeleton = self._skeletons.get(roles)
        if skeleton is None:
            return self._render_slow(messages)
        parts, tails = skeleton
        pieces, spans, pos = [], [], 0
        for k, m in enumerate(messages):
            pieces.append(parts[k])
            pos += len(parts[k])
            content = m["content"]
            pieces.append(content)
            if _trained(m):
                spans.append((pos, pos + len(content) + tails[k]))
            pos += len(content)
        pieces.append(parts[-1])
        text = "".join(pieces)
        self._seen += 1
        if self._seen % CHECK_EVERY == 1:
            slow = self._render_slow(messages)
            if slow[0] != text:  # the template depends on content after all
                self._skeletons[roles] = None
                return slow
        return text, spans

    # -- counting -------------------------------------------------------------------------
    def count(self, examples: list[dict], max_length: int) -> list[tuple]:
        """Per example: (tokens, trained tokens, trained tokens within max_length, error)."""
        if self.estimate:
            return [_estimate(e, max_length) for e in examples]
        rendered, out, beyond = [], [None] * len(examples), {}
        budget = char_budget(max_length)
        for i, example in enumerate(examples):
            try:
                text, spans = self.render(example)
            except Exception as e:  # a template that raises on this row's shape or content
                detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                out[i] = (0, 0, 0, detail)
                continue
            text, spans, chars, trained_chars = _cut(text, spans, budget)
            if chars:
                beyond[i] = (chars, trained_chars)
            rendered.append((i, text, spans))
        counted = self._count(rendered, out, max_length)
        return [_beyond(r, beyond.get(i)) for i, r in enumerate(counted)] if beyond else counted

    def _count(self, rendered: list, out: list, max_length: int) -> list[tuple]:
        if self.backend is None:  # a slow (pure Python) tokenizer: count prefixes, row by row
            for i, text, spans in rendered:
                out[i] = self._count_slow(text, spans, max_length)
            return out
        fast = self.fast.count([(t, s) for _, t, s in rendered], max_length) if self.fast else None
        exact = [k for k in range(len(rendered)) if fast is None or fast[k] is None]
        checked = []
        if fast is not None:  # compare a sample with the full tokenizer
            checked = [k for k in range(len(rendered)) if fast[k] and self._due()]
        results = self._exact([rendered[k] for k in exact + checked], max_length)
        for k, result in zip(exact + checked, results, strict=True):
            if fast is not None and fast[k] is not None and fast[k] != result:
                self.fast = None  # this tokenizer breaks an assumption: full path from now on
                return self._count(rendered, out, max_length)
            out[rendered[k][0]] = (*result, None)
        for k, result in enumerate(fast or ()):
            if result is not None and out[rendered[k][0]] is None:
                out[rendered[k][0]] = (*result, None)
        return out

    def _due(self) -> bool:
        self._verified += 1
        return self._verified <= VERIFY_FIRST or self._verified % VERIFY_EVERY == 0

    def _exact(self, rendered: list, max_length: int) -> list[tuple]:
        if not rendered:
            return []
        encodings = self.backend.encode_batch([t for _, t, _ in rendered], add_special_tokens=False)
        return [
            (len(enc), *_trained_tokens(enc, spans, max_length))
            for (_, _, spans), enc in zip(rendered, encodings, strict=True)
        ]

    def _count_slow(self, text: str, spans: list, max_length: int) -> tuple:
        def n(s):
            return len(self.tokenizer(s, add_special_tokens=False)["input_ids"])

        trained = kept = 0
        for start, end in spans:
            a, b = n(text[:start]), n(text[:end])
            trained += b - a
            kept += max(0, min(b, max_length) - a)
        return n(text), trained, kept, None


def _beyond(result: tuple, cut: tuple | None) -> tuple:
    """The count of a cut text, plus about 4 characters per token for the (text, trained
    text) characters cut."""
    if cut is None or result[3] is not None:
        return result
    tokens, trained, kept, error = result
    return tokens + (cut[0] + 3) // 4, trained + (cut[1] + 3) // 4, kept, error


def _trained_tokens(enc, spans: list, max_length: int) -> tuple[int, int]:
    trained = kept = 0
    for start, end in spans:
        first = next(
            (t for p in range(start, end) if (t := enc.char_to_token(p)) is not None), None
        )
        if first is None:
            continue  # only whitespace the tokenizer folded into a neighbour
        last = next(
            t for p in range(end - 1, start - 1, -1) if (t := enc.char_to_token(p)) is not None
        )
        trained += last - first + 1
        kept += max(0, min(last + 1, max_length) - first)
    return trained, kept


def _estimate(example: dict, max_length: int) -> tuple:
    """About 4 characters per token, plus a few tokens of layout per message."""
    if "text" in example:
        n = (len(example["text"]) + 3) // 4 + 1
        return n, n, min(n, max_length), None
    pos = trained = kept = 0
    for m in example["messages"]:
        pos += 4  # role header
        n = (len(m["content"]) + len(tool_text(m)) + 3) // 4 + 1  # content and end marker
        if _trained(m):
            trained += n
            kept += max(0, min(pos + n, max_length) - pos)
        pos += n
    return pos, trained, kept, None


def render_example(example: dict, tokenizer=None) -> str:
    """The text the model is trained on for one normalised example: the chat template
    rendered (ChatML when there is no tokenizer or template); for plain text, text + EOS.
    Raises ValueError with a readable message if the model's template refuses the row."""
    if tokenizer is None:
        if "text" in example:
            return example["text"]
        return "".join(
            f"<|im_start|>{m['role']}\n{m['content']}{tool_text(m)}<|im_end|>\n"
            for m in example["messages"]
        )
    counter = TokenCounter(tokenizer, fast=False)
    if uses_tools(example) and not counter.tools_ok:
        raise ValueError(
            f"The chat template of {counter.model} does not support tools, so this row's tool "
            "calls cannot be trained; choose a model whose template supports tools, such as "
            "Qwen2.5-Instruct."
        )
    try:
        return counter.render(example)[0]
    except Exception as e:
        raise ValueError(f"The model's chat template cannot format this example: {e}") from None
