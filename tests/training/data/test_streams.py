"""Bounded reading (training/data/streams.py): records over 1 MB, compression bombs, blank
line floods and Parquet expansion cost a row error or a refusal, never the server's
memory or minutes of CPU."""

import base64
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.assets import build_tokenizer
from training.data import preview_file, validate_file
from training.data.load import BAD, DataError, open_source
from training.data.streams import MAX_RECORD_BYTES

ROOT = Path(__file__).resolve().parents[3]
HUGE = "lorem ipsum " * (MAX_RECORD_BYTES // 6)  # 2 MB of text on one line


def chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def rows(path, **kw) -> list[tuple[int, object, list]]:
    return [(n, v, [c for c, _ in issues]) for n, v, issues in open_source(path, **kw).records()]


LAYOUTS = {  # a good row, a 2 MB row, a good row, in each format
    "x.jsonl": "\n".join(json.dumps(r) for r in (chat("a", "b"), chat(HUGE, "c"), chat("d", "e"))),
    "x.txt": f"first\n{HUGE}\nthird\n",
    "x.csv": f"prompt,completion\na,b\n{HUGE},c\nd,e\n",
    "x.tsv": f"prompt\tcompletion\na\tb\n{HUGE}\tc\nd\te\n",
    "array.json": json.dumps([chat("a", "b"), chat(HUGE, "c"), chat("d", "e")]),
    "pretty.json": "\n".join(
        json.dumps(r, indent=1) for r in (chat("a", "b"), [HUGE], chat("d", "e"))
    ),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_a_record_over_the_limit_is_an_error_on_its_row_and_the_rest_is_read(tmp_path, name):
    got = rows(write(tmp_path / name, LAYOUTS[name]))
    assert [(n, v is BAD, codes) for n, v, codes in got][1] == (2, True, ["record_too_large"])
    assert [n for n, _, _ in got] == [1, 2, 3] and got[2][1] is not BAD
    report = validate_file(tmp_path / name)
    [finding] = [f for f in report.errors if f.code == "record_too_large"]
    assert finding.row == 2 and "limit of 1 MB per row" in finding.message


def test_the_first_csv_line_over_the_limit_is_a_file_error(tmp_path):
    with pytest.raises(DataError) as e:
        rows(write(tmp_path / "x.csv", HUGE + "\n"))
    assert e.value.code == "unreadable_file" and "header" in str(e.value)


def test_a_json_wrapper_over_the_limit_is_streamed(tmp_path):
    examples = [chat(f"question {i} " + "x" * 300, "answer") for i in range(5000)]  # ~2 MB
    document = {"columns": ["prompt"], "meta": {"n": 5000}, "data": examples}
    got = rows(write(tmp_path / "w.json", json.dumps(document)))
    assert len(got) == 5000 and got[-1] == (5000, examples[-1], [])
    # no wrapper key: the list too large to hold is the data, not the small one before it
    document = {"columns": ["prompt"], "conversations_2024": examples}
    assert len(rows(write(tmp_path / "w.json", json.dumps(document)))) == 5000
    # one example larger than the limit stays one (too large) example
    got = rows(write(tmp_path / "w.json", json.dumps(chat(HUGE, "a"))))
    assert [(n, v is BAD, c) for n, v, c in got] == [(1, True, ["record_too_large"])]


def _gzip(path, blocks):
    with gzip.open(path, "wb", compresslevel=6) as f:
        for block in blocks:
            f.write(block)
    return path


def _random_rows(megabytes: int):  # text that barely compresses, one row per line
    for _ in range(megabytes):
        yield base64.b64encode(os.urandom(3 * 2**18 - 3)).replace(b"A", b"\n")


BOMBS = {  # what decompresses past the 5 MB cap, or to 100 times its size and more
    "over_the_cap": (lambda: _random_rows(6), "decompressed_too_large", "5 MB"),
    "rows": (lambda: [b'{"text": "same row"}\n' * 50_000] * 60, "compression_bomb", "100 times"),
    "blank_lines": (lambda: [b"\n" * 2**20] * 200, "compression_bomb", "100 times"),
}


@pytest.mark.parametrize("kind", BOMBS)
def test_compression_bombs_are_refused_within_a_second(tmp_path, kind):
    blocks, code, words = BOMBS[kind]
    path = _gzip(tmp_path / "bomb.jsonl.gz", blocks())
    start = time.perf_counter()
    report = validate_file(path, max_bytes=(5 if kind == "over_the_cap" else 500) * 2**20)
    assert time.perf_counter() - start < 2.0  # 200 MB of blank lines took minutes
    assert [f.code for f in report.errors] == [code] and not report.readable
    assert words in report.errors[0].message


def test_gzipped_data_within_the_limits_is_read(tmp_path):
    path = tmp_path / "ok.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for i in range(200):
            f.write(json.dumps(chat(f"question {i}", f"answer {i}")) + "\n")
    report = validate_file(path, max_bytes=50 * 2**20)
    assert report.ok and report.stats["examples"] == 200


def test_a_flood_of_blank_lines_costs_no_time(tmp_path):
    row = json.dumps(chat("a", "b")) + "\n"
    for name, head, tail in (("x.jsonl", row, row), ("x.csv", "q,a\n1,2\n", "3,4\n")):
        path = tmp_path / name
        path.write_bytes(head.encode() + b"\n" * 30_000_000 + tail.encode())
        start = time.perf_counter()
        preview, report = preview_file(path), validate_file(path)
        assert time.perf_counter() - start < 5.0  # one Python step per line took ~60 s
        assert len(preview.rows) == 1 and report.rows == 2


def test_parquet_sizes_are_held_to_the_cap(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    table = pa.Table.from_pylist([chat("a", "b"), chat(HUGE, "c"), chat("d", "e")])
    pq.write_table(table, path)
    got = rows(path)
    assert [(n, v is BAD, c) for n, v, c in got] == [
        (1, False, []),
        (2, True, ["record_too_large"]),
        (3, False, []),
    ]
    with pytest.raises(DataError) as e:  # 2 MB of text once decompressed, from ~10 KB
        rows(path, max_bytes=2**20)
    assert e.value.code == "decompressed_too_large"
    text = pa.DictionaryArray.from_arrays(pa.array([0] * 2000, pa.int32()), ["x" * 50_000])
    pq.write_table(pa.table({"text": text}), path)  # one value, 2000 times: 100 MB from 1 KB
    with pytest.raises(DataError) as e:
        rows(path, max_bytes=400 * 2**20)
    assert e.value.code == "compression_bomb"


# The child's own peak (VmHWM): ru_maxrss also counts the parent's memory at the fork.
CHILD = """
import re, sys
from training.data import validate_file
def peak():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1])
tokenizer = None
if sys.argv[1]:
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
validate_file(sys.argv[2], tokenizer=tokenizer)
base = peak()
for path in sys.argv[3:]:
    validate_file(path, tokenizer=tokenizer)
print((peak() - base) // 1024)
"""


def _growth_mb(tokenizer_dir: str, small, big: list) -> int:
    """Peak memory (RSS high-water mark) added by validating `big` after `small`, in MB,
    in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, tokenizer_dir, str(small), *map(str, big)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return int(out.stdout.split()[-1])


def _single_lines(tmp_path, megabytes: int) -> list:
    text = ("lorem ipsum dolor sit amet " * (megabytes * 2**20 // 27 + 1))[: megabytes * 2**20]
    return [
        write(tmp_path / "line.txt", text),
        write(tmp_path / "line.jsonl", json.dumps({"text": text})),
        write(tmp_path / "line.json", json.dumps([{"text": text}])),
        write(tmp_path / "line.csv", f'text\n"{text}"\n'),
    ]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_a_20_mb_line_validates_in_flat_memory(tmp_path):
    small = write(tmp_path / "small.jsonl", json.dumps(chat("a", "b")) + "\n")
    assert _growth_mb("", small, _single_lines(tmp_path, 20)) < 25  # it took 40-120 MB more


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_a_20_mb_line_with_a_tokenizer_validates_in_flat_memory(tmp_path):
    tok_dir = tmp_path / "tok"
    build_tokenizer(tmp_path / "build").save_pretrained(tok_dir)
    small = write(tmp_path / "small.txt", "hello world\n")
    # tokenizing the whole line took 3 GB and 35 s; now base + a few MB
    assert _growth_mb(str(tok_dir), small, _single_lines(tmp_path, 20)[:2]) < 150
