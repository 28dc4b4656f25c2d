"""Runs as the chat, evaluation and export see them: who may see which run, the checked
`open`, checkpoints, and where a checkpoint's tokenizer is."""

from pathlib import Path

import pytest

from training.jobs import rundir, runs
from training.jobs.store import DB_NAME, JobStore
from training.paths import home, runs_dir


def fake_run(root: Path, checkpoints=(2,), final=True, tokenizer_in=()) -> Path:
    def adapter(folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_text("w")

    if final:
        adapter(root / rundir.ADAPTER)
    for step in checkpoints:
        adapter(root / rundir.CHECKPOINTS / f"checkpoint-{step}")
    for name in tokenizer_in:
        folder = runs.adapter_path(root, name)
        (folder / "tokenizer_config.json").write_text("{}")
    return root


def owned_by(run: Path, owner: str):
    JobStore(home() / DB_NAME).add(run.name, str(run), owner, "cpu", "tiny")


def test_checkpoints_list_final_first_then_newest(tmp_path):
    run = fake_run(tmp_path / "r", checkpoints=(2, 10, 4))
    (tmp_path / "r" / rundir.CHECKPOINTS / "checkpoint-12").mkdir()  # no weights yet
    assert runs.checkpoints(run) == ["final", "checkpoint-10", "checkpoint-4", "checkpoint-2"]
    assert runs.checkpoints(fake_run(tmp_path / "s", checkpoints=(), final=False)) == []


def test_visitors_see_their_own_runs_and_cli_runs_only():
    alice = fake_run(runs_dir() / "alice-run")
    bob = fake_run(runs_dir() / "bob-run")
    cli = fake_run(runs_dir() / "cli-run")
    fake_run(runs_dir() / "empty", checkpoints=(), final=False)  # nothing to chat with
    owned_by(alice, "alice")
    owned_by(bob, "bob")
    assert set(runs.visible("alice")) == {alice, cli}
    assert set(runs.visible("")) == {cli}  # an anonymous caller sees only CLI runs
    assert runs.owned(str(alice), "bob") is None and runs.owned(str(alice), "alice") == alice


def test_open_refuses_other_visitors_paths_outside_and_unknown_checkpoints(tmp_path):
    alice = fake_run(runs_dir() / "alice-run")
    owned_by(alice, "alice")
    outside = fake_run(tmp_path / "elsewhere")
    assert runs.open(str(alice), "final", "alice") == alice.resolve()
    assert runs.open(str(alice), "checkpoint-2", "alice") == alice.resolve()
    for run, checkpoint, owner in (
        (str(alice), "final", "bob"),  # another visitor's run
        (str(outside), "final", ""),  # a path outside the runs folder
        (str(runs_dir() / ".." / "runs" / "alice-run" / ".."), "final", "alice"),
        (str(alice), "../../etc", "alice"),  # not one of its checkpoints
        (str(alice), "checkpoint-9", "alice"),
        (None, "final", "alice"),
        ("", "final", "alice"),
    ):
        with pytest.raises(ValueError, match="Pick a run"):
            runs.open(run, checkpoint, owner)


def test_a_checkpoints_tokenizer_is_its_own_else_the_runs(tmp_path):
    run = fake_run(tmp_path / "r", checkpoints=(2, 4), tokenizer_in=("final", "checkpoint-4"))
    assert runs.tokenizer_dir(run, "checkpoint-4") == run / rundir.CHECKPOINTS / "checkpoint-4"
    assert runs.tokenizer_dir(run, "checkpoint-2") == run / rundir.ADAPTER
    assert runs.tokenizer_dir(run, "final") == run / rundir.ADAPTER


def test_run_examples_find_a_moved_data_file_next_to_the_run(tmp_path):
    import json

    from training.config import RunConfig

    run = fake_run(tmp_path / "r")
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(8)
    ]
    (run / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    RunConfig(model="tiny", data="data.jsonl", validation_split=0.25).to_yaml(run / rundir.CONFIG)
    train, val = runs.run_examples(run)
    assert len(train) == 6 and len(val) == 2
    (run / "data.jsonl").unlink()
    runs._SPLITS.clear()
    with pytest.raises(ValueError, match="no longer there"):
        runs.run_examples(run)
