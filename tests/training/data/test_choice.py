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


def kept_roots(tmp_path):
    uploads, samples = tmp_path / "uploads", REPO_ROOT / "samples"
    (uploads / "abc123").mkdir(parents=True)
    return {"upload": uploads, "sample": samples}


def test_a_checked_choice_comes_back_from_its_signed_memo_with_no_server_path(tmp_path):
    from training.data.choice import recall, remember

    roots = kept_roots(tmp_path)
    data = roots["upload"] / "abc123" / "units.csv"
    data.write_bytes(CSV.read_bytes())
    choice = DataChoice(path=str(data), skip_bad_rows=True).checked(validate_file(data))
    memo = remember(choice, roots, b"k1")
    assert str(tmp_path) not in json.dumps(memo)  # only a folder name and a relative path
    assert memo["data"] == ["upload", "abc123/units.csv"]
    back = recall(json.loads(json.dumps(memo)), roots, b"k1")  # as the browser returns it
    assert back == DataChoice(
        path=str(data.resolve()),
        format=choice.format,
        mapping=choice.mapping,
        skip_bad_rows=True,
    )
    sample = DataChoice(path=str(CSV)).checked(validate_file(CSV))
    assert recall(remember(sample, roots, b"k1"), roots, b"k1").path == str(CSV.resolve())


def test_a_memo_not_signed_by_this_server_or_pointing_outside_is_refused(tmp_path):
    from training.data.choice import recall, remember

    roots = kept_roots(tmp_path)
    data = roots["upload"] / "abc123" / "units.csv"
    data.write_bytes(CSV.read_bytes())
    memo = remember(DataChoice(path=str(data)).checked(validate_file(data)), roots, b"k1")
    assert recall(memo, roots, b"another key") is None
    secret = tmp_path / "secret.csv"
    secret.write_bytes(CSV.read_bytes())
    forged = {**memo, "data": ["upload", "../secret.csv"]}  # re-signed below: still refused
    forged["sig"] = memo["sig"]
    assert recall(forged, roots, b"k1") is None
    from training.data.choice import _sign

    inside_key = {k: v for k, v in forged.items() if k != "sig"}
    assert recall({**inside_key, "sig": _sign(inside_key, b"k1")}, roots, b"k1") is None
    for junk in (None, "x", [], {"sig": 3}, {**memo, "data": "upload"}, {**memo, "sig": ""}):
        assert recall(junk, roots, b"k1") is None
    data.unlink()  # the upload was cleaned away: nothing to bring back
    assert recall(memo, roots, b"k1") is None
    outside = DataChoice(path=str(secret)).checked(validate_file(secret))
    assert remember(outside, roots, b"k1") is None  # never kept as a server path
    assert remember(DataChoice(path=str(CSV)), roots, b"k1") is None  # not checked yet
