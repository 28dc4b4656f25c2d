"""Check a data file before training: one streaming pass, a structured report, no exceptions.

`validate_file` reads the file once in chunks of 1,000 rows (fewer when they are long: at
most about 4 MB of data): parse, detect the format from the first rows, normalise and
check each row, count tokens per chunk (tokens.py), and keep only compact per-row numbers
(lengths, a 64-bit hash for the duplicate check, the row number), so memory stays flat
however long the file and its lines are. Reading is bounded (streams.py): a record over
1 MB is an error on its row, and `max_bytes` caps the file before and after decompression.

Every row with an error is remembered by number (a few bytes each), so a run may choose to
skip those rows and train on the rest (`ValidationReport.bad_rows`, choice.py). Rows with
tool calls are errors when the model's template cannot render tools (tools.py).

Rows over max_length, and rows whose assistant reply the limit cuts off entirely, are
warnings rather than errors: training truncates the first and skips the second without
failing, so one outlier must not block a large file. The report says what each costs, and
when no row is left to learn from at all, `nothing_to_train` is an error. Plain-text
examples count as one message each in `messages_per_example`.

Its length: the one streaming pass and its per-row bookkeeping (findings, rows with errors,
tool rows, duplicates) share the scan's state and read best together.
"""

import contextlib
import gc
from array import array

import numpy as np

from .codes import CATALOGUE, ERROR, UNREADABLE, Findings
from .detect import Detection
from .examples import open_detected, require_format
from .load import BAD, DataError
from .normalise import normalise
from .report import ValidationReport
from .stats import Lengths, recommended_epochs, token_stats, validation_count
from .tokens import TokenCounter
from .tools import uses_tools

CHUNK_ROWS = 1000
CHUNK_BYTES = 4_000_000  # data read per chunk at most (then tokenized in one batch)
MIN_EXAMPLES = 50
MIN_VALIDATION = 5  # fewer held-out examples make validation loss mostly noise


def example_key(example: dict) -> int:
    """A 64-bit hash of an example's content (same content, same key, within one process)."""
    if "text" in example:
        return hash(example["text"])
    messages = example["messages"]
    key = hash(tuple((m["role"], m["content"], m.get("weight", 1)) for m in messages))
    if uses_tools(example):  # calls have no content: they tell such rows apart
        calls = [m.get("tool_calls") for m in messages]
        return hash((key, repr(calls), repr(example.get("tools"))))
    return key


class _Scan:
    """One pass over one file, feeding findings and per-row numbers."""

    def __init__(self, counter: TokenCounter, findings: Findings, max_length: int, progress):
        self.counter, self.findings, self.max_length = counter, findings, max_length
        self.progress = progress
        self.rows = self.parsed = self.good = self.trainable = self.tool_rows = 0
        self.bad_rows: dict[str, array] = {}  # first error code -> row numbers
        self.lengths = Lengths()
        self.hashes = array("q")
        self.row_numbers = array("i")
        self.detection = Detection(None)
        self.fatal = None  # catalogue code of a DataError that stopped the pass
        self.columns: list = []

    def run(self, path, fmt, mapping, max_bytes) -> "_Scan":
        try:
            source, self.detection, records, self.columns = open_detected(
                path, fmt, mapping, max_bytes
            )
            for code, details in source.notices:
                self.findings.add(code, None, **details)
            self._stream(records, self._announce(), source)
        except DataError as e:
            self.fatal = e.code
            self.findings.add(e.code, None, **e.details)
        return self

    def _announce(self) -> bool:
        """File-level findings about the format; False when rows cannot be normalised."""
        if "preference" in self.detection.kinds and self.detection.format is None:
            mapping = self.detection.mapping
            columns = f"“{mapping.get('chosen')}” and “{mapping.get('rejected')}”"
            self.findings.add("preference_data", columns=columns)
            return False
        if self.detection.format is None:
            return False  # reported after the pass, once we know whether any row parsed
        try:
            require_format(self.detection, self.columns)
        except DataError as e:
            self.findings.add(e.code, None, **e.details)
            return False
        if self.detection.ambiguous:
            self.findings.add("ambiguous_format", detail=self.detection.reason)
        if self.detection.format == "preference":
            self.findings.add("chosen_replies_only")
        return True

    def bad(self, row: int, codes) -> None:
        """Remember a row with an error, under its first error code."""
        code = next(c for c in codes if CATALOGUE.get(c, (ERROR,))[0] == ERROR)
        self.bad_rows.setdefault(code, array("i")).append(row)

    def _stream(self, records, usable: bool, source) -> None:
        add, chunk, start = self.findings.add, [], 0  # the format sample counts too
        try:
            for row, value, issues in records:
                self.rows += 1
                for code, details in issues:
                    add(code, row, **details)
                if value is BAD:
                    self.bad(row, [c for c, _ in issues] + ["unparseable_line"])
                    continue
                self.parsed += 1
                if not usable:
                    continue
                example, problems = normalise(value, self.detection)
                for code, details in problems.items():
                    add(code, row, **details)
                if problems.has_error():
                    self.bad(row, problems)
                elif example is not None and not self._tools_ok(row, example):
                    continue
                elif example is not None:
                    chunk.append((row, example, "zero_trained_tokens" in problems))
                    if len(chunk) >= CHUNK_ROWS or source.consumed - start > CHUNK_BYTES:
                        self._flush(chunk)
                        chunk, start = [], source.consumed
                        self.progress(source.fraction(), f"Checked {self.rows:,} rows")
        finally:  # rows read before a fatal error in the file still count
            self._flush(chunk)
            if self.detection.format is None and self.parsed and not self.detection.kinds:
                add("unknown_format", columns=", ".join(map(str, self.columns)) or "none")

    def _tools_ok(self, row: int, example: dict) -> bool:
        """Counts rows with tools; False (an error) when the template cannot render them."""
        if not uses_tools(example):
            return True
        self.tool_rows += 1
        if self.counter.estimate or self.counter.tools_ok:
            return True
        self.findings.add("tools_unsupported", row, model=self.counter.model)
        self.bad(row, ["tools_unsupported"])
        return False

    def _flush(self, chunk: list) -> None:
        if not chunk:
            return
        add, limit = self.findings.add, self.max_length
        counts = self.counter.count([e for _, e, _ in chunk], limit)
        for (row, example, flagged), (tokens, trained, kept, error) in zip(
            chunk, counts, strict=True
        ):
            if error is not None:
                add("template_error", row, detail=error)
                self.bad(row, ["template_error"])
                continue
            self.good += 1
            self.row_numbers.append(row)
            self.hashes.append(example_key(example))
            self.lengths.add(
                tokens, trained, len(example["messages"]) if "messages" in example else 1
            )
            if tokens > limit:
                add("over_max_length", row, tokens=f"{tokens:,}", limit=f"{limit:,}")
            if trained == 0:
                if not flagged:
                    add("zero_trained_tokens", row)
            elif kept == 0:
                add("assistant_truncated", row, limit=f"{limit:,}")
            if kept > 0:
                self.trainable += 1

    def duplicates(self) -> None:
        """Report every exact copy with the row of its first occurrence."""
        h = np.frombuffer(self.hashes, dtype=np.int64)
        if h.size < 2:
            return
        order = np.argsort(h, kind="stable")
        sorted_h = h[order]
        repeat = np.flatnonzero(sorted_h[1:] == sorted_h[:-1]) + 1
        if repeat.size == 0:
            return
        starts = np.ones(h.size, dtype=bool)
        starts[1:] = sorted_h[1:] != sorted_h[:-1]
        first = np.maximum.accumulate(np.where(starts, np.arange(h.size), 0))
        rows = np.frombuffer(self.row_numbers, dtype=np.int32)
        copies, originals = rows[order[repeat]], rows[order[first[repeat]]]
        by_row = np.argsort(copies, kind="stable")
        for copy, original in zip(copies[by_row], originals[by_row], strict=True):
            self.findings.add("duplicate_row", int(copy), original=int(original))


def _stats(scan: _Scan, counter, split: dict, max_length: int, tokenizer) -> dict:
    return {
        "examples": scan.good,
        **token_stats(scan.lengths, max_length),
        "recommended_epochs": recommended_epochs(split["train"]),
        "split": split,
        "max_length": max_length,
        "token_estimate": counter.estimate,
        "tokenizer": getattr(tokenizer, "name_or_path", None) if tokenizer is not None else None,
    }


def _dataset_findings(scan, findings, split, counter, validation_file) -> None:
    n, held_out = scan.good, split["validation"]
    if 0 < n < MIN_EXAMPLES:
        findings.add("few_examples", count=n)
    if n and scan.trainable == 0:
        findings.add("nothing_to_train")
    if n and held_out < MIN_VALIDATION:
        where = "in the validation file" if validation_file else "held out for validation"
        detail = (
            f"No examples are {where}, so validation loss cannot be measured."
            if held_out == 0
            else f"Only {held_out} example{'s' * (held_out > 1)} {'are' if held_out > 1 else 'is'} "
            f"{where}; validation loss will be noisy."
        )
        findings.add("small_validation_split", detail=detail)
    if counter.fallback_template and scan.detection.format not in (None, "text"):
        findings.add("no_chat_template")
    if counter.estimate and scan.tool_rows:
        findings.add("tools_unchecked", count=f"{scan.tool_rows:,}")


def _validate(
    path,
    tokenizer,
    max_length,
    fmt,
    mapping,
    validation_file,
    validation_split,
    seed,
    max_bytes,
    progress,
) -> ValidationReport:
    def say(fraction: float, message: str, start: float = 0.0, width: float = 1.0) -> None:
        if progress is not None:
            with contextlib.suppress(Exception):  # a broken progress bar must not stop the check
                progress(start + width * fraction, message)

    width = 0.85 if validation_file else 1.0
    counter, findings = TokenCounter(tokenizer), Findings()
    scan = _Scan(counter, findings, max_length, lambda f, m: say(f, m, 0.0, width))
    scan.run(path, fmt, mapping, max_bytes)
    scan.duplicates()
    if scan.rows == 0 and scan.fatal is None:
        findings.add("empty_file")
    if validation_file:
        vfindings = Findings(source="validation")
        val = _Scan(counter, vfindings, max_length, lambda f, m: say(f, m, width, 1 - width))
        val.run(validation_file, fmt, mapping, max_bytes)
        if val.rows == 0 and val.fatal is None:
            vfindings.add("empty_file")
        findings.merge(vfindings)
        split = {"train": scan.good, "validation": val.good, "source": "file"}
    else:
        held_out = validation_count(scan.good, validation_split)
        split = {"train": scan.good - held_out, "validation": held_out, "source": "split"}
    _dataset_findings(scan, findings, split, counter, validation_file)
    readable = scan.fatal not in UNREADABLE and not (
        scan.parsed == 0 and (scan.rows > 0 or scan.fatal is not None)
    )
    report = ValidationReport(format=scan.detection.format, rows=scan.rows, readable=readable)
    report.detection = scan.detection.to_json()
    report.bad_rows = {"data": scan.bad_rows}
    if validation_file:
        report.bad_rows["validation"] = val.bad_rows
    report.stats = _stats(scan, counter, split, max_length, tokenizer)
    report.stats["seed"] = seed
    report.stats["rows_with_errors"] = sum(
        len(rows) for codes in report.bad_rows.values() for rows in codes.values()
    )
    say(1.0, f"Checked {scan.rows:,} rows")
    return findings.into(report)


def error_report(error: DataError) -> ValidationReport:
    """The report of data that cannot be read at all (e.g. a Hub dataset refused)."""
    findings = Findings()
    findings.add(error.code, None, **error.details)
    return findings.into(ValidationReport(format=None, rows=0, readable=False))


def validate_file(
    path,
    *,
    tokenizer=None,
    max_length: int = 1024,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    validation_file=None,
    validation_split: float = 0.1,
    seed: int = 42,
    max_bytes: int | None = None,
    progress=None,
) -> ValidationReport:
    """Validate a data file (or a Hub dataset: a hub: reference or a HubSplit, hub.py);
    never raises. See the module docstring."""
    # The scan makes millions of short-lived containers; at CPython's default threshold the
    # cyclic collector keeps re-walking the ~200k objects transformers holds (~15 % of the time).
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        max_length = max(1, int(max_length))
        return _validate(
            path,
            tokenizer,
            max_length,
            fmt,
            mapping,
            validation_file,
            validation_split,
            seed,
            max_bytes,
            progress,
        )
    except Exception as e:  # a bug must still produce a report, never a traceback
        findings = Findings()
        findings.add("unreadable_file", detail=f"unexpected problem ({type(e).__name__}: {e})")
        return findings.into(ValidationReport(format=None, rows=0, readable=False))
    finally:
        gc.set_threshold(*threshold)
