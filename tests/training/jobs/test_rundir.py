"""The run directory protocol: atomic status, tolerant progress reads, the adapter published
in one rename, and which checkpoint a resume starts from."""

import json

import pytest

from training.jobs import rundir


def test_status_round_trips_and_a_missing_or_broken_file_reads_queued(tmp_path):
    assert rundir.read_status(tmp_path)["status"] == "queued"
    rundir.write_status(tmp_path, "failed", "out of memory", "lower the batch size", step=3)
    status = rundir.read_status(tmp_path)
    assert (status["status"], status["reason"], status["step"]) == ("failed", "out of memory", 3)
    (tmp_path / rundir.STATUS).write_text('{"status": "runn')  # cut short
    assert rundir.read_status(tmp_path)["status"] == "queued"
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_an_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown status"):
        rundir.write_status(tmp_path, "done")


def test_progress_skips_a_half_written_line_and_reads_a_tail(tmp_path):
    for step in range(1, 6):
        rundir.append_progress(tmp_path, {"step": step, "loss": 1.0 / step})
    with open(tmp_path / rundir.PROGRESS, "a") as f:
        f.write('{"step": 6, "lo')  # the worker is mid-write
    assert [r["step"] for r in rundir.read_progress(tmp_path)] == [1, 2, 3, 4, 5]
    tail = rundir.read_progress(tmp_path, max_bytes=60)
    assert tail and tail[-1]["step"] == 5 and len(tail) < 5


def test_keep_progress_until_forgets_steps_after_the_checkpoint(tmp_path):
    for step in (1, 2, 3, 4):
        rundir.append_progress(tmp_path, {"step": step})
    rundir.keep_progress_until(tmp_path, 2)
    assert [r["step"] for r in rundir.read_progress(tmp_path)] == [1, 2]


def adapter_files(folder, marker):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_text(marker)


def test_the_adapter_appears_whole_or_not_at_all(tmp_path):
    staging = rundir.adapter_staging(tmp_path)
    adapter_files(staging, "first")
    assert not rundir.adapter_complete(tmp_path)  # still staged
    rundir.publish_adapter(tmp_path)
    assert rundir.adapter_complete(tmp_path)
    adapter_files(rundir.adapter_staging(tmp_path), "second")
    rundir.publish_adapter(tmp_path)
    weights = tmp_path / rundir.ADAPTER / "adapter_model.safetensors"
    assert weights.read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == [rundir.ADAPTER]  # nothing left aside


def test_last_checkpoint_is_the_newest_complete_one(tmp_path):
    checkpoints = tmp_path / rundir.CHECKPOINTS
    for step, state in ((2, {"global_step": 2}), (4, {"global_step": 4}), (6, None)):
        folder = checkpoints / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if state:
            (folder / "trainer_state.json").write_text(json.dumps(state))
    (checkpoints / "checkpoint-8" / "trainer_state.json").parent.mkdir()
    (checkpoints / "checkpoint-8" / "trainer_state.json").write_text('{"global_')  # killed
    assert rundir.last_checkpoint(tmp_path).name == "checkpoint-4"
    assert rundir.last_checkpoint(tmp_path / "elsewhere") is None


def test_tail_log_reads_the_end(tmp_path):
    (tmp_path / rundir.LOG).write_text("a" * 100 + "LAST LINE")
    assert rundir.tail_log(tmp_path, max_bytes=9) == "LAST LINE"
    assert rundir.tail_log(tmp_path / "none") == ""
