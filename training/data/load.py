"""Read any supported file as a stream of records, one at a time, so memory stays flat.

`open_source(path)` sniffs the file (JSONL, JSON, CSV, TSV, Parquet, TXT, optionally
gzipped, or a Hugging Face Hub dataset id) and returns a `Source` whose `records()` yields
`(row, value, issues)`: `row` is the 1-based record number users see (JSONL and TXT: the
line number; CSV/TSV: the data row after the header; JSON/Parquet: the element number),
`value` is the parsed record or `BAD`, and `issues` lists `(code, details)` found while
reading (unparseable lines, bytes that are not UTF-8). A file that cannot be read at all
raises `DataError` with a catalogue code; nothing else escapes.
"""

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from training.paths import hub_offline

from .codes import DataError
from .jsonfile import NO_ISSUES, SURROGATES, fix_text, json_error, json_records

try:  # orjson ships with gradio; 2-3x faster than json on the lines we read
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    _loads = json.loads

BAD = object()  # the value of a record that could not be parsed
SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
    ".text": "txt",
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
csv.field_size_limit(2**31 - 1)  # long answers exceed csv's 128 KB default per field


def _hub_answers() -> bool:
    """One short, cached probe (shared with the model catalogue), so nothing hangs."""
    try:
        from training.models.catalogue import hub_reachable
    except ImportError:
        return True
    return hub_reachable()


def parse_json_line(data: bytes) -> tuple[object, tuple]:
    """One JSONL line -> (value, issues); never raises."""
    try:
        return _loads(data), NO_ISSUES
    except ValueError:
        pass
    issues = NO_ISSUES
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        issues = (("invalid_utf8", {}),)
    try:
        return json.loads(text), issues
    except (ValueError, RecursionError) as e:
        return BAD, issues + (("unparseable_line", {"detail": json_error(e)}),)


class Source:
    """One opened data source. `records()` streams it once; `fraction()` tells progress."""

    def __init__(self, path: Path, kind: str, encoding: str, gz: bool, delimiter: str = ","):
        self.path, self.kind, self.encoding, self.gz = path, kind, encoding, gz
        self.delimiter = delimiter
        self.size = path.stat().st_size
        self.columns: list[str] = []
        self._raw = None
        self._done = 0.0

    def fraction(self) -> float:
        if self._raw is not None and not self._raw.closed and self.size:
            return min(1.0, self._raw.tell() / self.size)
        return self._done

    def _binary(self):
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed by records()
        return gzip.GzipFile(fileobj=self._raw) if self.gz else self._raw

    def _text(self, f):
        return io.TextIOWrapper(f, encoding=self.encoding, errors="surrogateescape", newline="")

    def records(self) -> Iterator[tuple[int, object, tuple]]:
        f = self._binary()
        try:
            yield from getattr(self, "_" + self.kind)(f)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise DataError("unreadable_file", detail=str(e) or type(e).__name__) from None
        finally:
            f.close()
            self._raw.close()
            self._done = 1.0

    def _lines(self, f) -> Iterator[tuple[int, bytes]]:
        if self.encoding == "utf-16":  # rare (Windows "Unicode text"): re-encode as UTF-8
            for n, line in enumerate(self._text(f), 1):
                yield n, line.encode("utf-8", errors="replace")
            return
        for n, line in enumerate(f, 1):
            yield n, (line[3:] if n == 1 and line.startswith(b"\xef\xbb\xbf") else line)

    def _jsonl(self, f):
        for n, line in self._lines(f):
            if line.strip():
                value, issues = parse_json_line(line)
                yield n, value, issues

    def _txt(self, f):
        self.columns = ["text"]
        for n, line in self._lines(f):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue  # blank lines separate examples; they are not examples
            try:
                yield n, {"text": line.decode("utf-8")}, NO_ISSUES
            except UnicodeDecodeError:
                text = line.decode("utf-8", errors="replace")
                yield n, {"text": text}, (("invalid_utf8", {}),)

    def _json(self, f):
        yield from json_records(self._text(f))

    def _csv(self, f):
        reader = csv.reader(self._text(f), delimiter=self.delimiter)
        header = next(reader, None)
        if header is None:
            return
        header = _unique([fix_text(h).strip() or f"column_{i + 1}" for i, h in enumerate(header)])
        self.columns = header
        n, failures = 0, 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                n, failures = n + 1, failures + 1
                if failures > 100:  # the reader cannot resync: give up on the file
                    raise DataError("unreadable_file", detail=str(e)) from None
                yield n, BAD, (("unparseable_row", {"detail": str(e)}),)
                continue
            if not fields:
                continue
            n, failures = n + 1, 0
            issues = NO_ISSUES
            if any(SURROGATES.search(v) for v in fields):
                fields, issues = [fix_text(v) for v in fields], (("invalid_utf8", {}),)
            if len(fields) != len(header):
                found, expected = len(fields), len(header)
                yield n, BAD, issues + (("bad_csv_row", {"found": found, "expected": expected}),)
                continue
            yield n, dict(zip(header, fields, strict=True)), issues

    _tsv = _csv

    def _parquet(self, f):
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(f)
            self.columns = list(pf.schema_arrow.names)
            total = max(1, pf.metadata.num_rows)
            n = 0
            for batch in pf.iter_batches(batch_size=1000):
                for record in batch.to_pylist():
                    n += 1
                    yield n, _drop_nulls(record), NO_ISSUES
                self._done = n / total
        except (OSError, ValueError) as e:  # pyarrow's errors derive from these
            raise DataError("unreadable_file", detail=str(e).splitlines()[0]) from None


class HubSource:
    """A dataset on the Hugging Face Hub, streamed (only when the Hub may be reached)."""

    kind, size, columns = "hub", 0, []

    def __init__(self, name: str):
        self.path = self.name = name

    def fraction(self) -> float:
        return 0.0

    def records(self):
        try:
            from datasets import load_dataset

            data = load_dataset(self.name, split="train", streaming=True)
            for n, record in enumerate(data, 1):
                yield n, record, NO_ISSUES
        except DataError:
            raise
        except Exception as e:  # network, auth, missing repo: all become one clear message
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError("hub_unavailable", path=self.name, detail=detail) from None


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
    return out


def _drop_nulls(record: dict) -> dict:
    """Parquet gives every struct the union of all keys (missing ones as None): drop those
    inside message lists so optional keys such as `weight` or `name` stay optional."""
    for key, value in record.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            record[key] = [
                {k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
                for m in value
            ]
    return record


def _sniff(head: bytes, suffix: str) -> tuple[str, str, str]:
    """(kind, text encoding, CSV delimiter) from the first bytes and the file name."""
    encoding = "utf-8-sig"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
        head = head.decode("utf-16", errors="replace").encode("utf-8")
    if head[:4] == b"PAR1":
        return "parquet", encoding, ","
    if b"\x00" in head:
        raise DataError("binary_file")
    kind = SUFFIXES.get(suffix)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if kind == "parquet":
        raise DataError("unreadable_file", detail="it is not a Parquet file")
    if kind == "json" and text[:1] == b"{":
        first, _, rest = text.partition(b"\n")
        _, issues = parse_json_line(first)
        if not issues and rest.strip()[:1] == b"{":
            kind = "jsonl"  # JSON lines saved with a .json name: read line by line
    if kind is None:
        first_line = text.split(b"\n", 1)[0]
        kind = (
            "json"
            if text[:1] == b"["
            else "jsonl"
            if text[:1] == b"{"
            else "tsv"
            if b"\t" in first_line
            else "csv"
            if b"," in first_line
            else "txt"
        )
    delimiter = "\t" if kind == "tsv" else ","
    if kind == "csv":
        first_line = text.split(b"\n", 1)[0]
        if b"," not in first_line and b";" in first_line:
            delimiter = ";"  # spreadsheets in many locales export with semicolons
    return kind, encoding, delimiter


def open_source(path, max_bytes: int | None = None) -> Source | HubSource:
    """Open a file (or Hub dataset id) for streaming; raises DataError if it cannot be read."""
    p = Path(path)
    try:
        exists = p.exists()
    except OSError:
        exists = False
    if not exists:
        if HUB_ID.match(str(path)) and not str(path).startswith((".", "/")):
            if hub_offline() or not _hub_answers():
                raise DataError("hub_offline", path=str(path))
            return HubSource(str(path))
        raise DataError("file_not_found", path=str(path))
    if p.is_dir():
        raise DataError("unreadable_file", detail="it is a folder, not a file")
    size = p.stat().st_size
    if max_bytes and size > max_bytes:
        raise DataError("file_too_large", size=f"{size / 1e6:.1f}", limit=f"{max_bytes / 1e6:.0f}")
    suffixes = [s.lower() for s in p.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    try:
        with open(p, "rb") as f:
            head = f.read(65536)
        if gz or head[:2] == b"\x1f\x8b":
            gz = True
            with gzip.open(p, "rb") as f:
                head = f.read(65536)
    except (OSError, EOFError) as e:
        raise DataError("unreadable_file", detail=e.strerror or str(e)) from None
    kind, encoding, delimiter = _sniff(head, suffix)
    return Source(p, kind, encoding, gz, delimiter)
