"""The run directory protocol: atomic status, tolerant progress reads, the adapter published
in one rename, which checkpoint a resume starts from, the lock of the process training a run,
and a full disk told apart from other failures."""

import errno
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from training.jobs import rundir
from training.paths import REPO_ROOT


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


def test_a_phase_joins_a_running_status_and_never_revives_an_ended_one(tmp_path, capsys):
    rundir.write_status(tmp_path, "running", "capped at 10 steps", pid=7, started=1.0)
    rundir.note_phase(tmp_path, "loading the model", eta=95.04)
    status = rundir.read_status(tmp_path)
    assert (status["phase"], status["eta"], status["pid"]) == ("loading the model", 95.0, 7)
    assert status["reason"] == "capped at 10 steps"  # the rest of the status is kept
    assert "[phase] loading the model (at " in capsys.readouterr().out  # and train.log says so
    rundir.note_status(tmp_path, phase="step 1 of 10", eta=None)
    assert rundir.read_status(tmp_path)["eta"] is None
    rundir.write_status(tmp_path, "completed")
    rundir.note_phase(tmp_path, "saving the adapter")  # too late: the run has ended
    assert "phase" not in rundir.read_status(tmp_path)


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


def test_partial_saves_are_dropped_and_complete_checkpoints_kept(tmp_path):
    checkpoints = tmp_path / rundir.CHECKPOINTS
    for step in (2, 4, 6):
        adapter_files(checkpoints / f"checkpoint-{step}", "w")
    for step in (2, 4):  # checkpoint-6: the disk filled before its trainer state
        (checkpoints / f"checkpoint-{step}" / "trainer_state.json").write_text('{"step": 1}')
    adapter_files(tmp_path / f".{rundir.ADAPTER}.tmp", "half")
    assert sorted(rundir.drop_partial_saves(tmp_path)) == [".adapter.tmp", "checkpoint-6"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert rundir.drop_partial_saves(tmp_path / "never-trained") == []


def test_a_status_write_that_fails_leaves_no_temp_file(tmp_path, monkeypatch):
    rundir.write_status(tmp_path, "running")

    def full(self, text, *a, **k):  # the disk fills halfway through the file
        with open(self, "w") as f:
            f.write(text[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(tmp_path), "write_text", full)
    with pytest.raises(OSError):
        rundir.write_status(tmp_path, "failed")
    monkeypatch.undo()
    assert rundir.read_status(tmp_path)["status"] == "running"
    assert sorted(p.name for p in tmp_path.iterdir()) == [rundir.STATUS]


def test_disk_full_is_told_apart_wherever_it_hides():
    assert rundir.disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert rundir.disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert rundir.disk_full(sqlite3.OperationalError("database or disk is full"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving the checkpoint failed") from inner
    except RuntimeError as outer:
        assert rundir.disk_full(outer)
    assert not rundir.disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not rundir.disk_full(MemoryError())


def test_one_process_trains_a_run_and_others_see_who(tmp_path):
    assert rundir.trained_by(tmp_path) is None  # never trained: no lock file is made
    assert not (tmp_path / rundir.LOCK).exists()
    held = rundir.lock_training(tmp_path)
    assert rundir.trained_by(tmp_path) == os.getpid()
    other = subprocess.run(  # another process, e.g. `python -m training train --resume`
        [sys.executable, "-c", LOCK_SCRIPT, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert (
        other.stdout.strip() == f"This run is being trained by another process (pid {os.getpid()})."
    )
    held.close()  # the process ends or lets go: the next one may train it
    assert rundir.trained_by(tmp_path) is None
    with rundir.lock_training(tmp_path):
        pass


LOCK_SCRIPT = """
import sys
from pathlib import Path
from training.jobs import rundir
try:
    rundir.lock_training(Path(sys.argv[1]), wait_s=0.1)
except rundir.Busy as e:
    print(e)
"""
