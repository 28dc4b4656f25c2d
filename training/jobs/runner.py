"""Job runner: a persistent queue of training runs, one worker process per device at a time.

The SQLite file under paths.home() (training/jobs/store.py) indexes runs (owner, device,
status, times, pid, queue order); each run's directory
(training/jobs/rundir.py) stays the unit of state, so the app can die and come back. One `JobRunner` per app process: `submit` queues, a daemon scheduler
thread starts the oldest queued job when its device is free, watches its process and records
how it ended; `cancel` stops a worker by process group (SIGTERM, SIGKILL after a grace
period); `recover` after a restart marks runs whose worker is gone as interrupted.

    runner = JobRunner(before_start=[engine.free])   # app.py: one per app process
    runner.recover(); runner.start()
    job = runner.submit(cfg, owner="browser-token")
    runner.jobs_for("browser-token")          # live state merged from status/progress files
"""

import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from training.config import RunConfig
from training.hardware import default_device
from training.jobs import rundir
from training.jobs.store import DB_NAME, Job, JobStore
from training.paths import REPO_ROOT, home, runs_dir

log = logging.getLogger(__name__)

WORKER_CMD = [sys.executable, "-m", "training", "train"]  # + CONFIG --run-dir DIR [--resume]
RESUMABLE = ("cancelled", "interrupted", "failed")
SUMMARY_KEYS = ("step", "total_steps", "epoch", "loss", "eval_loss", "eta", "tokens_per_second")


class JobRunner:
    def __init__(
        self,
        db_path: Path | None = None,
        device: str | None = None,
        worker_cmd: list[str] | None = None,
        grace_s: float = 30.0,
        tick_s: float = 1.0,
        before_start: list[Callable[[], None]] = (),
    ):
        self.db_path = Path(db_path or home() / DB_NAME)
        self.device = device or default_device()
        self.worker_cmd = list(worker_cmd or WORKER_CMD)
        self.grace_s = grace_s  # SIGTERM -> SIGKILL: time for the worker to save its adapter
        self.tick_s = tick_s
        # Called (no arguments) before a job claims the device: the chat engine frees its
        # model cache here, so the app never holds GPU memory the worker needs.
        self.before_start = list(before_start)
        self._procs: dict[str, subprocess.Popen] = {}  # workers this runner started
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.store = JobStore(self.db_path)

    def get(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def _owned(self, job_id: str, owner: str, verb: str) -> Job:
        job = self.store.get(job_id)
        if not owner or job.owner != owner:
            raise PermissionError(f"Only the person who started run {job_id} can {verb} it.")
        return job

    # --- the public API
    def submit(self, cfg: RunConfig, owner: str) -> Job:
        """Create the run directory with config.yaml and queue the run."""
        if not owner:
            raise ValueError("A run needs an owner (the visitor's id).")
        job_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        run_dir = runs_dir() / job_id
        run_dir.mkdir(parents=True)
        cfg = _keep_data(cfg, run_dir)
        cfg.to_yaml(run_dir / rundir.CONFIG)
        rundir.write_status(run_dir, "queued")
        self.store.add(job_id, str(run_dir), owner, self.device, cfg.model)
        self._wake.set()
        return self.get(job_id)

    def cancel(self, job_id: str, owner: str) -> Job:
        """Queued: just cancelled. Running: SIGTERM to its process group now (the worker saves
        its adapter and exits as cancelled), SIGKILL from the scheduler after grace_s."""
        job = self._owned(job_id, owner, "cancel")

        def then(status: str) -> None:
            if status == "queued":
                rundir.write_status(job.run_dir, "cancelled", "Cancelled before it started.")

        before = self.store.cancel(job_id, then)
        if before.status == "running" and before.pid:
            _signal_group(before.pid, signal.SIGTERM)
        self._wake.set()
        return self.get(job_id)

    def resume(self, job_id: str, owner: str) -> Job:
        """Queue a stopped run again; the worker continues from its last checkpoint."""
        job = self._owned(job_id, owner, "resume")
        if job.status not in RESUMABLE:
            raise ValueError(f"Run {job_id} is {job.status}; only a stopped run can be resumed.")
        self.store.requeue(
            job_id,
            job.status,
            lambda: rundir.write_status(
                job.run_dir, "queued", "Waiting to resume from the last checkpoint."
            ),
        )
        self._wake.set()
        return self.get(job_id)

    def continue_from(self, job_id: str, owner: str, overrides: dict | None = None) -> Job:
        """A new run of the same base model starting from this run's adapter, e.g. with
        more data (`overrides={"data": "more.jsonl"}`)."""
        job = self._owned(job_id, owner, "continue")
        if not rundir.adapter_complete(job.run_dir):
            raise ValueError(f"Run {job_id} has no saved adapter to continue from yet.")
        data = RunConfig.from_yaml(Path(job.run_dir) / rundir.CONFIG).to_dict()
        if (overrides or {}).get("model", data["model"]) != data["model"]:
            raise ValueError("Continuing training keeps the base model the adapter was made for.")
        data.update(overrides or {}, init_adapter=str(Path(job.run_dir) / rundir.ADAPTER))
        return self.submit(RunConfig.from_dict(data), owner)

    def jobs_for(self, owner: str) -> list[Job]:
        """This owner's runs, newest first, with live status, queue place and progress."""
        if not owner:
            return []
        queued = [j.id for j in self.store.queued(self.device)]
        jobs = self.store.of_owner(owner)
        for job in jobs:
            live = rundir.read_status(job.run_dir)
            # The worker's own final word is news the scheduler may not have reaped yet.
            if job.status == "running" and live.get("status") in rundir.FINAL:
                job.status = live["status"]
            job.reason, job.advice = live.get("reason"), live.get("advice")
            if job.status == "queued" and job.id in queued:
                job.position = queued.index(job.id) + 1
            job.progress = progress_summary(job.run_dir)
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def recover(self) -> list[Job]:
        """On app start: runs marked running whose worker is gone become interrupted (or
        take the final status their worker wrote before the app noticed)."""
        ended = []
        for job in self.store.running():
            if job.id not in self._procs and not _alive(job.pid, job.run_dir):
                ended.append(
                    self._finish(job, None, "The app restarted while this run was training")
                )
        self._wake.set()
        return [j for j in ended if j]

    # --- the scheduler
    def start(self) -> "JobRunner":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="job-scheduler", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a broken run must never take the app down
                log.exception("job scheduler tick failed")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def tick(self) -> None:
        """One pass: record ended workers, hard-kill ones past their grace, start the next."""
        with self._lock:
            now = time.time()
            for job in self.store.running(self.device):
                proc = self._procs.get(job.id)
                ended = proc.poll() is not None if proc else not _alive(job.pid, job.run_dir)
                if ended:
                    self._finish(job, proc and proc.returncode, "The worker stopped unexpectedly")
                elif job.cancel_at and now - job.cancel_at > self.grace_s and job.pid:
                    log.warning(
                        "run %s ignored SIGTERM for %.0f s: killing it", job.id, self.grace_s
                    )
                    _signal_group(job.pid, signal.SIGKILL)
            self._start_next()

    def _start_next(self) -> None:
        if self.store.running(self.device):
            return
        waiting = self.store.queued(self.device)
        if not waiting:
            return
        for hook in self.before_start:
            try:
                hook()
            except Exception:
                log.exception("before_start hook failed")
        job = waiting[0]
        procs = []

        def start() -> int | None:
            try:
                procs.append(self._spawn(job))
            except OSError as e:
                rundir.write_status(job.run_dir, "failed", f"The worker could not start: {e}")
                return None
            return procs[0].pid

        if self.store.claim(job.id, self.device, start):
            self._procs[job.id] = procs[0]

    def _spawn(self, job: Job) -> subprocess.Popen:
        run_dir = Path(job.run_dir)
        cmd = [*self.worker_cmd, str(run_dir / rundir.CONFIG), "--run-dir", str(run_dir)]
        cmd += ["--resume"] if job.resume else []
        # Written before the worker starts, so a fast worker's own final status wins.
        rundir.write_status(run_dir, "running", device=self.device)
        with open(run_dir / rundir.LOG, "ab") as logf:
            logf.write(f"\n=== {time.ctime()}: {shlex.join(cmd)}\n".encode())
            logf.flush()
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=self._child_env(),
                start_new_session=True,  # own process group: cancel reaches its children too
            )

    def _child_env(self) -> dict:
        # Secrets such as HF_TOKEN reach the worker only through its environment; nothing
        # here writes the environment to config.yaml, the log or the progress file.
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        if self.device.startswith("cuda:"):
            index = int(self.device.split(":")[1])
            visible = env.get("CUDA_VISIBLE_DEVICES", "").split(",")
            env["CUDA_VISIBLE_DEVICES"] = (
                visible[index] if len(visible) > index and visible[0] else str(index)
            )
        return env

    def _finish(self, job: Job, code: int | None, gone_reason: str) -> Job | None:
        """Record how a worker ended. Its final status.json wins; without one, say why."""
        self._procs.pop(job.id, None)
        live = rundir.read_status(job.run_dir)
        status, reason, advice = live.get("status"), live.get("reason"), live.get("advice")
        if status not in rundir.FINAL:
            status, reason, advice = _ending_without_status(job, code, gone_reason)

        def then() -> None:
            if live.get("status") not in rundir.FINAL:
                rundir.write_status(job.run_dir, status, reason, advice)

        if not self.store.finish(job.id, status, then):  # another process recorded it first
            return None
        log.info("run %s ended: %s", job.id, status)
        return self.get(job.id)

    def shutdown(self, stop_workers: bool = False) -> None:
        """Stop the scheduler. Workers keep running (an app restart adopts them) unless
        stop_workers, which kills their process groups (tests)."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        if stop_workers:
            for proc in list(self._procs.values()):
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _keep_data(cfg: RunConfig, run_dir: Path) -> RunConfig:
    """The run keeps its own copy of its data files (a hard link when possible): uploads
    sit in a temp folder that may be gone by the time a queued or resumed run starts."""
    changes = {}
    for key in ("data", "validation_file"):
        source = getattr(cfg, key)
        if source and Path(source).is_file():
            kept = run_dir / key / Path(source).name
            kept.parent.mkdir()
            try:
                os.link(source, kept)
            except OSError:  # another file system
                shutil.copy2(source, kept)
            changes[key] = str(kept)
    return replace(cfg, **changes)


def _ending_without_status(job: Job, code: int | None, gone_reason: str) -> tuple:
    resume = "Resume continues from the last checkpoint."
    if job.cancel_at:
        return "cancelled", "Stopped by force: it did not stop within the grace period.", None
    if code is None or code < 0:
        how = f" (signal {signal.Signals(-code).name})" if code else ""
        hint = " The system may have run out of memory." if code == -signal.SIGKILL else ""
        return "interrupted", f"{gone_reason}{how}.{hint}", resume
    if code == 0 and rundir.adapter_complete(job.run_dir):
        return "completed", None, None
    return "failed", f"The worker exited with code {code}: {_last_error(job.run_dir)}", resume


def _last_error(run_dir: str) -> str:
    lines = [line.strip() for line in rundir.tail_log(run_dir, 4000).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    text = (errors or lines or ["no output (see train.log)"])[-1]
    return text[:300]


def progress_summary(run_dir: str) -> dict:
    """The last logged step and the latest train and eval loss, from the file's tail."""
    summary: dict = {}
    for record in rundir.read_progress(run_dir, max_bytes=16_000):
        summary.update({k: record[k] for k in SUMMARY_KEYS if record.get(k) is not None})
    return summary


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, sig)


def _alive(pid: int | None, run_dir: str) -> bool:
    """Is this run's worker still running? Checks the command line, so a recycled pid
    belonging to some other program does not count, and ignores zombies."""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # not Linux: best effort
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and str(run_dir) in cmdline
