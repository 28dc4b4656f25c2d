"""Normalisation to one internal form: every format's roles, system prompts, weights, numbers (training/data/normalise.py)."""

import json

from tests.conftest import FIXTURES
from training.data import (
    detect_format,
    load_examples,
    normalise,
)

DATA = FIXTURES / "data"
PAIR = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]


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
    record = {
        "messages": [
            {"role": "user", "content": "Q", "name": "bob"},
            {"role": "assistant", "content": "A", "weight": 0},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2"},
        ]
    }
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
    record = {
        "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "completion": [{"role": "assistant", "content": "A"}],
    }
    example, _ = normalise(record, detect_format([record]))
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
