"""Format detection, column mapping, normalisation to one internal form, split, preview."""

import json

import pytest

from tests.conftest import FIXTURES
from training.data import (
    detect_format,
    iter_examples,
    load_examples,
    normalise,
    preview_file,
    split_examples,
)
from training.data.load import DataError

DATA = FIXTURES / "data"
PAIR = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]


@pytest.mark.parametrize(
    ("record", "fmt", "mapping"),
    [
        ({"messages": PAIR}, "messages", {"messages": "messages"}),
        ({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
         "sharegpt", {"conversations": "conversations"}),
        ({"conversations": PAIR}, "messages", {"messages": "conversations"}),
        ({"messages": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
         "sharegpt", {"conversations": "messages"}),
        ({"instruction": "Q", "input": "", "output": "A"}, "alpaca",
         {"instruction": "instruction", "input": "input", "output": "output"}),
        ({"instruction": "Q", "context": "C", "response": "A"}, "alpaca",
         {"instruction": "instruction", "input": "context", "output": "response"}),
        ({"prompt": "Q", "completion": "A"}, "prompt_completion", {"prompt": "prompt", "completion": "completion"}),
        ({"question": "Q", "answer": "A"}, "prompt_completion", {"prompt": "question", "completion": "answer"}),
        ({"prompt": "Q", "response": "A"}, "prompt_completion", {"prompt": "prompt", "completion": "response"}),
        ({"input": "Q", "output": "A"}, "prompt_completion", {"prompt": "input", "completion": "output"}),
        ({"query": "Q", "response": "A"}, "prompt_completion", {"prompt": "query", "completion": "response"}),
        ({"Question": "Q", "Answer": "A"}, "prompt_completion", {"prompt": "Question", "completion": "Answer"}),
        ({"text": "T"}, "text", {"text": "text"}),
        ({"body": "T"}, "text", {"text": "body"}),  # one column of strings: the text
    ],
)  # fmt: skip
def test_every_format_and_alias_is_detected(record, fmt, mapping):
    d = detect_format([record, record])
    assert (d.format, d.mapping, d.ambiguous) == (fmt, mapping, False)
    example, issues = normalise(record, d)
    assert example is not None, issues


def test_ambiguous_detection_says_so_and_picks_by_priority():
    d = detect_format([{"messages": PAIR, "text": "rendered"}])
    assert d.format == "messages" and d.ambiguous and d.candidates == ["messages", "text"]
    assert "text" in d.reason


def test_unknown_columns():
    d = detect_format([{"foo": 1, "bar": 2}])
    assert d.format is None and d.candidates == []


def test_mapping_by_hand_picks_the_format():
    rows = [{"my_q": "Q", "my_a": "A", "text": "noise"}]
    d = detect_format(rows, mapping={"prompt": "my_q", "completion": "my_a"})
    assert d.format == "prompt_completion" and d.mapping == {"prompt": "my_q", "completion": "my_a"}
    assert normalise(rows[0], d)[0] == {"messages": PAIR}
    d = detect_format([{"dialog": PAIR}], mapping={"messages": "dialog"})
    assert (d.format, d.mapping) == ("messages", {"messages": "dialog"})
    d = detect_format([{"body": "T", "id": 3}], mapping={"text": "body"})
    assert normalise({"body": "T", "id": 3}, d)[0] == {"text": "T"}


def test_format_override_and_missing_column():
    d = detect_format([{"prompt": "Q", "completion": "A"}], fmt="text")
    assert d.format == "text" and d.missing == ["text"]
    d = detect_format([{"q": "Q"}], mapping={"prompt": "q", "completion": "nope"})
    assert d.missing == ["completion"]


def test_alpaca_input_is_appended_and_system_kept():
    d = detect_format(
        [{"instruction": "Add", "input": "2 and 3", "output": "5", "system": "Be exact."}]
    )
    example, _ = normalise(
        {"instruction": "Add", "input": "2 and 3", "output": "5", "system": "Be exact."}, d
    )
    assert example == {
        "messages": [
            {"role": "system", "content": "Be exact."},
            {"role": "user", "content": "Add\n\n2 and 3"},
            {"role": "assistant", "content": "5"},
        ]
    }
    example, _ = normalise({"instruction": "Greet", "input": " ", "output": "Hi"}, d)
    assert example["messages"][0] == {"role": "user", "content": "Greet"}


def test_sharegpt_roles_and_top_level_system():
    examples = load_examples(DATA / "sharegpt.json")
    assert examples[0] == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ]
    }
    assert [m["role"] for m in examples[1]["messages"]] == ["user", "assistant"] * 2


def test_messages_keep_weight_and_drop_name():
    d = detect_format([{"messages": PAIR}])
    record = {"messages": [{"role": "user", "content": "Q", "name": "bob"},
                           {"role": "assistant", "content": "A", "weight": 0},
                           {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]}  # fmt: skip
    example, issues = normalise(record, d)
    assert example["messages"][0] == {"role": "user", "content": "Q"}
    assert example["messages"][1] == {"role": "assistant", "content": "A", "weight": 0}
    assert "no_system_message" in issues and "unknown_message_keys" not in issues


def test_csv_messages_column_holding_json(tmp_path):
    path = tmp_path / "chat.csv"
    path.write_text('messages\n"' + json.dumps(PAIR).replace('"', '""') + '"\n')
    assert load_examples(path) == [{"messages": PAIR}]


def test_numbers_become_text_and_conversational_prompt_completion():
    d = detect_format([{"prompt": "2+2?", "completion": 4}])
    assert normalise({"prompt": "2+2?", "completion": 4}, d)[0]["messages"][1]["content"] == "4"
    record = {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
              "completion": [{"role": "assistant", "content": "A"}]}  # fmt: skip
    example, _ = normalise(record, detect_format([record]))
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]


@pytest.mark.parametrize(
    ("path", "fmt", "first"),
    [
        ("qa.csv", "prompt_completion", [{"role": "user", "content": "What is 2, plus 2?"}, {"role": "assistant", "content": "4"}]),
        ("chat.tsv", "prompt_completion", [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]),
        ("wrapped.json", "alpaca", [{"role": "user", "content": "Add\n\n2 and 3"}, {"role": "assistant", "content": "5"}]),
        ("bom.jsonl", "messages", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]),
    ],
)  # fmt: skip
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


def test_iter_examples_skips_bad_rows_and_keeps_row_numbers():
    rows = list(iter_examples(DATA / "bad_bytes.jsonl"))
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


def test_preview_shows_raw_rows_examples_and_problems():
    preview = preview_file(DATA / "bad_bytes.jsonl", n=3)
    assert preview.kind == "jsonl" and preview.row_numbers == [1, 2, 4]
    assert preview.columns == ["messages"]
    assert preview.examples[0] == {
        "messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "1"}]
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
