"""Read a CSV or TSV file row by row, within the record limit of streams.py.

Lines are read as bytes, at most 1 MB at a time, and decoded for csv.reader. A row whose
lines add up to more than the limit (one very long line, or a quoted field that never
closes) is skipped as `record_too_large`: the rest of its current line is dropped and a
fresh reader starts on the next line. Empty lines between rows are skipped in bulk.
"""

import csv

from .codes import DataError
from .encoding import INVALID_UTF8, SURROGATES, fix_text
from .streams import (
    BAD,
    EMPTY,
    MAX_RECORD_BYTES,
    NO_ISSUES,
    bounded_lines,
    mb,
    skip_lines,
    too_large,
)

MAX_FAILURES = 100  # unreadable rows in a row before the reader is taken to be lost
csv.field_size_limit(MAX_RECORD_BYTES)  # rows are bounded by TextLines; a field can fill one


class RecordTooLarge(Exception):
    """A row grew past the record limit; `size` counts what was read of it."""

    def __init__(self, size: int):
        self.size = size


class TextLines:
    """Lines of a UTF-8 stream as text for csv.reader, checked for encoding (encoding.py).
    `row` counts the bytes of the row being read; the caller resets it before each row."""

    def __init__(self, f, check, limit: int = MAX_RECORD_BYTES):
        self.f, self.check, self.limit = f, check, limit
        self.lines = bounded_lines(f.readline, limit)
        self.row = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line, size = next(self.lines)
        if self.row == 0 and size <= 2 and not line.strip():  # no data between rows
            skipped, lines = skip_lines(self.f, EMPTY)
            self.check.skipped(size + skipped, lines + 1)
            line, size = next(self.lines)
        self.row += size
        if line is None or self.row > self.limit:
            size, self.row = self.row, 0
            raise RecordTooLarge(size)
        text = line.decode("utf-8", "surrogateescape")
        self.check.text(text)
        return text


class CsvRows:
    """The rows of one CSV/TSV file, the header read on creation (`columns`): iterate for
    (row after the header, record or BAD, issues)."""

    def __init__(self, f, check, delimiter: str):
        self.lines, self.delimiter = TextLines(f, check), delimiter
        self.reader = csv.reader(self.lines, delimiter=delimiter)
        try:
            header = next(self.reader, None)
        except RecordTooLarge:
            detail = f"its first row (the header) is longer than {mb(MAX_RECORD_BYTES)} MB"
            raise DataError("unreadable_file", detail=detail) from None
        except csv.Error as e:
            raise DataError("unreadable_file", detail=str(e)) from None
        names = [fix_text(h).strip() or f"column_{i + 1}" for i, h in enumerate(header or [])]
        self.columns = _unique(names)

    def __iter__(self):
        header, n, failures = self.columns, 0, 0
        while header:
            self.lines.row = 0
            try:
                fields = next(self.reader)
            except StopIteration:
                return
            except RecordTooLarge as e:  # the rest of its line is dropped: start afresh
                n += 1
                yield n, BAD, too_large(e.size)
                self.reader = csv.reader(self.lines, delimiter=self.delimiter)
                continue
            except csv.Error as e:
                n, failures = n + 1, failures + 1
                if failures > MAX_FAILURES:
                    raise DataError("unreadable_file", detail=str(e)) from None
                yield n, BAD, (("unparseable_row", {"detail": str(e)}),)
                continue
            if not fields:
                continue
            n, failures = n + 1, 0
            issues = NO_ISSUES
            if any(SURROGATES.search(v) for v in fields):
                fields, issues = [fix_text(v) for v in fields], INVALID_UTF8
            if len(fields) != len(header):
                found, expected = len(fields), len(header)
                yield n, BAD, issues + (("bad_csv_row", {"found": found, "expected": expected}),)
                continue
            yield n, dict(zip(header, fields, strict=True)), issues


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
    return out
