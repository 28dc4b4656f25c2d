"""Read any supported file as a stream of records, one at a time, so memory stays flat.

`open_source(path)` sniffs the file (JSONL, JSON, CSV, TSV, Parquet, TXT, optionally
gzipped; a Hugging Face Hub dataset's split is read through hub.py, its files chained)
and returns a `Source` whose `records()` yields `(row, value, issues)`: `row` is the
1-based record number users see (JSONL and TXT: the line number; CSV/TSV: the data row
after the header; JSON/Parquet: the element number), `value` is the parsed record or
`BAD`, and `issues` lists `(code, details)` found while reading (unparseable lines,
damaged UTF-8, records over the size limit). A file that cannot be read at all raises
`DataError` with a catalogue code; nothing else escapes.

Every read is bounded (streams.py): a record over 1 MB is skipped as `record_too_large`
without being held, and `max_bytes` caps the data once decompressed as well as the file.
Text must be UTF-8, or UTF-16/UTF-32 with a byte-order mark (encoding.py).
A .jsonl file whose objects are pretty-printed over several lines is read as a JSON document
(one object after another), with one file-level note (`Source.notices`) instead of an error
on every line.

Its length: one Source class for every format and container (plain, gzip) with its
sniffing; the per-format readers live in jsonfile.py, csvfile.py and parquetfile.py.
"""

import gzip
import io
import re
from collections.abc import Iterator
from pathlib import Path

from .codes import DataError
from .csvfile import CsvRows
from .encoding import INVALID_UTF8, Utf8Check, sniff_encoding
from .jsonfile import json_records, parse_json_line
from .parquetfile import ParquetRows
from .streams import (
    BAD,
    BLANK,
    GZIP_ERRORS,
    MAX_RECORD_BYTES,
    NO_ISSUES,
    PIECE,
    Converted,
    Counted,
    cr_to_lf,
    drop_line,
    gzip_check,
    mb,
    skip_lines,
    to_utf8,
    too_large,
    unreadable,
)

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
ARCHIVES = {  # containers this loader does not open, by their first bytes
    b"PK\x03\x04": "a ZIP archive",
    b"BZh": "compressed with bzip2",
    b"\xfd7zXZ\x00": "compressed with xz",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"\x28\xb5\x2f\xfd": "compressed with zstd",
}
# What an upload box accepts: the formats read, gzip, and the archives refused with a reason
# (better than a bare "invalid file type").
UPLOAD_SUFFIXES = [*SUFFIXES, ".gz", ".zip", ".bz2", ".xz", ".7z", ".zst"]
UTF8_BOM = b"\xef\xbb\xbf"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _blank(line: bytes) -> bool:
    return not line or line.isspace()


class Source:
    """One opened data source. `records()` streams it once; `fraction()` tells progress."""

    def __init__(
        self,
        path: Path,
        kind: str,
        encoding: str,
        gz: bool,
        delimiter: str = ",",
        *,
        utf8_known: bool = True,
        cr_lines: bool = False,
        max_bytes: int | None = None,
        notices: tuple = (),
    ):
        self.path, self.kind, self.encoding, self.gz = path, kind, encoding, gz
        self.delimiter = delimiter
        self.utf8_known = utf8_known  # valid UTF-8 beyond ASCII seen in the first bytes
        self.cr_lines = cr_lines  # lines end in CR alone (old Mac): read as LF
        self.max_bytes = max_bytes  # cap on the data once decompressed (Parquet; gzip: open)
        self.notices = notices  # (code, details) about the file as a whole
        self.stop_after: int | None = None  # end the stream after this much data (a preview)
        self.size = path.stat().st_size
        self.columns: list[str] = []
        self.check = Utf8Check(utf8_known)
        self._raw = self._counted = self._rows = None
        self._done = 0.0

    def fraction(self) -> float:
        if self._raw is not None and not self._raw.closed and self.size:
            return min(1.0, self._raw.tell() / self.size)
        return self._done

    @property
    def consumed(self) -> int:
        """Bytes of data read so far (decompressed; Parquet: of the rows materialised)."""
        if self._rows is not None:
            return self._rows.expanded
        return self._counted.count if self._counted is not None else 0

    def _open(self):
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed by records()
        inner = gzip.GzipFile(fileobj=self._raw) if self.gz else self._raw
        if self.kind == "parquet":
            return inner  # pyarrow seeks; it reads only what its metadata says
        self._counted = stream = Counted(inner, self.stop_after)
        if self.encoding != "utf-8":
            stream = Converted(stream, to_utf8(self.encoding))
        if self.cr_lines:
            stream = Converted(stream, cr_to_lf)
        f = io.BufferedReader(stream, PIECE)
        if f.peek(3)[:3] == UTF8_BOM:
            self.check.offset = len(f.read(3))
        return f

    def _text(self, f):
        return io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")

    def records(self) -> Iterator[tuple[int, object, tuple]]:
        self.check, self._counted, self._rows = Utf8Check(self.utf8_known), None, None
        f = self._open()
        try:
            yield from getattr(self, "_" + self.kind)(f)
        except GZIP_ERRORS as e:
            raise unreadable(e) from None
        finally:
            f.close()
            self._raw.close()
            self._done = 1.0

    def _lines(self, f) -> Iterator[tuple[int, bytes | None, int, int]]:
        """(line number, the line or None when over the record limit, its size, its byte
        offset) of each line that is not blank; runs of blank lines are skipped in bulk."""
        readline, limit = f.readline, MAX_RECORD_BYTES + 1
        n, offset = 0, self.check.offset
        while line := readline(limit):
            n, size = n + 1, len(line)
            if size == limit and not line.endswith(b"\n"):
                size += drop_line(readline)
                yield n, None, size, offset
            elif line.isspace():  # blank lines separate examples
                skipped, blank = skip_lines(f, BLANK)
                n, size = n + blank, size + skipped
            else:
                yield n, line, size, offset
            offset += size

    def _jsonl(self, f):
        for n, line, size, offset in self._lines(f):
            if line is None:
                yield n, BAD, too_large(size)
            elif not _blank(line):
                value, issues = parse_json_line(line, self.check, offset, n)
                yield n, value, issues

    def _txt(self, f):
        self.columns = ["text"]
        for n, line, size, offset in self._lines(f):
            if line is None:
                yield n, BAD, too_large(size)
                continue
            line = line.rstrip(b"\r\n")
            if _blank(line):
                continue  # blank lines separate examples; they are not examples
            try:
                text, issues, bad = line.decode("utf-8"), NO_ISSUES, None
            except UnicodeDecodeError as e:
                text, issues, bad = line.decode("utf-8", errors="replace"), INVALID_UTF8, e.start
            self.check.line(line, bad, offset, n)
            yield n, {"text": text}, issues

    def _json(self, f):
        yield from json_records(self._text(f), self.check)

    def _csv(self, f):
        rows = CsvRows(f, self.check, self.delimiter)
        self.columns = rows.columns
        yield from rows

    _tsv = _csv

    def _parquet(self, f):
        try:
            self._rows = rows = ParquetRows(f, self.size, self.max_bytes, self.stop_after)
            self.columns = rows.columns
            yield from rows
        except DataError:
            raise
        except (OSError, ValueError) as e:  # pyarrow's errors derive from these
            raise DataError("unreadable_file", detail=str(e).splitlines()[0]) from None


def _pretty_printed(text: bytes) -> bool:
    """The first JSON object spans several lines: its first line alone is not JSON, and is
    a lone bracket or followed by an indented line."""
    lines = text.split(b"\n", 2)
    first = lines[0].strip()
    if first[:1] not in (b"{", b"[") or parse_json_line(first)[0] is not BAD:
        return False
    return first in (b"{", b"[") or (len(lines) > 1 and lines[1][:1] in (b" ", b"\t"))


def _sniff(head: bytes, suffix: str) -> tuple[str, str, str, bool]:
    """(kind, text encoding, CSV delimiter, UTF-8 already seen) from the first bytes and
    the file name; kind "json" for JSON lines that are pretty-printed."""
    if head[:4] == b"PAR1":
        return "parquet", "utf-8", ",", True
    for magic, what in ARCHIVES.items():
        if head.startswith(magic):
            detail = f"it is {what}; unpack it, or compress the data file with gzip (.gz)"
            raise DataError("unreadable_file", detail=detail)
    kind = SUFFIXES.get(suffix)
    if kind == "parquet":
        raise DataError("unreadable_file", detail="it is not a Parquet file")
    encoding, utf8_known = sniff_encoding(head)
    if encoding != "utf-8":
        head = head.decode(encoding, errors="replace").encode("utf-8")
    text = head.removeprefix(UTF8_BOM).lstrip(b" \t\r\n")
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
    if kind == "jsonl" and _pretty_printed(text):
        kind = "json"  # objects one after another, each over several lines
    delimiter = "\t" if kind == "tsv" else ","
    if kind == "csv":
        first_line = text.split(b"\n", 1)[0]
        if b"," not in first_line and b";" in first_line:
            delimiter = ";"  # spreadsheets in many locales export with semicolons
    return kind, encoding, delimiter, utf8_known


def open_source(path, max_bytes: int | None = None):
    """Open a file (or Hub dataset: a hub: reference, a bare OWNER/NAME or a resolved
    HubSplit, hub.py) for streaming; raises DataError if it cannot be read. `max_bytes` caps
    the file (a Hub split: its files together) and, for compressed data, what it
    decompresses to."""
    from .hub import HubSource, HubSplit, as_ref, open_split

    if isinstance(path, HubSplit):
        return HubSource(path)
    if (ref := as_ref(path)) is not None:
        return HubSource(open_split(ref, max_bytes=max_bytes, checked=True))  # see hub.py
    p = Path(path)
    try:
        exists = p.exists()
    except OSError:
        exists = False
    if not exists:
        raise DataError("file_not_found", path=str(path))
    if p.is_dir():
        raise DataError("unreadable_file", detail="it is a folder, not a file")
    size = p.stat().st_size
    if max_bytes and size > max_bytes:
        raise DataError("file_too_large", size=mb(size), limit=mb(max_bytes))
    suffixes = [s.lower() for s in p.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    try:
        with open(p, "rb") as f:
            head = f.read(65536)
        if gz or head[:2] == b"\x1f\x8b":
            gz = True
            if max_bytes:  # a bomb is refused before any work
                gzip_check(p, size, max_bytes)
            with gzip.open(p, "rb") as f:
                head = f.read(65536)
    except GZIP_ERRORS as e:
        raise unreadable(e) from None
    kind, encoding, delimiter, utf8_known = _sniff(head, suffix)
    cr_lines = b"\r" in head and b"\n" not in head
    pretty = kind == "json" and SUFFIXES.get(suffix) == "jsonl"
    return Source(
        p,
        kind,
        encoding,
        gz,
        delimiter,
        utf8_known=utf8_known,
        cr_lines=cr_lines,
        max_bytes=max_bytes,
        notices=(("pretty_printed_jsonl", {}),) if pretty else (),
    )
