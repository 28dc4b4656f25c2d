"""Reading every file type: row numbers, encodings, broken input, streaming."""

import gzip
import json

import pytest

from tests.conftest import FIXTURES
from training.data import jsonfile, validate_file
from training.data.load import BAD, DataError, open_source

DATA = FIXTURES / "data"


def chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def records(path, **kw):
    source = open_source(path, **kw)
    return source, list(source.records())


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_with_bom_and_crlf():
    source, got = records(DATA / "bom.jsonl")
    assert source.kind == "jsonl"
    assert [(n, v["messages"][0]["content"]) for n, v, _ in got] == [(1, "Hi"), (2, "Bye")]


# UTF-8 (line 1 says "née") with one damaged byte on line 2, a blank and a broken line
DAMAGED_UTF8 = (
    b'{"messages": [{"role": "user", "content": "n\xc3\xa9e"}, {"role": "assistant", "content": "1"}]}\n'
    b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "ok"}]}\n'
    b"\n"
    b'{"messages": [\n'
    b'{"messages": [{"role": "user", "content": "five"}, {"role": "assistant", "content": "5"}]}\n'
)


def test_jsonl_bad_bytes_broken_line_and_blank_line_keep_line_numbers(tmp_path):
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(DAMAGED_UTF8)
    _, got = records(path)
    rows = {n: (v, issues) for n, v, issues in got}
    assert sorted(rows) == [1, 2, 4, 5]  # line 3 is blank: skipped, numbering unchanged
    value, issues = rows[2]
    assert value["messages"][0]["content"] == "caf\ufffd"  # decoded, with a warning
    assert [c for c, _ in issues] == ["invalid_utf8"]
    value, issues = rows[4]
    assert value is BAD and issues[0][0] == "unparseable_line"
    assert rows[5][0]["messages"][1]["content"] == "5"


def test_csv_rows_count_records_after_the_header_not_lines():
    source, got = records(DATA / "qa.csv")
    assert source.kind == "csv" and source.columns == ["Question", "Answer"]  # BOM stripped
    assert [n for n, _, _ in got] == [1, 2, 3, 4]
    assert got[0][1] == {"Question": "What is 2, plus 2?", "Answer": "4"}
    assert got[1][1] == {"Question": 'Say "hi"', "Answer": '"hi"'}
    assert got[2][1]["Question"] == "Line one\nline two"
    assert got[3][1] == {"Question": "Who?", "Answer": "Me"}


def test_csv_wrong_field_count_and_bad_bytes(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"prompt,completion\n\xc3\xa0,b\nonly one\nc\xff,d\n")  # UTF-8, then damage
    _, got = records(path)
    assert got[1][1] is BAD and got[1][2][0] == ("bad_csv_row", {"found": 1, "expected": 2})
    assert got[2][1] == {"prompt": "c\ufffd", "completion": "d"}
    assert got[2][2][0][0] == "invalid_utf8"


def test_csv_with_semicolons(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("question;answer\nWhy?;Because.\n")
    _, got = records(path)
    assert got[0][1] == {"question": "Why?", "answer": "Because."}


def test_tsv():
    source, got = records(DATA / "chat.tsv")
    assert source.kind == "tsv"
    assert got[1] == (2, {"prompt": "Capital of Japan?", "response": "Tokyo"}, ())


def test_txt_one_example_per_line_blank_lines_skipped():
    _, got = records(DATA / "lines.txt")
    assert [(n, v["text"]) for n, v, _ in got] == [
        (1, "First sentence of the story."),
        (3, "Second one, after a blank line."),
        (4, "Third."),
    ]


def test_json_object_holding_one_array():
    _, got = records(DATA / "wrapped.json")
    assert [n for n, _, _ in got] == [1, 2]
    assert got[0][1]["output"] == "5"


def test_json_array_streams_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonfile, "CHUNK", 7)  # 7 characters at a time: values span chunks
    rows = [chat(f"question {i} " + "x" * (i % 7), f"answer {i}") for i in range(50)]
    rows[10]["messages"][1]["content"] = 12345  # a number at a chunk edge must not be cut
    path = tmp_path / "a.json"
    path.write_text(json.dumps(rows))
    _, got = records(path)
    assert [v for _, v, _ in got] == rows
    assert [n for n, _, _ in got] == list(range(1, 51))


def test_json_broken_after_some_rows_keeps_them(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"text": "a"}, {"text": "b"}, {"text": ')
    source = open_source(path)
    seen = []
    with pytest.raises(DataError) as e:
        for n, value, _ in source.records():
            seen.append((n, value))
    assert seen == [(1, {"text": "a"}), (2, {"text": "b"})]
    assert e.value.code == "invalid_json" and e.value.details["good"] == 2


def test_json_file_holding_json_lines_is_read_line_by_line(tmp_path):
    path = write_jsonl(tmp_path / "lines.json", [chat("a", "b"), chat("c", "d")])
    source, got = records(path)
    assert source.kind == "jsonl" and len(got) == 2


def test_json_pretty_printed_objects_one_after_another(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(
        json.dumps(chat("a", "b"), indent=2) + "\n" + json.dumps(chat("c", "d"), indent=2)
    )
    _, got = records(path)
    assert [n for n, _, _ in got] == [1, 2]


def test_single_json_example_is_one_record(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(chat("a", "b"), indent=2))
    _, got = records(path)
    assert got == [(1, chat("a", "b"), ())]


def test_parquet_nested_messages_and_missing_optional_keys(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "weight": 1},
            ]
        },
        chat("q2", "a2"),
    ]
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    source, got = records(path)
    assert source.kind == "parquet" and source.columns == ["messages"]
    assert got[0][1] == rows[0]
    assert got[1][1] == chat("q2", "a2")  # parquet's weight=None is dropped, not kept as null


def test_gzip_and_utf16(tmp_path):
    gz = tmp_path / "x.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps(chat("a", "b")) + "\n")
    assert [v for _, v, _ in records(gz)[1]] == [chat("a", "b")]
    u16 = tmp_path / "u16.csv"
    u16.write_text("prompt,completion\nnaïve?,oui\n", encoding="utf-16")
    assert records(u16)[1][0][1] == {"prompt": "naïve?", "completion": "oui"}


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: p / "missing.jsonl", "file_not_found"),
        (lambda p: p, "unreadable_file"),  # a folder
        (lambda p: _write(p / "g.jsonl", bytes(range(256)) * 40), "binary_file"),
        (lambda p: _write(p / "x.parquet", b'{"text": 1}\n'), "unreadable_file"),
    ],
)
def test_unreadable_files_raise_data_error(tmp_path, make, code):
    with pytest.raises(DataError) as e:
        list(open_source(make(tmp_path)).records())
    assert e.value.code == code
    assert str(e.value)  # a sentence for people


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_size_cap(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [chat("a", "b")] * 100)
    with pytest.raises(DataError) as e:
        open_source(path, max_bytes=1000)
    assert e.value.code == "file_too_large"


def test_hub_id_offline_gives_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        open_source("someone/some-dataset")
    assert e.value.code == "hub_offline" and "offline" in str(e.value)


def test_progress_fraction_reaches_one(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [chat("a", "b")] * 200)
    source = open_source(path)
    it = source.records()
    next(it)
    assert 0 <= source.fraction() <= 1
    list(it)
    assert source.fraction() == 1.0


@pytest.mark.parametrize("suffix", [".jsonl", ".txt"])
def test_line_numbers_survive_long_runs_of_blank_lines(tmp_path, suffix):
    row = json.dumps({"text": "a"}) + "\n"
    path = tmp_path / f"x{suffix}"
    path.write_text(row + "\n" * 100_000 + "  \t\r\n" * 10 + row)  # skipped in bulk
    assert [n for n, _, _ in records(path)[1]] == [1, 100_012]


def test_archives_other_than_gzip_are_named(tmp_path):
    import zipfile

    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data.jsonl", json.dumps(chat("a", "b")))
    with pytest.raises(DataError) as e:
        open_source(path)
    assert "ZIP archive" in str(e.value) and "unpack it" in str(e.value)


def test_json_is_read_as_strictly_as_json_is_written(tmp_path):
    # Python's json reads NaN, Infinity and 1e999999 (as inf); JSON has no such values.
    lines = tmp_path / "numbers.jsonl"
    lines.write_text('{"text": 1e999999}\n{"text": NaN}\n{"text": "ok"}\n')
    report = validate_file(lines)
    assert [(f.row, f.code) for f in report.errors] == [
        (1, "unparseable_line"),
        (2, "unparseable_line"),
    ]
    assert "too large" in report.errors[0].message and "NaN" in report.errors[1].message
    # A JSON array followed by more text is a broken file, not the array alone.
    garbage = tmp_path / "garbage.json"
    garbage.write_text('[{"text": "a"}, {"text": "b"}] }}}garbage')
    [error] = validate_file(garbage).errors
    assert error.code == "invalid_json" and "after 2 complete examples" in error.message
    assert "more after the list ends" in error.message
