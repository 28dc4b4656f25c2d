"""Skipping the rows with errors: an explicit choice (DataChoice, RunConfig.skip_bad_rows)
that trains on the other rows and records which rows were left out and why."""

import json
import subprocess
import sys
from dataclasses import replace

from tests.conftest import FIXTURES
from training.config import RunConfig
from training.data import (
    DataChoice,
    load_splits,
    read_skipped,
    skipped_rows,
    validate_file,
    write_skipped,
)
from training.paths import REPO_ROOT

DATA = FIXTURES / "data"
BAD300 = DATA / "rows300_2bad.jsonl"  # line 57 is cut short, line 201 has no reply


def test_a_file_with_two_bad_rows_offers_to_skip_them():
    report = validate_file(BAD300)
    assert not report.ok and report.skippable == 2 and report.stats["examples"] == 298
    assert report.stats["rows_with_errors"] == 2
    summary = report.summary()
    assert summary.skippable == 2 and not summary.ok
    assert skipped_rows(report) == [
        {
            "file": "data",
            "row": 57,
            "code": "unparseable_line",
            "reason": report.errors[0].message,
        },
        {
            "file": "data",
            "row": 201,
            "code": "no_assistant_message",
            "reason": "There is no assistant reply, so there is nothing for the model to learn.",
        },
    ]


def test_the_choice_is_explicit_and_travels_to_the_run_config():
    choice = DataChoice(path=str(BAD300)).checked(validate_file(BAD300))
    assert not choice.ok  # never skipped silently
    ticked = replace(choice, skip_bad_rows=True)
    assert ticked.ok and ticked.run_fields()["skip_bad_rows"] is True
    assert RunConfig(**ticked.run_fields()).skip_bad_rows is True
    assert RunConfig().skip_bad_rows is False


def test_errors_about_the_whole_file_cannot_be_skipped(tmp_path):
    path = tmp_path / "none.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')  # no good row left
    assert validate_file(path).skippable == 0
    assert validate_file(DATA / "dpo_flat.jsonl").skippable == 0  # preference_data: the file


def test_load_splits_leaves_out_exactly_the_recorded_rows(tmp_path):
    report = validate_file(BAD300)
    write_skipped(skipped_rows(report), tmp_path / "skipped_rows.jsonl")
    skip = read_skipped(tmp_path / "skipped_rows.jsonl")
    assert skip == {"data": {57, 201}}
    cfg = RunConfig(data=str(BAD300), skip_bad_rows=True)
    train, val = load_splits(cfg, skip=skip)
    assert len(train) + len(val) == 298
    assert load_splits(cfg, skip=skip) == (train, val)  # the same split again
    write_skipped([], tmp_path / "skipped_rows.jsonl")  # nothing skipped: no stale list
    assert read_skipped(tmp_path / "skipped_rows.jsonl") == {}


def test_rows_the_models_template_refuses_are_skipped_too(tiny_tokenizer):
    """Tool rows with a template without tools: only the report knows; the list carries it."""
    path = DATA / "sharegpt_tools.json"
    report = validate_file(path, tokenizer=tiny_tokenizer)
    rows = skipped_rows(report)
    assert [(r["row"], r["code"]) for r in rows] == [
        (2, "tools_unsupported"),
        (3, "tools_unsupported"),
    ]
    cfg = RunConfig(data=str(path), validation_split=0.0, skip_bad_rows=True)
    train, _ = load_splits(cfg, skip={"data": {2, 3}})
    assert len(train) == 1 and "tools" not in train[0]


def test_bad_rows_of_a_validation_file_are_listed_under_it(tmp_path):
    val = tmp_path / "val.jsonl"
    good = json.dumps(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    )
    val.write_text(f"{good}\nnot json\n")
    report = validate_file(BAD300, validation_file=val)
    assert report.skippable == 3
    listed = [(r["file"], r["row"]) for r in skipped_rows(report)]
    assert listed == [("data", 57), ("data", 201), ("validation", 2)]
    assert skipped_rows(report)[2]["reason"].startswith("In the validation file: ")


def test_the_worker_refuses_bad_rows_unless_told_to_skip_them(tmp_path, tiny_model_dir):
    from training.jobs.worker import load_data

    cfg = RunConfig(model=str(tiny_model_dir), data=str(BAD300), max_length=64)
    splits, reason = load_data(cfg, tmp_path)
    assert splits is None and "row 57" in reason and "not valid JSON" in reason
    assert not (tmp_path / "skipped_rows.jsonl").exists()
    splits, reason = load_data(replace(cfg, skip_bad_rows=True), tmp_path)
    assert reason is None and len(splits.train) + len(splits.val) == 298
    lines = (tmp_path / "skipped_rows.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in lines] == [57, 201]


def test_python_m_training_train_honours_the_option(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    cfg = RunConfig(
        model=str(tiny_model_dir),
        data=str(BAD300),
        skip_bad_rows=True,
        max_steps=2,
        batch_size=4,
        grad_accum=1,
        max_length=64,
        eval_steps=0,
        save_steps=0,
        logging_steps=1,
    )
    cfg.to_yaml(tmp_path / "cfg.yaml")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            str(tmp_path / "cfg.yaml"),
            "--run-dir",
            str(run),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Skipping 2 rows with errors" in out.stdout
    skipped = [json.loads(line) for line in (run / "skipped_rows.jsonl").read_text().splitlines()]
    assert [(r["row"], r["code"]) for r in skipped] == [
        (57, "unparseable_line"),
        (201, "no_assistant_message"),
    ]
    assert RunConfig.from_yaml(run / "config.yaml").skip_bad_rows is True  # reproducible
