"""DataChoice, the Data tab's hand-off to training, and load_splits, the worker's split."""

import copy
import json

from training.config import RunConfig
from training.data import DataChoice, load_splits, validate_file
from training.paths import REPO_ROOT

CSV = REPO_ROOT / "samples" / "unit_conversions.csv"


def test_an_unchecked_choice_is_not_ready_and_sets_only_the_path():
    choice = DataChoice(path="chats.jsonl")
    assert not choice.ok and choice.summary is None
    assert choice.run_fields() == {
        "data": "chats.jsonl",
        "format": None,
        "column_mapping": {},
        "validation_file": None,
        "skip_bad_rows": False,
    }
    assert DataChoice().run_fields()["data"] == ""


def test_checked_fills_the_detected_format_and_mapping_from_the_report():
    choice = DataChoice(path=str(CSV)).checked(validate_file(CSV))
    assert choice.ok and choice.format == "prompt_completion"
    assert choice.mapping and set(choice.mapping) >= {"prompt", "completion"}
    assert choice.summary.rows > 0 and choice.summary.errors == 0
    assert RunConfig(**choice.run_fields()).format == "prompt_completion"


def test_a_report_with_errors_is_carried_but_not_ready(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    choice = DataChoice(path=str(bad)).checked(validate_file(bad))
    assert choice.summary is not None and choice.summary.errors >= 1 and not choice.ok


def test_a_choice_can_sit_in_a_gradio_state():
    # gradio deep-copies a State's value and hashes it to see whether it changed.
    choice = DataChoice(path=str(CSV)).checked(validate_file(CSV))
    same = copy.deepcopy(choice)
    assert same == choice and hash(same) == hash(choice)
    other = DataChoice(path=str(CSV), mapping={"instruction": "q"})
    assert hash(other) != hash(DataChoice(path=str(CSV)))


def test_load_splits_is_the_seeded_split_or_the_validation_file(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(20)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig(data=str(data), validation_split=0.2, seed=7)
    train, val = load_splits(cfg)
    assert (len(train), len(val)) == (16, 4)
    assert load_splits(cfg) == (train, val)  # the playground sees the worker's split
    held = tmp_path / "v.jsonl"
    held.write_text(json.dumps(rows[0]) + "\n")
    train, val = load_splits(RunConfig(data=str(data), validation_file=str(held)))
    assert len(train) == 20 and len(val) == 1
    moved = load_splits(cfg, find=lambda p: str(tmp_path / "d.jsonl"))
    assert moved[1] == load_splits(cfg)[1]
