"""Text encodings (training/data/encoding.py): UTF-8 reads as is, UTF-16/32 are decoded,
any other encoding is refused by name instead of turning every accent into "�"."""

import json

import pytest

from tests.conftest import FIXTURES
from training.data import load_examples, preview_file, validate_file
from training.data.encoding import guess_encoding
from training.data.load import DataError, open_source

HOSTILE = FIXTURES / "hostile" / "data"


def values(path) -> list:
    return [(n, v, issues) for n, v, issues in open_source(path).records()]


def refusal(path) -> str:
    report = validate_file(path)
    assert not report.readable and report.exit_code == 2
    [finding] = [f for f in report.errors if f.code == "not_utf8"]
    assert finding.row is None  # the whole file
    assert "Save As, Encoding: UTF-8" in finding.hint
    return finding.message


def test_windows_1252_csv_is_refused_naming_the_encoding_and_the_first_bad_byte():
    message = refusal(HOSTILE / "windows-1252.csv")
    # "Quel caf" is 8 bytes after the 18-byte header: é is byte 26, on line 2
    assert "not UTF-8" in message and "offset 26 (line 2)" in message
    assert "Windows-1252" in message
    assert "not UTF-8" in preview_file(HOSTILE / "windows-1252.csv").error
    with pytest.raises(DataError) as e:
        load_examples(HOSTILE / "windows-1252.csv")  # training refuses it too
    assert e.value.code == "not_utf8"


def test_shift_jis_is_refused_as_japanese():
    assert "Shift JIS (Japanese)" in refusal(HOSTILE / "shift_jis.txt")


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".txt", ".csv"])
def test_a_bad_byte_far_into_an_ascii_file_is_found_while_streaming(tmp_path, suffix):
    lines = [json.dumps({"text": f"line {i} " + "x" * 90}) for i in range(2000)]  # ~200 KB
    if suffix == ".json":
        lines = ["[" + ",\n".join(lines) + ","]
    elif suffix == ".csv":
        lines = ["text"] + [f"line {i} " + "x" * 90 for i in range(2000)]
    head = ("\n".join(lines) + "\n").encode()
    path = tmp_path / f"late{suffix}"
    path.write_bytes(head + b'"caf\xe9"\n')
    offset, line = len(head) + 4, head.count(b"\n") + 1  # é is the 5th byte of its line
    assert f"offset {offset:,} (line {line:,})" in refusal(path)


def test_damaged_utf8_warns_per_row_and_keeps_the_rest(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes("Déjà vu.\n".encode() + b"One bad \xff byte.\nFine.\n")
    got = values(path)
    assert [v["text"] for _, v, _ in got] == ["Déjà vu.", "One bad \ufffd byte.", "Fine."]
    assert [[c for c, _ in issues] for _, _, issues in got] == [[], ["invalid_utf8"], []]


@pytest.mark.parametrize(
    "name",
    ["utf-16-le-bom.jsonl", "utf-16-be-bom.json", "utf-32-le-bom.txt", "utf-16-le-no-bom.csv"],
)
def test_utf16_and_utf32_are_decoded(name):
    got = values(HOSTILE / name)
    assert got and all(not issues for _, _, issues in got)
    text = json.dumps([v for _, v, _ in got], ensure_ascii=False)
    assert "\ufffd" not in text and "\ufeff" not in text
    assert any(word in text for word in ("Grüße zurück! 😀", "Deuxième ligne 😀.", "crème"))
    assert validate_file(HOSTILE / name).readable


def test_utf32_big_endian_and_utf16_without_mark_big_endian(tmp_path):
    rows = [{"prompt": "naïve?", "completion": "oui"}]
    for codec, mark in (("utf-32-be", "\ufeff"), ("utf-16-be", "")):
        path = tmp_path / f"{codec}.jsonl"
        path.write_bytes((mark + json.dumps(rows[0], ensure_ascii=False) + "\n").encode(codec))
        assert [v for _, v, _ in values(path)] == rows


def test_escaped_emoji_stay_and_lone_surrogates_are_replaced():
    path = HOSTILE / "escapes.jsonl"
    got = values(path)
    assert got[0][1] == {"text": "emoji 😀 stays"} and got[0][2] == ()
    assert got[1][1] == {"text": "lone \ufffd surrogate"}
    assert [c for c, _ in got[1][2]] == ["invalid_utf8"]
    as_json = path.parent / "escapes.json"
    try:  # the same rows as a JSON array go through the chunked reader
        as_json.write_text("[" + ",".join(path.read_text().splitlines()) + "]")
        assert [(v, [c for c, _ in i]) for _, v, i in values(as_json)] == [
            ({"text": "emoji 😀 stays"}, []),
            ({"text": "lone \ufffd surrogate"}, ["invalid_utf8"]),
        ]
    finally:
        as_json.unlink()


def test_lone_surrogates_never_reach_the_tokenizer_or_the_report(tmp_path, tiny_tokenizer):
    path = tmp_path / "x.jsonl"
    rows = [
        '{"messages": [{"role": "user", "content": "q\\udc80"}, '
        '{"role": "assistant", "content": "a\\ud800"}]}',
        '{"messages": [{"role": "b\\udfff", "content": "q"}]}',
    ]
    path.write_text("\n".join(rows) + "\n")
    report = validate_file(path, tokenizer=tiny_tokenizer)
    assert report.readable and "unknown_role" in report.counts
    assert report.counts["invalid_utf8"] == 2
    json.dumps(report.to_json(), ensure_ascii=False).encode("utf-8")  # printable


def test_old_mac_line_ends_are_lines():
    got = values(HOSTILE / "cr-lines.csv")
    assert [v for _, v, _ in got] == [
        {"prompt": "What is 2+2?", "completion": "4"},
        {"prompt": "Say hi", "completion": "hi"},
    ]


def test_guess_names_common_encodings():
    assert guess_encoding("Grüße aus München".encode("cp1252")) == "Windows-1252 (Western European)"
    assert guess_encoding("Привет, как дела".encode("cp1251")) == "Windows-1251 (Cyrillic)"
    assert guess_encoding("中文文本，你好世界".encode("gb18030")) == "GB18030 (Chinese)"
