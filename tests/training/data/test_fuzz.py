"""Property-based: whatever a file holds, under any supported name, loading, previewing and
validating it give records, a report or a DataError with a catalogue code; never another
exception, and never a hang."""

import gzip
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from training.data import load_examples, preview_file, validate_file
from training.data.codes import CATALOGUE
from training.data.load import DataError, open_source

NAMES = ["x.jsonl", "x.json", "x.csv", "x.tsv", "x.txt", "x.parquet", "x.jsonl.gz", "x.csv.gz", "x"]
KEYS = ["messages", "role", "content", "text", "prompt", "completion", "instruction", "output"]
KEYS += ["conversations", "from", "value", "weight", "data", "system", "user", "assistant"]

# Markers replaced in the JSON text: a lone surrogate escape (no tokenizer or UTF-8 writer
# takes one), nesting past Python's recursion limit, a number past its 4,300 digits.
LONE, DEEP, HUGE = "<lone>", "<deep>", "<huge>"
RAW = {LONE: '"\\udc80"', DEEP: "[" * 3000, HUGE: "9" * 5000}
leaves = (
    st.sampled_from([LONE, DEEP, HUGE])
    | st.sampled_from(["user", "assistant", "system", "human", "gpt", ""])
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)

message = st.fixed_dictionaries({"role": leaves, "content": leaves})
turn = st.fixed_dictionaries({"from": leaves, "value": leaves})
examples = (  # rows shaped like each format, so the checks behind detection run too
    st.fixed_dictionaries({"messages": st.lists(message, max_size=4)})
    | st.fixed_dictionaries({"conversations": st.lists(turn, max_size=4)})
    | st.fixed_dictionaries({"prompt": leaves, "completion": leaves})
    | st.fixed_dictionaries({"instruction": leaves, "output": leaves})
    | st.fixed_dictionaries({"text": leaves})
)
LAYOUTS = [["prompt", "completion"], ["conversations"], ["text"], ["instruction", "output"]]


@st.composite
def json_text(draw) -> bytes:
    """JSON lines or a JSON document, maybe cut short or with stray bytes."""
    values = draw(st.lists(examples | json_values, max_size=8))
    if draw(st.booleans()):
        text = "\n".join(json.dumps(v, ensure_ascii=draw(st.booleans())) for v in values)
    else:
        text = json.dumps(
            values if draw(st.booleans()) else {"data": values},
            indent=draw(st.sampled_from([None, 1])),
        )
    for marker, raw in RAW.items():
        text = text.replace(f'"{marker}"', raw)
    data = text.encode("utf-8")
    if data and draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=8)) + data[cut:]
    return data


@st.composite
def delimited_text(draw) -> bytes:
    """CSV/TSV-like text: quotes, separators and line breaks in odd places, and cells that
    hold (broken) JSON conversations."""
    cell = st.text(alphabet=st.sampled_from(list("ab \"',;\t\n\ré😀{}[]\\")), max_size=12)
    cell |= st.sampled_from([RAW[DEEP], '[{"role": "user", "content": "\\udc80"}]'])
    header = st.sampled_from(LAYOUTS) | st.lists(st.text(max_size=6), min_size=1, max_size=4)
    rows = [draw(header), *draw(st.lists(st.lists(cell, min_size=1, max_size=4), max_size=8))]
    sep = draw(st.sampled_from([",", "\t", ";"]))
    text = "\n".join(sep.join(r) for r in rows)
    codec = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252", "shift_jis"]))
    return text.encode(codec, errors="replace")


def parquet_bytes(data: bytes) -> bytes:
    """A real Parquet file of the rows in `data` when they make a table, else `data`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = [json.loads(line) for line in data.splitlines()]
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([r for r in rows if isinstance(r, dict)]), buffer)
        return buffer.getvalue()
    except Exception:
        return data


contents = st.binary(max_size=3000) | json_text() | delimited_text()


def check(path: Path) -> None:
    try:
        for _, _, issues in open_source(path, max_bytes=1 << 20).records():
            assert all(code in CATALOGUE for code, _ in issues)
    except DataError as e:
        assert e.code in CATALOGUE
    report = validate_file(path, max_bytes=1 << 20)
    for finding in report.errors + report.warnings:
        assert finding.code in CATALOGUE
        assert "unexpected problem" not in finding.message, finding.message
    json.dumps(report.to_json(), ensure_ascii=False).encode("utf-8")  # printable as is
    preview = preview_file(path)
    assert not (preview.error or "").startswith("The file could not be read ("), preview.error
    try:
        load_examples(path)
    except DataError as e:
        assert e.code in CATALOGUE


@pytest.mark.timeout(120)
@settings(
    max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(name=st.sampled_from(NAMES), data=contents)
@example("x.jsonl", b'{"messages": [{"role": "\\udc80", "content": "q"}]}')  # broke the report
@example("x.csv", b"conversations\n" + b"[" * 3000)  # a RecursionError took the page down
def test_any_file_gives_a_report_or_a_known_error(name, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if name.endswith(".parquet"):
            data = parquet_bytes(data)
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        check(path)
