"""Job runner: queue, process lifecycle, cancel, recovery and resume, with a fake worker
(a short script speaking the run-directory protocol) so each test takes about a second.
One test goes through the real worker with the tiny model."""

import contextlib
import errno
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.assets import wait_for
from training.backends.autotrain import group_members
from training.config import RunConfig
from training.jobs import rundir
from training.jobs.runner import DB_NAME, JobRunner, _alive
from training.paths import runs_dir

FAKE_WORKER = r'''
"""Speaks the worker protocol: status, one progress line per step, adapter at the end.
FAKE_MODE: normal | crash (dies at step 2 without a status) | stubborn (ignores SIGTERM
and starts a child that ignores it too) | launcher (the same, its child in a session of its
own, as torchrun starts each rank) | diskfull (at step 2 exits as the real worker does
when the disk is full, even status.json unwritable: code 28, nothing written)."""
import os, signal, subprocess, sys, time
from pathlib import Path
from training.jobs import rundir
from training.config import RunConfig

args = sys.argv[1:]
cfg = RunConfig.from_yaml(Path(args[0]))
run_dir = Path(args[args.index("--run-dir") + 1])
mode = os.environ.get("FAKE_MODE", "normal")
step_s = float(os.environ.get("FAKE_STEP_S", "0.05"))
stop = []
if mode in ("stubborn", "launcher"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
        start_new_session=mode == "launcher")
    (run_dir / "child.pid").write_text(str(child.pid))
else:
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

def save_adapter():
    (run_dir / "adapter").mkdir(exist_ok=True)
    (run_dir / "adapter" / "adapter_config.json").write_text("{}")
    (run_dir / "adapter" / "adapter_model.safetensors").write_bytes(b"")

done = [r["step"] for r in rundir.read_progress(run_dir)] if "--resume" in args else []
first = (max(done) if done else 0) + 1
print(f"fake worker from step {first}, token seen: {bool(os.environ.get('HF_TOKEN'))}", flush=True)
rundir.write_status(run_dir, "running")
for step in range(first, cfg.max_steps + 1):
    if stop:
        save_adapter()
        rundir.write_status(run_dir, "cancelled", "Cancelled; the adapter so far is saved.")
        sys.exit(1)
    rundir.append_progress(run_dir, {"step": step, "total_steps": cfg.max_steps,
        "loss": 2.0 / step, "eta": (cfg.max_steps - step) * step_s, "resumed": first > 1})
    if mode == "crash" and step == 2:
        print("RuntimeError: CUDA kernel exploded", flush=True)
        os._exit(3)
    if mode == "diskfull" and step == 2:
        os._exit(28)
    time.sleep(step_s)
save_adapter()
rundir.write_status(run_dir, "completed")
'''


@pytest.fixture
def make_runner(tmp_path):
    fake = tmp_path / "fake_worker.py"
    fake.write_text(FAKE_WORKER)
    runners = []

    def make(**kw) -> JobRunner:
        kw = {"worker_cmd": [sys.executable, str(fake)], "device": "cpu", "tick_s": 0.1} | kw
        runner = JobRunner(**kw)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.shutdown(stop_workers=True)


def cfg(steps: int = 5, **kw) -> RunConfig:
    return RunConfig(**{"data": "train.jsonl", "max_steps": steps, **kw})


def status_of(runner, job_id):
    return runner.get(job_id).status


def test_job_goes_queued_running_completed_and_progress_grows(make_runner):
    runner = make_runner()
    job = runner.submit(cfg(steps=12), owner="alice")
    assert job.status == "queued" and Path(job.run_dir, "config.yaml").is_file()
    assert RunConfig.from_yaml(Path(job.run_dir, "config.yaml")) == cfg(steps=12)
    assert runner.jobs_for("alice")[0].position == 1
    runner.start()
    wait_for(lambda: status_of(runner, job.id) == "running", what="running")
    seen = set()
    wait_for(lambda: seen.add(runner.jobs_for("alice")[0].progress.get("step")) or len(seen) >= 3)
    wait_for(lambda: status_of(runner, job.id) == "completed", what="completed")
    done = runner.jobs_for("alice")[0]
    assert done.progress["step"] == 12 and done.progress["loss"] == pytest.approx(2 / 12)
    assert done.started >= done.created and done.finished >= done.started and done.pid
    assert rundir.read_status(job.run_dir)["status"] == "completed"
    assert "--run-dir" in rundir.tail_log(job.run_dir)
    assert runner.jobs_for("bob") == []


def test_second_job_waits_in_line_and_starts_after_the_first(make_runner, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.1")
    runner = make_runner().start()
    first = runner.submit(cfg(steps=10), owner="alice")
    wait_for(lambda: status_of(runner, first.id) == "running")
    second = runner.submit(cfg(steps=2), owner="bob")
    time.sleep(0.3)  # a few scheduler ticks: the device is busy, so it must stay queued
    waiting = runner.jobs_for("bob")[0]
    assert waiting.status == "queued" and waiting.position == 1
    wait_for(lambda: status_of(runner, second.id) == "completed", what="second completed")
    a, b = runner.get(first.id), runner.get(second.id)
    assert a.status == "completed" and b.started >= a.finished


def test_only_the_owner_can_cancel_and_cancel_keeps_the_adapter(make_runner, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.2")
    runner = make_runner().start()
    job = runner.submit(cfg(steps=100), owner="alice")
    wait_for(lambda: runner.jobs_for("alice")[0].progress.get("step"), what="first step")
    with pytest.raises(PermissionError, match="Only the person who started"):
        runner.cancel(job.id, owner="mallory")
    assert status_of(runner, job.id) == "running"
    runner.cancel(job.id, owner="alice")
    wait_for(lambda: status_of(runner, job.id) == "cancelled", what="cancelled")
    assert rundir.adapter_complete(job.run_dir)
    assert runner.jobs_for("alice")[0].progress["step"] < 100
    with pytest.raises(ValueError, match="already cancelled"):
        runner.cancel(job.id, owner="alice")


def test_cancelling_a_queued_job_never_starts_it(make_runner):
    runner = make_runner()  # scheduler not started: the job stays queued
    job = runner.submit(cfg(), owner="alice")
    runner.cancel(job.id, owner="alice")
    runner.tick()
    assert status_of(runner, job.id) == "cancelled" and runner.get(job.id).pid is None
    assert rundir.read_status(job.run_dir)["status"] == "cancelled"


@pytest.mark.parametrize("mode", ["stubborn", "launcher"])
def test_worker_ignoring_sigterm_is_killed_with_its_whole_group_after_grace(
    make_runner, monkeypatch, mode
):
    """Its child shares its process group (stubborn), or has a session of its own as each
    rank under accelerate launch has (launcher): either way the hard kill reaches it."""
    monkeypatch.setenv("FAKE_MODE", mode)
    monkeypatch.setenv("FAKE_STEP_S", "0.2")
    runner = make_runner(grace_s=1.0).start()
    job = runner.submit(cfg(steps=1000), owner="alice")
    child_pid = int(wait_for(lambda: _read(Path(job.run_dir, "child.pid")), what="child"))
    pgid = runner.get(job.id).pid
    if mode == "stubborn":
        assert set(group_members(pgid)) >= {pgid, child_pid}
    else:
        wait_for(lambda: os.getpgid(child_pid) == child_pid, what="the child's own session")
    runner.cancel(job.id, owner="alice")
    time.sleep(0.5)
    assert status_of(runner, job.id) == "running", "should get its grace period first"
    wait_for(lambda: status_of(runner, job.id) == "cancelled", what="hard kill")
    assert "by force" in runner.jobs_for("alice")[0].reason
    wait_for(lambda: not group_members(pgid), timeout=5, what="group gone")
    wait_for(lambda: not _alive(child_pid, ""), timeout=5, what="child gone")


def test_crash_without_a_final_status_fails_with_the_log_line(make_runner, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "crash")
    runner = make_runner().start()
    job = runner.submit(cfg(), owner="alice")
    wait_for(lambda: status_of(runner, job.id) == "failed", what="failed")
    shown = runner.jobs_for("alice")[0]
    assert "code 3" in shown.reason and "CUDA kernel exploded" in shown.reason
    assert rundir.read_status(job.run_dir)["status"] == "failed"


def test_app_restart_marks_lost_job_interrupted_and_resume_continues(make_runner, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.2")
    first_app = make_runner().start()
    job = first_app.submit(cfg(steps=8), owner="alice")
    wait_for(lambda: len(rundir.read_progress(job.run_dir)) >= 2, what="two steps")
    first_app.shutdown()  # the app dies; its worker would live on...
    pid = first_app.get(job.id).pid
    os.killpg(pid, signal.SIGKILL)  # ...but is killed too
    first_app._procs[job.id].wait(timeout=5)
    steps_before = max(r["step"] for r in rundir.read_progress(job.run_dir))

    second_app = make_runner()
    assert second_app.get(job.id).status == "running"  # what the database still believes
    [recovered] = second_app.recover()
    assert recovered.id == job.id and recovered.status == "interrupted"
    assert rundir.read_status(job.run_dir)["status"] == "interrupted"
    assert "restarted" in second_app.jobs_for("alice")[0].reason

    with pytest.raises(PermissionError):
        second_app.resume(job.id, owner="mallory")
    assert second_app.resume(job.id, owner="alice").status == "queued"
    second_app.start()
    wait_for(lambda: status_of(second_app, job.id) == "completed", what="resumed run done")
    assert "--resume" in rundir.tail_log(job.run_dir)
    resumed = [r for r in rundir.read_progress(job.run_dir) if r["resumed"]]
    assert resumed[0]["step"] == steps_before + 1 and resumed[-1]["step"] == 8


def test_worker_outliving_the_app_is_adopted_not_interrupted(make_runner, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.1")
    first_app = make_runner().start()
    job = first_app.submit(cfg(steps=15), owner="alice")
    wait_for(lambda: rundir.read_progress(job.run_dir), what="first step")
    first_app.shutdown()
    second_app = make_runner()
    assert second_app.recover() == []
    second_app.start()
    assert status_of(second_app, job.id) == "running"
    wait_for(lambda: status_of(second_app, job.id) == "completed", what="adopted run done")
    first_app._procs[job.id].wait(timeout=5)  # reap it (it was this process's child)


def test_jobs_persist_across_runner_instances(make_runner, tmp_path):
    db = tmp_path / "home" / DB_NAME
    one = make_runner()
    job = one.submit(cfg(steps=2), owner="alice")
    other = one.submit(cfg(steps=2), owner="bob")
    assert db.is_file()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    two = make_runner()
    assert [j.id for j in two.jobs_for("alice")] == [job.id]
    assert two.get(other.id).owner == "bob"
    two.start()  # queued jobs survive a restart and start in order
    wait_for(lambda: status_of(two, other.id) == "completed", what="both done")
    assert two.get(job.id).finished <= two.get(other.id).started


def test_continue_from_starts_a_new_run_from_the_adapter(make_runner):
    runner = make_runner().start()
    job = runner.submit(cfg(steps=2), owner="alice")
    with pytest.raises(ValueError, match="no saved adapter"):
        runner.continue_from(job.id, "alice")
    wait_for(lambda: status_of(runner, job.id) == "completed")
    new = runner.continue_from(job.id, "alice", {"data": "more.jsonl"})
    new_cfg = RunConfig.from_yaml(Path(new.run_dir, "config.yaml"))
    assert new.id != job.id and new_cfg.data == "more.jsonl"
    assert new_cfg.init_adapter == str(Path(job.run_dir) / "adapter")
    with pytest.raises(ValueError, match="keeps the base model"):
        runner.continue_from(job.id, "alice", {"model": "other/model"})
    with pytest.raises(PermissionError):
        runner.continue_from(job.id, "bob")


def test_before_start_hooks_run_and_a_broken_hook_or_worker_never_stops_the_runner(
    make_runner, tmp_path
):
    runner = make_runner(worker_cmd=[str(tmp_path / "no-such-program")]).start()
    calls = []
    runner.before_start += [lambda: calls.append("free"), lambda: 1 / 0]
    bad = runner.submit(cfg(), owner="alice")
    wait_for(lambda: status_of(runner, bad.id) == "failed", what="spawn failure")
    assert "could not start" in runner.jobs_for("alice")[0].reason and calls == ["free"]
    runner.worker_cmd = make_runner().worker_cmd  # the scheduler thread is still alive
    good = runner.submit(cfg(steps=2), owner="alice")
    wait_for(lambda: status_of(runner, good.id) == "completed", what="next job runs")


def test_hf_token_reaches_the_worker_but_never_its_files(make_runner, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_TopSecret123")
    runner = make_runner().start()
    job = runner.submit(cfg(steps=2), owner="alice")
    wait_for(lambda: status_of(runner, job.id) == "completed")
    assert "token seen: True" in rundir.tail_log(job.run_dir)
    for path in Path(job.run_dir).rglob("*"):
        if path.is_file():
            assert b"hf_TopSecret123" not in path.read_bytes(), path


def _adapter_changes_outputs(model_dir: Path, adapter: Path) -> bool:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), adapter)
    ids = torch.tensor([[1, 20, 30, 40, 50, 2]])
    with torch.no_grad():
        out = tuned(input_ids=ids).logits
        with tuned.disable_adapter():
            base = tuned(input_ids=ids).logits
    return (out - base).abs().max().item() > 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text() or None
    except OSError:
        return None


def test_real_worker_through_the_runner_with_the_tiny_model(tiny_model_dir, tmp_path):
    import json

    data = tmp_path / "chats.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Fact {i}?"},
                {"role": "assistant", "content": f"The answer is {i % 5}."},
            ]
        }
        for i in range(24)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    runner = JobRunner(device="cpu", tick_s=0.2).start()  # the default worker command
    try:
        config = RunConfig(
            model=str(tiny_model_dir),
            data=str(data),
            max_steps=4,
            batch_size=4,
            grad_accum=1,
            max_length=64,
            eval_steps=2,
            save_steps=2,
            logging_steps=1,
            learning_rate=5e-3,
        )
        job = runner.submit(config, owner="alice")
        wait_for(lambda: status_of(runner, job.id) not in ("queued", "running"), timeout=240)
        done = runner.jobs_for("alice")[0]
        assert done.status == "completed", rundir.tail_log(job.run_dir)
        assert done.progress["step"] == 4 and done.progress.get("loss") is not None
        assert [r["step"] for r in rundir.read_progress(job.run_dir) if "loss" in r] == [1, 2, 3, 4]
        assert rundir.adapter_complete(job.run_dir)
        assert _adapter_changes_outputs(tiny_model_dir, Path(job.run_dir) / "adapter")
    finally:
        runner.shutdown(stop_workers=True)


def test_run_keeps_its_own_copy_of_the_data(make_runner, tmp_path):
    upload = tmp_path / "upload" / "chats.jsonl"  # e.g. in gradio's temp folder
    upload.parent.mkdir()
    upload.write_text('{"text": "hello"}\n')
    job = make_runner().submit(cfg(data=str(upload), validation_file=str(upload)), "alice")
    kept = RunConfig.from_yaml(Path(job.run_dir, "config.yaml"))
    upload.unlink()  # the temp folder is cleaned: the run still has its data
    assert Path(kept.data).parent.parent == Path(job.run_dir)
    assert (
        Path(kept.data).read_text()
        == Path(kept.validation_file).read_text()
        == '{"text": "hello"}\n'
    )


def test_a_full_disk_fails_the_run_plainly_and_the_next_one_starts(
    make_runner, monkeypatch, caplog
):
    """The worker exits 28 with status.json still "running" (it could not write it), and
    the runner cannot write it either: the store keeps the reason, the queue moves on."""
    monkeypatch.setenv("FAKE_MODE", "diskfull")
    runner = make_runner()
    full = runner.submit(cfg(steps=10), owner="alice")
    after = runner.submit(cfg(steps=2), owner="bob")
    write = rundir.write_status

    def disk_full_for(run_dir, status, *a, **k):
        if str(run_dir) == full.run_dir and status != "running":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(run_dir, status, *a, **k)

    monkeypatch.setattr(rundir, "write_status", disk_full_for)
    caplog.set_level(logging.INFO, logger="training.jobs.runner")
    runner.start()
    wait_for(lambda: status_of(runner, full.id) == "running", what="running")
    monkeypatch.setenv("FAKE_MODE", "normal")  # the next worker gets space again
    wait_for(lambda: status_of(runner, full.id) == "failed", what="failed")
    shown = runner.jobs_for("alice")[0]
    assert shown.reason.startswith("The disk is full") and "Free some space" in shown.advice
    assert shown.progress["step"] == 2  # what it had done; no ETA shown for a failed run
    assert rundir.read_status(full.run_dir)["status"] == "running"  # the file stayed stale
    assert runner.live(shown).status == "failed"  # the store's final word wins
    wait_for(lambda: status_of(runner, after.id) == "completed", what="the next run")
    assert runner.get(after.id).started >= runner.get(full.id).finished
    with pytest.raises(ValueError, match="already failed; there is nothing to cancel"):
        runner.cancel(full.id, "alice")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if "could not write" in r.getMessage()]) == 1


def test_a_failing_scheduler_backs_off_with_one_line_per_failure(make_runner, monkeypatch, caplog):
    runner = make_runner(tick_s=0.01)
    running = runner.store.running

    def full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(runner.store, "running", full)
    caplog.set_level(logging.ERROR, logger="training.jobs.runner")
    runner.start()
    time.sleep(1.0)  # 100 ticks at 0.01 s without back-off
    failures = [r for r in caplog.records if "scheduler tick failed" in r.getMessage()]
    assert 3 <= len(failures) <= 8, len(failures)
    assert failures[0].exc_info and not any(r.exc_info for r in failures[1:])
    assert "database or disk is full" in failures[-1].getMessage()
    monkeypatch.setattr(runner.store, "running", running)  # space again: it carries on
    job = runner.submit(cfg(steps=2), owner="alice")
    wait_for(lambda: status_of(runner, job.id) == "completed", what="recovered")


def test_cancel_on_a_full_database_is_a_plain_message(make_runner, monkeypatch):
    runner = make_runner()
    job = runner.submit(cfg(), owner="alice")

    def full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(runner.store, "cancel", full)
    with pytest.raises(ValueError, match="^The disk is full: the server cannot save"):
        runner.cancel(job.id, "alice")


def test_limits_per_visitor_queue_and_steps(make_runner):
    runner = make_runner(max_jobs_per_owner=3, max_queued=4, max_steps=100)
    mine = [runner.submit(cfg(), "alice") for _ in range(3)]
    message = "You already have 3 runs queued or running; wait for one to finish or cancel one."
    with pytest.raises(ValueError, match=message):
        runner.submit(cfg(), "alice")
    runner.cancel(mine[0].id, "alice")
    runner.submit(cfg(), "alice")  # room again
    with pytest.raises(ValueError, match="You already have 3"):  # a resume counts as a run
        runner.resume(mine[0].id, "alice")
    runner.submit(cfg(), "made-up-1")  # made-up ids still meet the limit on the whole queue
    with pytest.raises(ValueError, match=r"The queue is full \(4 runs are waiting\)"):
        runner.submit(cfg(), "made-up-2")
    with pytest.raises(ValueError, match="at most 100 optimizer steps"):
        runner.submit(cfg(steps=10**9), "made-up-3")
    assert len(list(runs_dir().iterdir())) == 5  # refused runs leave no folder behind


def test_a_flood_of_concurrent_submits_stays_within_the_limits(make_runner):
    runner = make_runner(max_jobs_per_owner=3, max_queued=20)
    barrier, refused = threading.Barrier(40), []

    def submit(owner):
        barrier.wait()
        try:
            runner.submit(cfg(), owner)
        except ValueError as e:
            refused.append(str(e))

    owners = ["alice"] * 10 + [f"made-up-{i}" for i in range(30)]
    threads = [threading.Thread(target=submit, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runner.jobs_for("alice")) == 3
    assert len(runner.store.queued("cpu")) == 20 and len(refused) == 20
    assert len(list(runs_dir().iterdir())) == 20


def test_the_worker_gets_the_step_limit(make_runner):
    runner = make_runner(max_steps=50).start()
    job = runner.submit(cfg(steps=2), owner="alice")
    wait_for(lambda: status_of(runner, job.id) == "completed")
    assert "--step-limit 50" in rundir.tail_log(job.run_dir)


def test_a_run_trained_by_another_process_never_gets_a_second_worker(make_runner):
    runner = make_runner()
    job = runner.submit(cfg(), owner="alice")
    runner.cancel(job.id, "alice")  # stopped: resumable
    held = rundir.lock_training(job.run_dir)  # e.g. `python -m training train --resume` by hand
    try:
        busy = f"This run is being trained by another process \\(pid {os.getpid()}\\)"
        with pytest.raises(ValueError, match=busy):
            runner.resume(job.id, "alice")
        assert status_of(runner, job.id) == "cancelled"
    finally:
        held.close()
    runner.resume(job.id, "alice")  # queued; then the other process starts first
    held = rundir.lock_training(job.run_dir)
    try:
        before = Path(job.run_dir, rundir.STATUS).read_bytes()
        runner.tick()
        stopped = runner.get(job.id)
        assert stopped.status == "interrupted" and stopped.pid is None
        assert "being trained by another process" in stopped.reason
        assert Path(job.run_dir, rundir.STATUS).read_bytes() == before  # theirs, untouched
    finally:
        held.close()


def test_the_run_list_opens_no_run_files(make_runner):
    runner = make_runner()
    jobs = [runner.submit(cfg(), owner="alice") for _ in range(8)]
    for job in jobs:
        rundir.append_progress(job.run_dir, {"step": 1, "loss": 2.0})
    runner.store.note(jobs[0].id, {"step": 1, "loss": 2.0})  # as the scheduler records it
    with opened_files() as opened:
        listed = runner.jobs_for("alice")
    assert len(listed) == 8 and not [p for p in opened if str(runs_dir()) in p]
    assert next(j for j in listed if j.id == jobs[0].id).progress == {"step": 1, "loss": 2.0}
    with opened_files() as opened:
        live = runner.live(listed[-1])
    assert {Path(p).parent for p in opened if str(runs_dir()) in p} == {Path(live.run_dir)}


_RECORDING: list[list[str]] = []


def _record_opens(event, args):
    if event == "open" and _RECORDING and isinstance(args[0], str | os.PathLike):
        _RECORDING[-1].append(os.fspath(args[0]))


sys.addaudithook(_record_opens)  # hooks stay for good; this one idles outside opened_files()


@contextlib.contextmanager
def opened_files():
    """Every file Python opens inside the block, whoever opens it."""
    seen: list[str] = []
    _RECORDING.append(seen)
    try:
        yield seen
    finally:
        _RECORDING.remove(seen)


def test_training_minutes_per_visitor_stop_the_run_and_refuse_the_next(make_runner):
    runner = make_runner(max_minutes=0.01).start()  # 0.6 s per owner per day
    job = runner.submit(cfg(steps=200), owner="alice")  # 10 s of fake steps
    wait_for(lambda: status_of(runner, job.id) == "cancelled", what="stopped at the limit")
    stopped = runner.get(job.id)
    assert "0.01 training minutes for today" in stopped.reason
    assert rundir.adapter_complete(job.run_dir) and stopped.progress["step"] < 200
    assert runner.store.minutes_used("alice") >= 0.01
    with pytest.raises(ValueError, match="used your 0.01 training minutes for today"):
        runner.submit(cfg(steps=2), owner="alice")
    with pytest.raises(ValueError, match="used your 0.01 training minutes"):
        runner.resume(job.id, owner="alice")
    other = runner.submit(cfg(steps=2), owner="bob")  # another visitor's minutes are their own
    wait_for(lambda: status_of(runner, other.id) == "completed", what="bob's run")


def test_resumed_runs_keep_counting_the_time_they_ran_before(make_runner, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.1")
    runner = make_runner().start()
    job = runner.submit(cfg(steps=100), owner="alice")
    wait_for(lambda: runner.jobs_for("alice")[0].progress.get("step", 0) >= 3, what="steps")
    runner.cancel(job.id, owner="alice")
    wait_for(lambda: status_of(runner, job.id) == "cancelled", what="cancelled")
    before = runner.store.minutes_used("alice")
    runner.resume(job.id, owner="alice")
    assert runner.store.minutes_used("alice") == pytest.approx(before)
    assert runner.get(job.id).ran_s == pytest.approx(before * 60)
