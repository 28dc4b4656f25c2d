"""Exact token counts for byte-level BPE tokenizers without tokenising every character.

Tokenising is most of the validator's work, and batching alone only spreads it over the
cores. But byte-level BPE tokenizers (GPT-2, SmolLM2, Llama 3, Qwen, ...) work in three
separable steps: cut the text at added tokens (`<|im_start|>`...), pre-tokenise each piece
with a regex whose matches never hold a space followed by a non-space except at their
start, then run BPE inside each pre-token. So a text can be cut before every " X" and its
token count is the sum of the counts of its chunks. Chunks are mostly words, which repeat,
so their counts are memoised and only unseen chunks are tokenised (one call per chunk of
rows). Assistant spans are counted exactly when their edges fall on a cut; when
they do not (an unusual template or content starting with whitespace) the row goes to the
full tokenizer. `TokenCounter` also checks a sample of rows against the full tokenizer
and drops this path for good on the first disagreement.
"""

import json
import re
import unicodedata
from bisect import bisect_right
from itertools import accumulate, compress, islice, repeat
from operator import is_

_CHUNK = re.compile(r"(?= \S)")  # before a space that starts a word
_ODD_SPACE = re.compile(r" (?!\S)")  # a space before whitespace or at the end
MEMO_LIMIT = 200_000  # chunk counts kept; the memo restarts when full, so memory stays flat
PRE_TOKENIZERS = {"ByteLevel", "Split", "Digits"}


def fast_counter(backend) -> "ChunkCounter | None":
    """A ChunkCounter when the tokenizer's pipeline has the properties above, else None."""
    try:
        spec = json.loads(backend.to_str())
    except Exception:
        return None
    model, normalizer = spec.get("model") or {}, spec.get("normalizer")
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    added = spec.get("added_tokens") or []
    if (
        model.get("type") != "BPE"
        or model.get("dropout")
        or (normalizer is not None and normalizer.get("type") != "NFC")
        or not any(s.get("type") == "ByteLevel" for s in steps)
        or any(s.get("type") not in PRE_TOKENIZERS or s.get("add_prefix_space") for s in steps)
        or any(a.get("lstrip") or a.get("rstrip") or a.get("single_word") for a in added)
    ):
        return None
    return ChunkCounter(backend, [a["content"] for a in added], nfc=normalizer is not None)


def _safe_cut(text: str, p: int, end: int) -> bool:
    """A cut at p (inside a piece ending at `end`) cannot change the tokens: it is before
    " X", or after a newline and before a non-space."""
    c = text[p]
    if c == " ":
        return p + 1 < end and not text[p + 1].isspace()
    return text[p - 1] == "\n" and not c.isspace()


class ChunkCounter:
    """Counts as described in the module docstring. Three memos: `whole` for short pieces
    that repeat as a whole (added tokens, role headers, system prompts), `first` for the
    text before a piece's first space, `word` for each later word (the count of " " + word:
    splitting on spaces is far cheaper than a regex, and needs no string building)."""

    def __init__(self, backend, added: list[str], nfc: bool):
        self.backend, self.nfc = backend, nfc
        ordered = sorted(set(added), key=len, reverse=True)  # longest first, like tokenizers
        self.added = re.compile("(" + "|".join(map(re.escape, ordered)) + ")") if ordered else None
        self.base = {"": 0, **dict.fromkeys(ordered, 1)}
        self._reset()

    def _reset(self) -> None:
        self.whole, self.first, self.word = dict(self.base), {"": 0}, {}
        self._new_whole, self._new_first, self._new_word = {}, {}, {}
        self.pending = False  # the row being counted has pieces no memo holds yet

    def _segments(self, text: str, bounds: list[int]) -> tuple[list, dict] | None:
        """The text cut at added tokens and at the span edges (sorted `bounds`), and for each
        edge the index of the segment it starts; None when an edge cannot be cut safely.
        Only the edges are visited in Python: the rest is C (split, accumulate, splice)."""
        if self.nfc and not unicodedata.is_normalized("NFC", text):
            return None
        parts = self.added.split(text) if self.added else [text]  # odd parts: added tokens
        ends = list(accumulate(map(len, parts)))
        marks, splits, inserted = {}, [], 0
        for edge in bounds:
            i = bisect_right(ends, edge)
            if i == len(parts) or edge == ends[i] - len(parts[i]):
                marks[edge] = i + inserted  # the end of the text, or the start of a part
                continue
            if i % 2 or not _safe_cut(text, edge, ends[i]):
                return None  # inside an added token, or a cut that could change the tokens
            splits.append((i, edge))
            inserted += 1
            marks[edge] = i + inserted
        starts = {i: ends[i] - len(parts[i]) for i, _ in splits}
        for i, edge in reversed(splits):  # a part may be cut twice: splice the later cut first
            start = starts[i]
            parts[i : i + 1] = [text[start:edge], text[edge : start + len(parts[i])]]
        return parts, marks

    def _known(self, segment: str) -> int | tuple:
        """The segment's token count from the memos. When some pieces are new: a tuple
        (count so far, new first piece or None, new words, new chunks) that `_finish`
        completes once `_learn` has tokenised them, so no segment is split twice."""
        n = self.whole.get(segment)
        if n is not None:
            return n
        if _ODD_SPACE.search(segment):  # double or trailing spaces: cut with the regex
            chunks = _chunks(segment)
            counts = list(map(self.whole.get, chunks))
            if None in counts:
                missing = self._missing(chunks, counts, self._new_whole)
                return sum(filter(None, counts)), None, (), missing
            n = sum(counts)
        else:
            words = segment.split(" ")
            first = self.first.get(words[0])
            try:  # the common case first: every word known
                n = sum(map(self.word.__getitem__, islice(words, 1, None)))
            except KeyError:
                n = None
            if first is None or n is None:
                first_key = words.pop(0)
                if first is None:
                    self._new_first[first_key] = 0
                    self.pending = True
                counts = list(map(self.word.get, words))
                missing = self._missing(words, counts, self._new_word)
                known = sum(filter(None, counts)) + (first or 0)
                return known, (first_key if first is None else None), missing, ()
            n += first
        if len(segment) <= 64:
            self.whole[segment] = n
        return n

    def _missing(self, keys: list, counts: list, new: dict) -> list:
        missing = list(compress(keys, map(is_, counts, repeat(None))))
        if missing:
            new.update(dict.fromkeys(missing, 0))
            self.pending = True
        return missing

    def _finish(self, n: tuple) -> int:
        known, first_key, words, chunks = n
        if first_key is not None:
            known += self.first[first_key]
        return (
            known
            + sum(map(self.word.__getitem__, words))
            + sum(map(self.whole.__getitem__, chunks))
        )

    def _learn(self) -> None:
        """Tokenise the pieces no memo held. A piece has no added token and is already
        normalised, so it goes straight to the pre-tokenizer and the BPE model: a full
        `encode` costs about twice as much per short piece (offsets, added-token scan)."""
        new = (
            (self.whole, self._new_whole),
            (self.first, self._new_first),
            (self.word, self._new_word),
        )
        texts = [*self._new_whole, *self._new_first, *(" " + w for w in self._new_word)]
        self._new_whole, self._new_first, self._new_word = {}, {}, {}
        pre, tokenize = self.backend.pre_tokenizer, self.backend.model.tokenize
        values = iter([sum(len(tokenize(p)) for p, _ in pre.pre_tokenize_str(t)) for t in texts])
        for memo, found in new:
            for key in found:
                memo[key] = next(values)

    def count(self, items: list[tuple[str, list]], max_length: int) -> list[tuple | None]:
        """Per (text, spans): (tokens, trained, trained within max_length), or None when the
        row must go to the full tokenizer."""
        split = [
            self._segments(t, sorted({p for span in spans for p in span})) for t, spans in items
        ]
        counted, whole = [], self.whole
        for s in split:
            self.pending = False
            counts = None if s is None else list(map(whole.get, s[0]))  # mostly added tokens
            if counts is not None and None in counts:
                counts = [
                    self._known(g) if n is None else n for g, n in zip(s[0], counts, strict=True)
                ]
            counted.append((counts, self.pending))
        self._learn()
        out = []
        for (_, spans), s, (counts, pending) in zip(items, split, counted, strict=True):
            if s is None:
                out.append(None)
                continue
            if pending:
                counts = [self._finish(n) if n.__class__ is tuple else n for n in counts]
            acc, marks = list(accumulate(counts, initial=0)), s[1]
            trained = kept = 0
            for start, end in spans:
                a, b = acc[marks[start]], acc[marks[end]]
                trained += b - a
                kept += max(0, min(b, max_length) - a)
            out.append((acc[-1], trained, kept))
        if len(self.whole) + len(self.first) + len(self.word) > MEMO_LIMIT:
            self._reset()  # memory stays flat: frequent pieces come back within a chunk
        return out


def _chunks(text: str) -> list[str]:
    parts = _CHUNK.split(text)
    if parts and not parts[0]:
        del parts[0]
    return parts
