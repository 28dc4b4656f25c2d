"""Read JSON: one JSONL line (`parse_json_line`), or a JSON document record by record, in
chunks, within the record limit (`json_records`).

A top-level array is decoded one element at a time, so a huge file never sits in memory as
a whole. An object is read whole when it fits the record limit (streams.py): a wrapper
such as `{"data": [...]}`, or one example. A larger object is walked member by member and
the list it wraps is streamed like a top-level array: the first list under a wrapper key
(data, train, ...), else the first list too large to hold, else the first list. Any value
over the limit is skipped without being held (its strings and brackets followed to its
end) and becomes a `record_too_large` row. Bytes that are not UTF-8 are checked as they
are read (encoding.py); in a UTF-8 file they are reported per record and replaced.
"""

import json
import math
import re

from .codes import DataError
from .encoding import INVALID_UTF8, SURROGATES, fix_escapes, fix_text
from .streams import BAD, MAX_RECORD_BYTES, NO_ISSUES, too_large

try:  # orjson ships with gradio; 2-3x faster than json on the lines we read
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    _loads = json.loads

CHUNK = 1 << 20
# Keys that make a top-level JSON object one example rather than a wrapper around a list.
EXAMPLE_KEYS = {"messages", "conversations", "instruction", "prompt", "question", "text"}
WRAPPER_KEYS = ("data", "train", "examples", "rows", "records", "items", "samples")
TOO_LARGE = object()  # a value over the record limit, left in place to be walked
_WS = re.compile(r"[ \t\n\r]*")
_SPECIAL = re.compile(r'["\[\]{}]')
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)  # up to a quote or a final \
_BARE = re.compile(r"[^\s,\]}]*")  # a number or word ends at a space, comma or bracket


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


# As strict as JSON (and orjson): no NaN or Infinity, no number that overflows to infinity.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def parse_json_line(data: bytes, check=None, offset: int = 0, line: int = 0):
    """One JSONL line -> (value, issues). Never raises, except `check` (encoding.py)
    refusing a file that is not UTF-8; `offset` and `line` say where the line starts."""
    try:
        value = _loads(data)
    except ValueError:
        pass
    else:
        if check is not None:
            check.line(data, None, offset, line)
        return value, NO_ISSUES
    issues = NO_ISSUES
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if check is not None:
            check.line(data, e.start, offset, line)
        text = data.decode("utf-8", errors="replace")
        issues = INVALID_UTF8
    else:
        if check is not None:
            check.line(data, None, offset, line)
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as e:
        detail = json_error(e)
        if isinstance(e, json.JSONDecodeError):  # where in the line (colno restarts at "\n")
            detail = f"{e.msg} (character {min(e.pos, len(text.rstrip())) + 1})"
        return BAD, issues + (("unparseable_line", {"detail": detail}),)
    value, fixed = fix_escapes(value, text)
    return value, INVALID_UTF8 if fixed else issues


def json_error(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} (character {e.colno})"
    return str(e).split(":")[0]


class _JsonText:
    """A JSON document read in chunks: values are decoded one by one, each within the
    record limit, so neither a huge array nor a huge value sits in memory as a whole."""

    def __init__(self, stream, check=None, limit: int = MAX_RECORD_BYTES):
        self.stream, self.check, self.limit = stream, check, limit
        self.buf, self.pos, self.base, self.eof, self.dirty = "", 0, 0, False, False

    def _read(self, n: int) -> bool:
        """Drop what was read, append the next n characters; False at the end."""
        chunk = self.stream.read(n)
        if not chunk:
            self.eof = True
            return False
        if self.check is not None:
            self.check.text(chunk)
        self.dirty = self.dirty or bool(SURROGATES.search(chunk))
        self.base += self.pos
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def _more(self) -> bool:
        return self._read(max(CHUNK, len(self.buf) - self.pos))  # doubles: O(n) in all

    def peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def value(self, skip: bool = True) -> tuple[object, tuple]:
        """The next value and its issues. A value over the limit is skipped (BAD, with
        `record_too_large`) when `skip`, else TOO_LARGE and left in place."""
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number may go on in the next chunk
                    if end - self.pos > self.limit:
                        break
                    return self._take(obj, end)
            except json.JSONDecodeError:
                if self.eof:
                    raise
            if len(self.buf) - self.pos > self.limit:
                break
            self._more()
        return (BAD, too_large(self.skip())) if skip else (TOO_LARGE, NO_ISSUES)

    def _take(self, obj, end: int) -> tuple[object, tuple]:
        start, self.pos = self.pos, end
        if self.dirty and SURROGATES.search(self.buf, start, end):
            return fix_text(obj), INVALID_UTF8
        obj, fixed = fix_escapes(obj, self.buf, start, end)
        return obj, INVALID_UTF8 if fixed else NO_ISSUES

    def skip(self) -> int:
        """Move past the value at pos, keeping none of it; its length in characters."""
        start, depth, in_string = self.base + self.pos, 0, False
        bare = self.buf[self.pos] not in '{["'
        while True:
            if bare:
                self.pos = _BARE.match(self.buf, self.pos).end()
                if self.pos < len(self.buf):
                    break
            elif in_string:
                self.pos = _STRING_BODY.match(self.buf, self.pos).end()
                if self.pos < len(self.buf) and self.buf[self.pos] == '"':
                    self.pos, in_string = self.pos + 1, False
                    if depth == 0:
                        break
                    continue
            elif m := _SPECIAL.search(self.buf, self.pos):
                self.pos, c = m.end(), m.group()
                if c == '"':
                    in_string = True
                elif c in "[{":
                    depth += 1
                elif (depth := depth - 1) <= 0:
                    break
                continue
            else:
                self.pos = len(self.buf)
            if not self._read(CHUNK):  # keeps at most a final backslash of what was read
                if bare:
                    break
                raise ValueError("the file ends too early")
        return self.base + self.pos - start


def _value(j: _JsonText, good: int, skip: bool = True) -> tuple[object, tuple]:
    try:
        return j.value(skip)
    except DataError:
        raise
    except (ValueError, RecursionError) as e:
        raise DataError("invalid_json", good=good, detail=json_error(e)) from None


def json_records(stream, check=None):
    """Records of a JSON document: a top-level array streamed element by element, an
    object wrapping one array, one object, or several objects one after another."""
    j = _JsonText(stream, check)
    if j.peek() == "[":
        j.pos += 1
        n = yield from _array(j)
        j.pos += 1  # past the "]"
        if c := j.peek():
            detail = f"there is more after the list ends (“{c}”)"
            raise DataError("invalid_json", good=n, detail=detail)
        return
    first, issues = _value(j, 0, skip=False)
    if first is TOO_LARGE:
        size = (yield from _members(j)) if j.peek() == "{" else j.skip()
        if size is None:
            return  # it wrapped a list, now read
        yield 1, BAD, too_large(size)
    elif j.peek() == "":  # one document: a wrapper around a list, or a single example
        for n, record in enumerate(_unwrap(first), 1):
            yield n, record, issues
        return
    else:
        yield 1, first, issues
    n = 1  # several objects one after another (pretty-printed "JSON lines")
    while j.peek():
        value, issues = _value(j, n)
        n += 1
        yield n, value, issues


def _array(j: _JsonText):
    """Yield an array's elements (j just past its "["); returns how many, j at its "]"."""
    n = 0
    if j.peek() == "]":
        return n
    while True:
        value, issues = _value(j, n)
        n += 1
        yield n, value, issues
        c = j.peek()
        if c == ",":
            j.pos += 1
        elif c == "]":
            return n
        else:
            detail = "the file ends too early" if not c else f"expected “,” or “]”, found “{c}”"
            raise DataError("invalid_json", good=n, detail=detail)


def _members(j: _JsonText):
    """Walk an object too large to read whole (j at its "{"). Stream the list it wraps
    and return None; or return the object's size when it is one example or holds no list."""
    start, example, fallback = j.base + j.pos, False, None
    j.pos += 1
    while (c := j.peek()) != "}":
        if c == ",":
            j.pos += 1
            continue
        if c != '"':
            found = f"found “{c}”" if c else "the file ends too early"
            raise DataError("invalid_json", good=0, detail=f"expected a key, {found}")
        key = str(_value(j, 0)[0]).lower()
        if j.peek() != ":":
            raise DataError("invalid_json", good=0, detail="expected “:” after a key")
        j.pos += 1
        example = example or key in EXAMPLE_KEYS
        is_list = j.peek() == "["
        if is_list and not example and key in WRAPPER_KEYS:
            j.pos += 1
            yield from _array(j)
            return None
        value, issues = _value(j, 0, skip=False)
        if value is TOO_LARGE and is_list and not example:
            j.pos += 1
            yield from _array(j)
            return None
        if value is TOO_LARGE:
            j.skip()
        elif isinstance(value, list) and fallback is None:
            fallback = value, issues
    j.pos += 1
    if fallback is None or example:
        return j.base + j.pos - start
    for n, record in enumerate(fallback[0], 1):
        yield n, record, fallback[1]
    return None


def _unwrap(document) -> list:
    """A whole-file JSON value -> its records: a list as is, `{"data": [...]}` unwrapped."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict) or EXAMPLE_KEYS & {str(k).lower() for k in document}:
        return [document]
    lists = [k for k, v in document.items() if isinstance(v, list)]
    if not lists:
        return [document]
    preferred = [k for k in lists if str(k).lower() in WRAPPER_KEYS]
    return document[(preferred or lists)[0]]
