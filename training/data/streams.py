"""Bounded reading: no record, no decompressed byte and no run of lines without a limit.

The limits, so that one upload cannot take a public server's memory or CPU:
- MAX_RECORD_BYTES (1 MB) per record: a JSONL or TXT line, a CSV/TSV row, one value of a
  JSON array or sequence, a Parquet row. Training truncates at max_length tokens (a few
  KB of text), so a longer record is useless as one example. It is never held whole: a
  longer line is read on in 64 KB pieces and dropped, and its row reported as
  `record_too_large` (an error; training skips the row too).
- max_bytes (the upload cap, given by the caller) applies to the data once decompressed,
  and the data may grow at most MAX_RATIO times its compressed size (past 10 MB; real
  text compresses 3 to 20 times). A gzipped file is decompressed into nothing first,
  stopping at either limit, so a compression bomb is refused in about a second, before
  any row is read; Parquet's declared and materialised sizes are held to the same limits.
- Runs of blank lines, what a small bomb decompresses to, are skipped in bulk (C speed),
  not one Python step per line.
- Characters sent to the tokenizer per example: see tokens.py.
"""

import codecs
import gzip
import io
import re
import zlib

from .codes import DataError

MAX_RECORD_BYTES = 1_000_000
MAX_RATIO, RATIO_FLOOR = 100, 10_000_000  # uncompressed / compressed, checked past the floor
BAD = object()  # the value of a record that could not be read
NO_ISSUES = ()  # the issues of a record read without any
PIECE = 1 << 16  # bytes read at a time while skipping, measuring or buffering
GZIP_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile)
BLANK = re.compile(rb"[ \t\r\n]*")  # lines of white space, skipped in JSONL and TXT
EMPTY = re.compile(rb"[\r\n]*")  # empty lines, skipped in CSV (where spaces are a value)


def mb(n: int) -> str:
    """Bytes in MB as the upload limit counts them (MiB), e.g. "200" or "1.5"."""
    return f"{n / 2**20:.1f}".removesuffix(".0")


def too_large(size: int) -> tuple:
    """The issues of a record that was skipped for its size."""
    return (("record_too_large", {"size": mb(size), "limit": mb(MAX_RECORD_BYTES)}),)


def check_expansion(compressed: int, expanded: int, max_bytes: int | None) -> None:
    """Raise DataError when data decompressed from `compressed` bytes to `expanded` passes
    the upload cap or grows suspiciously (only with a cap: that is, on a server)."""
    if not max_bytes:
        return
    if expanded > max_bytes:
        raise DataError("decompressed_too_large", limit=mb(max_bytes))
    if expanded > RATIO_FLOOR and expanded > MAX_RATIO * max(1, compressed):
        raise DataError("compression_bomb", ratio=MAX_RATIO)


def gzip_check(path, compressed: int, max_bytes: int) -> None:
    """Decompress a gzip file into nothing, stopping at the limits of `check_expansion`."""
    total = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(PIECE * 16):
            total += len(chunk)
            check_expansion(compressed, total, max_bytes)


class Counted(io.RawIOBase):
    """A binary stream that counts the bytes read through it, and ends after `stop_after`
    of them (a preview needs only the first rows, whatever the file holds after them)."""

    def __init__(self, inner, stop_after: int | None = None):
        self.inner, self.count, self.stop_after = inner, 0, stop_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.stop_after is not None and self.count >= self.stop_after:
            return 0
        n = self.inner.readinto(buffer) or 0
        self.count += n
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


class Converted(io.RawIOBase):
    """A binary stream read through `convert(chunk, final) -> bytes`: UTF-16/32 to UTF-8,
    or old Mac line ends (CR) to LF, so every reader sees UTF-8 lines ending in LF."""

    def __init__(self, inner, convert):
        self.inner, self.convert, self.pending = inner, convert, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            data = self.inner.read(PIECE)
            self.pending = self.convert(data, not data)
            if not data:
                break
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


def to_utf8(encoding: str):
    """A converter from `encoding` to UTF-8 (undecodable units become U+FFFD)."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    return lambda data, final: decoder.decode(data, final).encode("utf-8")


def cr_to_lf(data: bytes, final: bool) -> bytes:
    return data.replace(b"\r", b"\n")


def drop_line(readline) -> int:
    """Read the rest of a line in pieces, keeping none of it: the bytes dropped."""
    dropped = 0
    while piece := readline(PIECE):
        dropped += len(piece)
        if piece.endswith(b"\n"):
            break
    return dropped


def bounded_lines(readline, limit: int = MAX_RECORD_BYTES):
    """(line, size) for each line of a binary stream: the line is None when it is longer
    than `limit` (the rest of it dropped)."""
    while line := readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line, len(line)
        else:
            yield None, len(line) + drop_line(readline)


def skip_lines(f, pattern: re.Pattern) -> tuple[int, int]:
    """Consume whole lines of the characters in `pattern` at the position of a buffered
    stream, a buffer at a time (C speed): (bytes, lines) skipped."""
    skipped = lines = 0
    while buffer := f.peek(PIECE):
        end = pattern.match(buffer).end()
        whole = end == len(buffer) and buffer.endswith(b"\n")
        end = end if whole else buffer.rfind(b"\n", 0, end) + 1
        if not end:
            break
        lines += buffer.count(b"\n", 0, end)
        skipped += len(f.read(end))
        if not whole:
            break
    return skipped, lines


def unreadable(e: Exception) -> DataError:
    detail = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return DataError("unreadable_file", detail=detail)
