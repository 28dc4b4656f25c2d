"""Format detection and column mapping (training/data/detect.py)."""

import pytest

from tests.conftest import FIXTURES
from training.data import (
    detect_format,
    normalise,
)

DATA = FIXTURES / "data"
PAIR = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]


@pytest.mark.parametrize(
    ("record", "fmt", "mapping"),
    [
        ({"messages": PAIR}, "messages", {"messages": "messages"}),
        (
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
            "sharegpt",
            {"conversations": "conversations"},
        ),
        ({"conversations": PAIR}, "messages", {"messages": "conversations"}),
        (
            {"messages": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
            "sharegpt",
            {"conversations": "messages"},
        ),
        (
            {"instruction": "Q", "input": "", "output": "A"},
            "alpaca",
            {"instruction": "instruction", "input": "input", "output": "output"},
        ),
        (
            {"instruction": "Q", "context": "C", "response": "A"},
            "alpaca",
            {"instruction": "instruction", "input": "context", "output": "response"},
        ),
        (
            {"prompt": "Q", "completion": "A"},
            "prompt_completion",
            {"prompt": "prompt", "completion": "completion"},
        ),
        (
            {"question": "Q", "answer": "A"},
            "prompt_completion",
            {"prompt": "question", "completion": "answer"},
        ),
        (
            {"prompt": "Q", "response": "A"},
            "prompt_completion",
            {"prompt": "prompt", "completion": "response"},
        ),
        (
            {"input": "Q", "output": "A"},
            "prompt_completion",
            {"prompt": "input", "completion": "output"},
        ),
        (
            {"query": "Q", "response": "A"},
            "prompt_completion",
            {"prompt": "query", "completion": "response"},
        ),
        (
            {"Question": "Q", "Answer": "A"},
            "prompt_completion",
            {"prompt": "Question", "completion": "Answer"},
        ),
        ({"text": "T"}, "text", {"text": "text"}),
        ({"body": "T"}, "text", {"text": "body"}),  # one column of strings: the text
    ],
)
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
