"""Reading a file as normalised examples: files of every kind, skipped rows, the seeded split, the preview (training/data/examples.py)."""

import pytest

from tests.conftest import FIXTURES
from tests.training.data.test_load import DAMAGED_UTF8
from training.data import (
    iter_examples,
    load_examples,
    preview_file,
    split_examples,
)
from training.data.load import DataError

DATA = FIXTURES / "data"


@pytest.mark.parametrize(
    ("path", "fmt", "first"),
    [
        (
            "qa.csv",
            "prompt_completion",
            [
                {"role": "user", "content": "What is 2, plus 2?"},
                {"role": "assistant", "content": "4"},
            ],
        ),
        (
            "chat.tsv",
            "prompt_completion",
            [
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris"},
            ],
        ),
        (
            "wrapped.json",
            "alpaca",
            [{"role": "user", "content": "Add\n\n2 and 3"}, {"role": "assistant", "content": "5"}],
        ),
        (
            "bom.jsonl",
            "messages",
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        ),
    ],
)
def test_files_load_as_normalised_examples(path, fmt, first):
    preview = preview_file(DATA / path)
    assert preview.format == fmt and preview.error is None
    assert load_examples(DATA / path)[0] == {"messages": first}


def test_txt_is_text_format():
    assert load_examples(DATA / "lines.txt") == [
        {"text": "First sentence of the story."},
        {"text": "Second one, after a blank line."},
        {"text": "Third."},
    ]


def damaged(tmp_path):
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(DAMAGED_UTF8)
    return path


def test_iter_examples_skips_bad_rows_and_keeps_row_numbers(tmp_path):
    rows = list(iter_examples(damaged(tmp_path)))
    assert [r for r, _ in rows] == [1, 2, 5]


def test_iter_examples_refuses_unusable_files(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"foo": 1}\n')
    with pytest.raises(DataError, match="Could not tell"):
        load_examples(path)
    with pytest.raises(DataError, match="does not exist"):
        load_examples(tmp_path / "nope.jsonl")


def test_split_is_seeded_deterministic_and_complete():
    examples = [{"text": str(i)} for i in range(100)]
    train, val = split_examples(examples, 0.1, seed=42)
    assert (len(train), len(val)) == (90, 10)
    assert (train, val) == split_examples(examples, 0.1, seed=42)
    assert val != split_examples(examples, 0.1, seed=7)[1]
    assert sorted(train + val, key=lambda e: int(e["text"])) == examples
    assert split_examples(examples[:1], 0.1) == (examples[:1], [])
    assert split_examples(examples[:5], 0.1)[1] != []  # at least one held out when splitting


def test_preview_shows_raw_rows_examples_and_problems(tmp_path):
    preview = preview_file(damaged(tmp_path), n=3)
    assert preview.kind == "jsonl" and preview.row_numbers == [1, 2, 4]
    assert preview.columns == ["messages"]
    assert preview.examples[0] == {
        "messages": [{"role": "user", "content": "née"}, {"role": "assistant", "content": "1"}]
    }
    assert preview.rows[2] == {} and preview.examples[2] is None
    assert any("not valid JSON" in p for p in preview.problems[2])
    assert any("UTF-8" in p for p in preview.problems[1])
    assert len(preview.table()) == 3 and preview.table()[0][0].startswith("[{")


def test_preview_never_raises(tmp_path):
    assert "does not exist" in preview_file(tmp_path / "nope.csv").error
    (tmp_path / "x.bin").write_bytes(bytes(range(256)))
    assert preview_file(tmp_path / "x.bin").error
    (tmp_path / "u.jsonl").write_text('{"foo": 1}\n')
    preview = preview_file(tmp_path / "u.jsonl")
    assert (
        preview.format is None
        and "Could not tell" in preview.error
        and preview.rows == [{"foo": 1}]
    )
