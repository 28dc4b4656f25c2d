"""Read a data file as normalised examples (for training) or as a short preview (for the UI).

    iter_examples(path)            -> (row, example) for every row without an error
    load_examples(path)            -> [example, ...]
    split_examples(examples, 0.1)  -> (train, validation), seeded and deterministic
    preview_file(path, n=20)       -> Preview: the first rows raw and normalised, the format

Rows with errors, and rows whose KTO label is false, are skipped here without a word: run
`validate_file` first to see them (the worker refuses errors unless told to skip them).
"""

import random
from dataclasses import dataclass, field
from itertools import chain

from .codes import make_finding
from .detect import EXAMPLES, FIELD_NAMES, Detection, detect_format
from .load import BAD, DataError, open_source
from .normalise import normalise
from .stats import validation_count

SAMPLE_ROWS = 200  # rows read before deciding the format...
SAMPLE_BYTES = 8_000_000  # ...or fewer, when they are long: the sample is held in memory
PREVIEW_BYTES = 24_000_000  # a preview reads no further (20 rows of up to 1 MB fit)


def open_detected(path, fmt=None, mapping=None, max_bytes=None, stop_after=None):
    """(source, detection, records, columns): the format decided on the first rows, and an
    iterator over all records (those rows included). Raises DataError if unreadable.
    `stop_after`: bytes of data after which the records end (a preview needs few)."""
    source = open_source(path, max_bytes)
    source.stop_after = stop_after
    records = source.records()
    sample, broken = [], None
    try:
        for record in records:
            sample.append(record)
            if len(sample) >= SAMPLE_ROWS or source.consumed > SAMPLE_BYTES:
                break
    except DataError as e:  # broken after a few rows: those rows still count
        broken = e
    values = [v for _, v, _ in sample if v is not BAD]
    detection = detect_format(values, fmt, mapping)
    seen = dict.fromkeys(k for v in values if isinstance(v, dict) for k in v)
    columns = list(source.columns) or [str(c) for c in seen]
    return source, detection, chain(sample, _raise(broken) if broken else records), columns


def _raise(error: Exception):
    raise error
    yield  # a generator, so the error comes after the rows read before it


def require_format(detection: Detection, columns: list) -> None:
    """Raise DataError unless every row can be normalised with this detection."""
    listing = ", ".join(map(str, columns)) or "none"
    if detection.format is None:
        raise DataError("unknown_format", columns=listing)
    if detection.missing:
        name = detection.missing[0]
        raise DataError(
            "missing_column",
            field=FIELD_NAMES.get(name, name),
            format=detection.format,
            columns=listing,
            example=EXAMPLES[detection.format],
        )


def iter_examples(path, fmt: str | None = None, mapping: dict | None = None):
    """Yield (row, example) for every good row; raises DataError if the file is unusable."""
    _, detection, records, columns = open_detected(path, fmt, mapping)
    require_format(detection, columns)
    for row, value, _ in records:
        if value is not BAD:
            example, _ = normalise(value, detection)
            if example is not None:
                yield row, example


def load_examples(path, fmt: str | None = None, mapping: dict | None = None) -> list[dict]:
    """Every good row as a normalised example, in file order."""
    return [example for _, example in iter_examples(path, fmt, mapping)]


def split_examples(examples: list, fraction: float = 0.1, seed: int = 42) -> tuple[list, list]:
    """(train, validation): a seeded random hold-out, each part kept in file order."""
    n = len(examples)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held_out = set(order[: validation_count(n, fraction)])
    train = [e for i, e in enumerate(examples) if i not in held_out]
    validation = [e for i, e in enumerate(examples) if i in held_out]
    return train, validation


@dataclass
class Preview:
    format: str | None  # detected (or chosen) format, None if unknown
    columns: list[str] = field(default_factory=list)  # column names, in file order
    rows: list[dict] = field(default_factory=list)  # the first rows as read ({} if unparseable)
    row_numbers: list[int] = field(default_factory=list)  # 1-based row of each entry in rows
    examples: list[dict | None] = field(
        default_factory=list
    )  # normalised; None if the row has an error
    problems: list[list[str]] = field(default_factory=list)  # plain-language issues of each row
    detection: Detection | None = None
    error: str | None = None  # why the file could not be read or used, else None
    kind: str | None = None  # jsonl, json, csv, tsv, parquet, txt or hub

    def table(self, width: int = 200) -> list[list[str]]:
        """The rows as short strings, one list per row in `columns` order (for a grid)."""
        import json

        def cell(v) -> str:
            s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
            return s if len(s) <= width else s[: width - 1] + "…"

        return [[cell(r.get(c, "")) for c in self.columns] for r in self.rows]


def preview_file(path, n: int = 20, fmt: str | None = None, mapping: dict | None = None) -> Preview:
    """The first n rows, raw and normalised, plus the format; never raises."""
    try:
        source, detection, records, columns = open_detected(
            path, fmt, mapping, stop_after=PREVIEW_BYTES
        )
        preview = Preview(detection.format, [str(c) for c in columns], detection=detection)
        preview.kind = source.kind
        try:
            require_format(detection, columns)
        except DataError as e:
            preview.error, detection = str(e), None
        try:
            _preview_rows(preview, records, n, detection)
        except DataError as e:  # broken after some rows: show them, and why it stops there
            if not preview.rows:
                raise
            preview.error = str(e)
        if not preview.columns:
            preview.columns = list(dict.fromkeys(k for r in preview.rows for k in r))
        return preview
    except DataError as e:
        return Preview(None, error=str(e))
    except Exception as e:  # never let a preview take the page down
        return Preview(None, error=f"The file could not be read ({type(e).__name__}: {e}).")


def _preview_rows(preview: Preview, records, n: int, detection: Detection | None) -> None:
    for row, value, issues in records:
        if len(preview.rows) >= n:
            break
        problems = [make_finding(code, row, **d).message for code, d in issues]
        example = None
        if value is not BAD and detection is not None:
            example, found = normalise(value, detection)
            problems += [make_finding(code, row, **d).message for code, d in found.items()]
        if value is BAD:
            value = {}
        preview.rows.append(value if isinstance(value, dict) else {"value": value})
        preview.row_numbers.append(row)
        preview.examples.append(example)
        preview.problems.append(problems)
