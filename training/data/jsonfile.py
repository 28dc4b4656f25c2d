"""Read a JSON document (not JSON lines) record by record, in chunks.

A top-level array is decoded one element at a time, so a huge file never sits in memory as
a whole; `{"data": [...]}` wrappers and single objects are read whole (they are small in
practice). Bytes that are not UTF-8 arrive as lone surrogates (surrogateescape) and are
reported per record, then replaced with U+FFFD.
"""

import json
import re

from .codes import DataError

NO_ISSUES = ()
CHUNK = 1 << 20
# Keys that make a top-level JSON object one example rather than a wrapper around a list.
EXAMPLE_KEYS = {"messages", "conversations", "instruction", "prompt", "question", "text"}
WRAPPER_KEYS = ("data", "train", "examples", "rows", "records", "items", "samples")
SURROGATES = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def fix_text(obj):
    """Replace undecodable bytes (lone surrogates) with U+FFFD, anywhere in a record."""
    if isinstance(obj, str):
        return SURROGATES.sub("\ufffd", obj)
    if isinstance(obj, list):
        return [fix_text(v) for v in obj]
    if isinstance(obj, dict):
        return {fix_text(k): fix_text(v) for k, v in obj.items()}
    return obj


def json_error(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} (character {e.colno})"
    return str(e).split(":")[0]


class _JsonText:
    """A JSON document read in growing chunks: values are decoded one by one, so a huge
    top-level array never sits in memory as a whole."""

    def __init__(self, stream):
        self.stream, self.buf, self.pos, self.eof, self.dirty = stream, "", 0, False, False

    def _more(self) -> bool:
        chunk = self.stream.read(max(CHUNK, len(self.buf) - self.pos))  # doubles: O(n) total
        if not chunk:
            self.eof = True
            return False
        self.dirty = self.dirty or bool(SURROGATES.search(chunk))
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def value(self) -> tuple[object, bool]:
        """The next value and whether it held undecodable bytes."""
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number may go on in the next chunk
                    dirty = self.dirty and bool(SURROGATES.search(self.buf, self.pos, end))
                    self.pos = end
                    return (fix_text(obj) if dirty else obj), dirty
            except json.JSONDecodeError:
                if self.eof:
                    raise
            self._more()


def json_records(stream):
    """Records of a JSON document: a top-level array streamed element by element, an
    object wrapping one array, one object, or several objects one after another."""
    j = _JsonText(stream)
    if j.peek() == "[":
        j.pos += 1
        yield from _array(j)
        return
    try:
        first, dirty = j.value()
    except (json.JSONDecodeError, RecursionError) as e:
        raise DataError("invalid_json", good=0, detail=json_error(e)) from None
    if j.peek() == "":  # one document: a wrapper around a list, or a single example
        records = _unwrap(first)
        for n, record in enumerate(records, 1):
            yield n, record, (("invalid_utf8", {}),) if dirty else NO_ISSUES
        return
    n = 1  # several objects one after another (pretty-printed "JSON lines")
    yield n, first, (("invalid_utf8", {}),) if dirty else NO_ISSUES
    while j.peek():
        try:
            value, dirty = j.value()
        except (json.JSONDecodeError, RecursionError) as e:
            raise DataError("invalid_json", good=n, detail=json_error(e)) from None
        n += 1
        yield n, value, (("invalid_utf8", {}),) if dirty else NO_ISSUES


def _array(j: _JsonText):
    n = 0
    if j.peek() == "]":
        return
    while True:
        try:
            value, dirty = j.value()
        except (json.JSONDecodeError, RecursionError) as e:
            raise DataError("invalid_json", good=n, detail=json_error(e)) from None
        n += 1
        yield n, value, (("invalid_utf8", {}),) if dirty else NO_ISSUES
        c = j.peek()
        if c == ",":
            j.pos += 1
        elif c == "]":
            return
        else:
            detail = "the file ends too early" if not c else f"expected “,” or “]”, found “{c}”"
            raise DataError("invalid_json", good=n, detail=detail)


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
