"""Which text encoding a file is in, and what a byte that is not UTF-8 means.

UTF-8 (with or without a byte-order mark) is read as is. UTF-16 and UTF-32 with a
byte-order mark, and UTF-16 without one (every other byte zero), are decoded. Any other
file must be UTF-8. A byte that is not UTF-8 before the file has shown any valid UTF-8
beyond ASCII means the whole file is in another encoding (Windows-1252, Shift JIS, ...):
reading it as UTF-8 would turn every accented letter into "�", so the file is refused
with `not_utf8`, naming the byte, its line and the likely encoding. Once the file has
shown valid UTF-8 (in its first 64 KB, more valid characters than bad bytes), a stray bad
byte is damage in one row: that row gets an `invalid_utf8` warning and the byte becomes
U+FFFD.

Text decoded with errors="surrogateescape" carries each bad byte as a lone surrogate
(U+DC80-U+DCFF); `fix_text` turns every lone surrogate (those, and ones a JSON file
spells as "\\udc80") into U+FFFD, since no tokenizer or UTF-8 writer accepts them.
Valid characters, emoji included, are never changed.
"""

import codecs
import re

from .codes import DataError

BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
INVALID_UTF8 = (("invalid_utf8", {}),)  # the issues of a record with bad bytes replaced
SURROGATES = re.compile("[\ud800-\udfff]")  # bad bytes (surrogateescape) or lone escapes
ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # one spelled out in JSON: "\udc80"
NON_ASCII_BYTES = re.compile(rb"[\x80-\xff]")
VALID_NON_ASCII = re.compile("[^\x00-\x7f\ud800-\udfff]")
SAMPLE = 65536  # bytes given to the encoding guess (a little text before the bad byte, too)
NAMES = {
    "cp1252": "Windows-1252 (Western European)",
    "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1253": "Windows-1253 (Greek)",
    "cp1254": "Windows-1254 (Turkish)",
    "cp1255": "Windows-1255 (Hebrew)",
    "cp1256": "Windows-1256 (Arabic)",
    "koi8_r": "KOI8-R (Russian)",
    "cp932": "Shift JIS (Japanese)",
    "shift_jis": "Shift JIS (Japanese)",
    "euc_jp": "EUC-JP (Japanese)",
    "gb18030": "GB18030 (Chinese)",
    "gb2312": "GB18030 (Chinese)",
    "gbk": "GB18030 (Chinese)",
    "big5": "Big5 (Traditional Chinese)",
    "cp949": "EUC-KR (Korean)",
    "euc_kr": "EUC-KR (Korean)",
    "tis_620": "TIS-620 (Thai)",
    "cp874": "Windows-874 (Thai)",
}


def fix_text(obj):
    """Replace lone surrogates with U+FFFD, anywhere in a record."""
    if isinstance(obj, str):
        return SURROGATES.sub("\ufffd", obj)
    if isinstance(obj, list):
        return [fix_text(v) for v in obj]
    if isinstance(obj, dict):
        return {fix_text(k): fix_text(v) for k, v in obj.items()}
    return obj


def fix_escapes(value, raw: str, pos: int = 0, end: int | None = None) -> tuple[object, bool]:
    """A value JSON-decoded from raw[pos:end], with the lone surrogates its escapes spelled
    out replaced (pairs are emoji, and stay); whether any was."""
    if ESCAPED_SURROGATE.search(raw, pos, len(raw) if end is None else end) is None:
        return value, False
    fixed = fix_text(value)
    return fixed, fixed != value


def sniff_encoding(head: bytes) -> tuple[str, bool]:
    """(codec to read the file with, whether it is known to be UTF-8 or decoded text
    already) from its first bytes; raises DataError for binary data or another encoding."""
    for bom, codec in BOMS:
        if head.startswith(bom):
            return codec, True
    even, odd = head[0:4096:2], head[1:4096:2]  # UTF-16 without a mark: ASCII, zero, ...
    for codec, low, high in (("utf-16-le", even, odd), ("utf-16-be", odd, even)):
        if len(high) >= 2 and high.count(0) >= 0.9 * len(high) and 0 not in low:
            return codec, True
    if b"\x00" in head:
        raise DataError("binary_file")
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(head)
    first = SURROGATES.search(text)
    if first is None:
        return "utf-8", VALID_NON_ASCII.search(text) is not None
    if len(VALID_NON_ASCII.findall(text)) >= len(SURROGATES.findall(text)):
        return "utf-8", True  # UTF-8 with a few damaged bytes
    before = text[: first.start()].encode("utf-8", "surrogateescape")
    raise not_utf8(len(before), before.count(b"\n") + 1, head)


def not_utf8(offset: int, line: int, sample: bytes) -> DataError:
    """The refusal of a file that is not UTF-8, with the likely encoding when it shows."""
    guess = guess_encoding(sample)
    return DataError(
        "not_utf8",
        offset=f"{offset:,}",
        line=f"{line:,}",
        guess=f"; it looks like {guess}" if guess else "",
    )


def guess_encoding(sample: bytes) -> str | None:
    """A readable name for the encoding the bytes are most likely in, or None. Text with
    a few non-ASCII letters among many ASCII ones that Windows-1252 reads is Western
    European (short samples fool the statistics there); otherwise charset_normalizer's
    best guess that names a language, else its best guess."""
    sample = sample[:SAMPLE]
    try:
        letters = sum(map(str.isalpha, sample.decode("cp1252")))
        if 3 * len(NON_ASCII_BYTES.findall(sample)) <= letters:
            return NAMES["cp1252"]
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        matches = [m for m in from_bytes(sample) if not m.encoding.startswith(("utf", "ascii"))]
    except Exception:  # the guess is a courtesy: never let it break the refusal
        return None
    if not matches:
        return None
    best = next((m for m in matches if m.language != "Unknown"), matches[0]).encoding
    return NAMES.get(best, best.replace("_", "-").upper())


class Utf8Check:
    """Follows one UTF-8 file in reading order and decides, at its first bad byte, whether
    the file is in another encoding (raise not_utf8) or is UTF-8 with damage (go on)."""

    def __init__(self, established: bool):
        self.established = established  # valid UTF-8 beyond ASCII seen (or not UTF-8 at all)
        self.offset, self.lineno = 0, 1  # where the next piece given to `text` starts

    def text(self, piece: str) -> None:
        """The next piece of the file, decoded with surrogateescape."""
        if self.established:
            return
        if piece.isascii():
            self.offset += len(piece)
            self.lineno += piece.count("\n")
            return
        bad = SURROGATES.search(piece)
        before = piece if bad is None else piece[: bad.start()]
        if not before.isascii():
            self.established = True
            return
        sample = piece[max(0, bad.start() - 2000) : bad.start() + SAMPLE]
        sample = sample.encode("utf-8", "surrogateescape")
        raise not_utf8(self.offset + len(before), self.lineno + before.count("\n"), sample)

    def skipped(self, nbytes: int, lines: int) -> None:
        """Blank lines passed over without being read as text."""
        if not self.established:
            self.offset += nbytes
            self.lineno += lines

    def line(self, data: bytes, bad: int | None, offset: int, number: int) -> None:
        """One line of bytes (line `number`, starting at byte `offset` of the file) whose
        first byte that is not UTF-8 is at `bad` (None: the line is valid UTF-8)."""
        if self.established or (bad is None and data.isascii()):
            return
        if bad is None or not data[:bad].isascii():
            self.established = True
            return
        raise not_utf8(offset + bad, number, data[max(0, bad - 2000) : bad + SAMPLE])
