"""Job runner: a persistent queue of training runs, one worker process per device at a time.

The SQLite file under paths.home() (training/jobs/store.py) indexes runs (owner, device,
status, times, pid, queue order, last progress); each run's directory
(training/jobs/rundir.py) stays the unit of state, so the app can die and come back. One
`JobRunner` per app process: `submit` queues, a daemon scheduler thread starts the oldest
queued job when its device is free, watches its process, copies its progress into the store
and records how it ended; `cancel` stops a worker by process group (SIGTERM, SIGKILL after a
grace period), and the groups of every process it started: on a machine with several GPUs
the worker runs under `accelerate launch`, one rank per GPU, each rank in a session of its
own (training/jobs/launch.py decides); `recover` after a restart marks runs whose worker is
gone as interrupted. On ZeroGPU a run trains in a thread of this process instead
(training/jobs/in_process.py).

The runner holds the app's limits: runs per owner queued or running, runs waiting in all,
training minutes per owner per day (a running run past them is stopped, adapter saved),
and optimizer steps per run (a config asking for more is refused; an epoch-based run is
stopped there by the worker's --step-limit). A run whose directory another process is
training (its lock is held, e.g. by `python -m training train --resume`) never gets a second
worker. When a worker exits without a final status (a full disk cannot even take
status.json), the store keeps the reason; every refusal and failure is a plain ValueError.

    runner = JobRunner(before_start=[engine.free], max_jobs_per_owner=3)  # app.py: one per app
    runner.recover(); runner.start()
    job = runner.submit(cfg, owner="browser-token")
    job = runner.submit(cfg, owner="hf:alice", hf_job=("a10g-small", token))  # Jobs, at once
    runner.jobs_for("browser-token")          # the run list, from the store alone
    runner.live(job)                          # one run as its files say right now

Its length: one class owns the queue's whole lifecycle (submit with its limits, cancel,
resume, schedule, reap, recover) under one lock; the SQL lives in store.py, the run files in
rundir.py, how a worker is launched in launch.py and a Hugging Face job in hf_jobs.py.
"""

import logging
import os
import secrets
import shlex
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path

from training import zerogpu
from training.config import RunConfig
from training.hardware import Hardware, default_device, detect
from training.jobs import hf_jobs, launch, rundir
from training.jobs.in_process import InProcessRun
from training.jobs.store import DB_NAME, Job, JobStore
from training.jobs.worker import EXIT_BUSY, EXIT_DISK_FULL
from training.paths import REPO_ROOT, home, runs_dir

log = logging.getLogger(__name__)

WORKER_CMD = launch.WORKER_CMD
RESUMABLE = ("cancelled", "interrupted", "failed")
SUMMARY_KEYS = ("step", "total_steps", "epoch", "loss", "eval_loss", "eta", "tokens_per_second")
OUT_OF_MINUTES = (
    "Stopped with its adapter saved: your {:g} training minutes for today on this app are used."
)
MAX_BACKOFF_S = 60.0  # a failing scheduler retries after 2, 4, 8... ticks, at most this


class JobRunner:
    def __init__(
        self,
        db_path: Path | None = None,
        device: str | None = None,
        worker_cmd: list[str] | None = None,
        grace_s: float = 30.0,
        tick_s: float = 1.0,
        before_start: list[Callable[[], None]] = (),
        max_jobs_per_owner: int | None = None,
        max_queued: int | None = None,
        max_steps: int | None = None,
        max_minutes: float | None = None,
        admit: Callable[[RunConfig, str], None] | None = None,
        hardware: Callable[[], Hardware] | None = None,
    ):
        self.db_path = Path(db_path or home() / DB_NAME)
        self.device = device or default_device()
        # The GPUs a run may use (count and memory): several start it under accelerate
        # launch. Read when a run starts; on a CPU there is nothing to ask.
        self.hardware = hardware or (detect if self.device.startswith("cuda") else None)
        self.worker_cmd = list(worker_cmd or WORKER_CMD)
        self.grace_s = grace_s  # SIGTERM -> SIGKILL: time for the worker to save its adapter
        self.tick_s = tick_s
        # Called (no arguments) before a job claims the device: the chat engine frees its
        # model cache here, so the app never holds GPU memory the worker needs.
        self.before_start = list(before_start)
        # The app's limits (training/settings.py); None = no limit.
        self.max_jobs_per_owner = max_jobs_per_owner  # queued or running, per owner
        self.max_queued = max_queued  # waiting, all owners together
        self.max_steps = max_steps  # optimizer steps per run
        self.max_minutes = max_minutes  # training minutes per owner per day; runs stop there
        # The app's model policy (training/models/access.py): admit(cfg, owner) raises
        # ValueError for a config this visitor may not run. Checked on submit and on resume:
        # a run's saved config may predate the owner's current settings.
        self.admit = admit or (lambda cfg, owner: None)
        self._procs: dict[str, subprocess.Popen] = {}  # workers this runner started
        # ZeroGPU lends the GPU to this process only: runs train in a thread of it there.
        self.in_process = zerogpu.active()
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
    def submit(self, cfg: RunConfig, owner: str, hf_job: tuple[str, str] | None = None) -> Job:
        """Create the run directory with config.yaml and queue the run, within the limits.
        hf_job: (flavour, token) to run it on Hugging Face Jobs instead (hf_jobs.py), started
        at once on the visitor's account: the app's step and minute limits, which share out
        its own hardware, do not apply; the token is held in memory while the job runs."""
        if not owner:
            raise ValueError("A run needs an owner (the visitor's id).")
        self.admit(cfg, owner)
        if hf_job:
            _check_hf_job(cfg, *hf_job)
        elif self.max_steps and cfg.max_steps > self.max_steps:
            raise ValueError(
                f"Max steps is {cfg.max_steps:,}; a run here may take at most "
                f"{self.max_steps:,} optimizer steps. Lower it, or train by epochs "
                "(max steps -1), which stops at the limit."
            )
        minutes = None if hf_job else self.max_minutes
        limits = self.max_jobs_per_owner, self.max_queued, minutes
        with _plain_errors():
            if refused := self.store.refusal(owner, *limits):  # before copying any data
                raise ValueError(refused)
            job_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
            # A run on Hugging Face Jobs has a device of its own: nothing waits for it here.
            device = f"{hf_jobs.DEVICE}{hf_job[0]}:{job_id}" if hf_job else self.device
            run_dir = runs_dir() / job_id
            try:
                run_dir.mkdir(parents=True)
                cfg = _keep_data(cfg, run_dir)
                cfg.to_yaml(run_dir / rundir.CONFIG)
                rundir.write_status(run_dir, "queued")
                self.store.add(job_id, str(run_dir), owner, device, cfg.model, *limits)
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
        if hf_job:
            self._start_hf_job(job_id, device, *hf_job)
        self._wake.set()
        return self.get(job_id)

    def _start_hf_job(self, job_id: str, device: str, flavor: str, token: str) -> None:
        def start() -> int:
            self._procs[job_id] = hf_jobs.RemoteRun(runs_dir() / job_id, flavor, token)
            return 0  # no process here: cancel goes through RUN_DIR/stop

        with self._lock, _plain_errors():
            self.store.claim(job_id, device, start)

    def cancel(self, job_id: str, owner: str) -> Job:
        """Queued: just cancelled. Running: SIGTERM to its process group now (the worker saves
        its adapter and exits as cancelled), SIGKILL from the scheduler after grace_s."""
        job = self._owned(job_id, owner, "cancel")
        with _plain_errors():
            before = self.store.cancel(job_id)
        if before.status == "queued":
            _write_status(job.run_dir, "cancelled", "Cancelled before it started.")
        if before.status == "running" and before.pid:
            _signal_group(before.pid, signal.SIGTERM)
        self._wake.set()
        return self.get(job_id)

    def resume(self, job_id: str, owner: str) -> Job:
        """Queue a stopped run again; the worker continues from its last checkpoint."""
        job = self._owned(job_id, owner, "resume")
        if job.device.startswith(hf_jobs.DEVICE):
            raise ValueError(
                "A run on Hugging Face Jobs cannot be resumed: its checkpoints stayed in the "
                "job. Start it again, or continue training from its adapter."
            )
        if job.status not in RESUMABLE:
            raise ValueError(f"Run {job_id} is {job.status}; only a stopped run can be resumed.")
        self.admit(RunConfig.from_yaml(Path(job.run_dir) / rundir.CONFIG), owner)
        _refuse_if_trained_elsewhere(job)
        with _plain_errors():
            self.store.requeue(
                job_id,
                job.status,
                self.max_jobs_per_owner,
                self.max_queued,
                self.max_minutes,
                lambda: _write_status(
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
        _refuse_if_trained_elsewhere(job)  # its adapter may be replaced any moment
        data = RunConfig.from_yaml(Path(job.run_dir) / rundir.CONFIG).to_dict()
        if (overrides or {}).get("model", data["model"]) != data["model"]:
            raise ValueError("Continuing training keeps the base model the adapter was made for.")
        data.update(overrides or {}, init_adapter=str(Path(job.run_dir) / rundir.ADAPTER))
        return self.submit(RunConfig.from_dict(data), owner)

    def jobs_for(self, owner: str) -> list[Job]:
        """This owner's runs, newest first, with queue place and the last progress the
        scheduler recorded: from the store alone, never the runs' files (the Train tab
        polls this every 2 s per open page; `live` reads the one run followed)."""
        if not owner:
            return []
        queued = [j.id for j in self.store.queued(self.device)]
        jobs = self.store.of_owner(owner)
        for job in jobs:
            if job.status == "queued" and job.id in queued:
                job.position = queued.index(job.id) + 1
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def live(self, job: Job) -> Job:
        """One run as its files say right now: the progress to this moment, the worker's
        own final word before the scheduler has reaped it, its reason, AutoTrain's phase."""
        status = rundir.read_status(job.run_dir)
        job = replace(job, progress=progress_summary(job.run_dir) or job.progress)
        if job.status == "running" and status.get("status") in rundir.FINAL:
            job.status = status["status"]
        # A final status the store recorded wins over a file the full disk kept stale.
        if job.status not in rundir.FINAL or status.get("status") == job.status:
            job.reason = status.get("reason") or job.reason
            job.advice = status.get("advice") or job.advice
        job.phase = status.get("phase") if job.status == "running" else None
        return job

    def recover(self) -> list[Job]:
        """On app start: runs marked running whose worker is gone become interrupted (or
        take the final status their worker wrote before the app noticed). Runs from before
        the store kept progress get it now, once."""
        for job in self.store.rows("progress IS NULL AND status != 'running'"):
            self.store.note(job.id, progress_summary(job.run_dir))
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
        failures = 0
        while not self._stop.is_set():
            try:
                self.tick()
                failures = 0
            except Exception as e:  # a broken run or a full disk must never take the app down
                failures += 1
                delay = min(self.tick_s * 2**failures, MAX_BACKOFF_S)
                # One line per failure, the traceback only for the first of a streak.
                log.error(
                    "job scheduler tick failed (%s: %.200s); next try in %.0f s",
                    type(e).__name__,
                    str(e).replace("\n", " "),
                    delay,
                    exc_info=failures == 1,
                )
                self._stop.wait(delay)
                continue
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def tick(self) -> None:
        """One pass: record ended workers, hard-kill ones past their grace, copy running
        jobs' progress into the store, start the next."""
        with self._lock:
            now = time.time()
            for job in self.store.running():
                proc = self._procs.get(job.id)
                if job.device != self.device and proc is None:
                    continue  # another runner's, or a Hugging Face job nobody follows now
                ended = proc.poll() is not None if proc else not _alive(job.pid, job.run_dir)
                if ended:
                    self._finish(job, proc and proc.returncode, "The worker stopped unexpectedly")
                    continue
                if job.cancel_at and not job.pid:  # in this process: no group to signal
                    rundir.request_stop(job.run_dir)
                if job.cancel_at and now - job.cancel_at > self.grace_s and job.pid:
                    log.warning(
                        "run %s ignored SIGTERM for %.0f s: killing it", job.id, self.grace_s
                    )
                    _signal_group(job.pid, signal.SIGKILL)
                remote = job.device.startswith(hf_jobs.DEVICE)  # the visitor's own account
                if not job.cancel_at and not remote and self._out_of_minutes(job):
                    log.info("run %s: its owner's training minutes are used up", job.id)
                    self.store.cancel(job.id)
                    if job.pid:
                        _signal_group(job.pid, signal.SIGTERM)
                progress = progress_summary(job.run_dir)
                if progress != job.progress:
                    self.store.note(job.id, progress)
            self._start_next()

    def _start_next(self) -> None:
        if self.store.running(self.device):
            return
        for job in self.store.queued(self.device):
            pid = rundir.trained_by(job.run_dir)
            if pid is None:
                break
            # Someone trains this run by hand: never a second worker on it.
            reason = f"{rundir.busy_message(pid)} Press Resume once it has finished."
            if self.store.finish(job.id, "interrupted", reason, was="queued"):
                log.info("run %s not started: its directory is locked by pid %s", job.id, pid)
        else:
            return
        for hook in self.before_start:
            try:
                hook()
            except Exception:
                log.exception("before_start hook failed")
        procs = []

        def start() -> int | str:
            try:
                procs.append(self._spawn(job))
            except OSError as e:
                why = f"{rundir.DISK_FULL}." if rundir.disk_full(e) else e
                reason = f"The worker could not start: {why}"
                _write_status(job.run_dir, "failed", reason)
                return reason
            return procs[0].pid

        if self.store.claim(job.id, self.device, start) is not None:  # pid 0: in-process
            self._procs[job.id] = procs[0]

    def _spawn(self, job: Job) -> subprocess.Popen:
        run_dir = Path(job.run_dir)
        args = [str(run_dir / rundir.CONFIG), "--run-dir", str(run_dir)]
        args += ["--resume"] if job.resume else []
        args += ["--step-limit", str(self.max_steps)] if self.max_steps else []
        how = self._plan(run_dir)
        cmd = launch.command(how, self.worker_cmd, args)
        rundir.clear_stop(run_dir)  # a cancel before a resume must not stop the resumed run
        # Written before the worker starts, so a fast worker's own final status wins.
        rundir.write_status(run_dir, "running", device=self.device)
        with open(run_dir / rundir.LOG, "ab") as logf:
            logf.write(f"\n=== {time.ctime()}: {shlex.join(cmd)}\n".encode())
            if how.distributed:
                logf.write(f"=== {how.processes} processes, {how.why}\n".encode())
            logf.flush()
            if self.in_process:  # same arguments, same files (training/jobs/in_process.py)
                return InProcessRun(args, run_dir)
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=self._child_env(how),
                start_new_session=True,  # own process group: cancel reaches its children too
            )

    def _plan(self, run_dir: Path) -> launch.Launch:
        """One process, or one per GPU under accelerate launch; always one in this process
        (ZeroGPU) or where there is no GPU to ask about."""
        if self.in_process or self.hardware is None:
            return launch.Launch("none", 1, "one process")
        try:
            return launch.plan(RunConfig.from_yaml(run_dir / rundir.CONFIG), self.hardware())
        except Exception:  # the worker reports a bad config itself; never block the queue
            log.exception("planning the launch of %s failed: one process", run_dir)
            return launch.Launch("none", 1, "one process")

    def _child_env(self, how: launch.Launch) -> dict:
        # Secrets such as HF_TOKEN reach the worker only through its environment; nothing
        # here writes the environment to config.yaml, the log or the progress file.
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        if how.distributed:
            # The launcher forwards a cancel's SIGTERM to the ranks and kills them after this
            # long: as long as the runner itself waits for the adapter to be saved.
            env["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] = str(max(1, int(self.grace_s)))
        elif self.device.startswith("cuda:"):
            index = int(self.device.split(":")[1])
            visible = env.get("CUDA_VISIBLE_DEVICES", "").split(",")
            env["CUDA_VISIBLE_DEVICES"] = (
                visible[index] if len(visible) > index and visible[0] else str(index)
            )
        return env

    def _finish(self, job: Job, code: int | None, gone_reason: str) -> Job | None:
        """Record how a worker ended. Its final status.json wins; without one (a crash, a
        kill, a disk too full for the file) the store keeps why, and the file gets it when
        it can still be written."""
        self._procs.pop(job.id, None)
        live = rundir.read_status(job.run_dir)
        status, reason, advice = live.get("status"), live.get("reason"), live.get("advice")
        if status not in rundir.FINAL:
            status, reason, advice = _ending_without_status(job, code, gone_reason)
        if status == "cancelled" and self._out_of_minutes(job):
            reason = OUT_OF_MINUTES.format(self.max_minutes)

        def then() -> None:
            if live.get("status") not in rundir.FINAL:
                _write_status(job.run_dir, status, reason, advice)

        progress = progress_summary(job.run_dir)
        if not self.store.finish(job.id, status, reason, advice, progress, then=then):
            return None  # another process recorded it first
        log.info("run %s ended: %s%s", job.id, status, f" ({reason})" if reason else "")
        return self.get(job.id)

    def _out_of_minutes(self, job: Job) -> bool:
        return bool(self.max_minutes) and self.store.minutes_used(job.owner) >= self.max_minutes

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
    if job.device.startswith(hf_jobs.DEVICE):  # its follower always writes a final status
        return "interrupted", hf_jobs.lost_reason(job.run_dir), None
    resume = "Resume continues from the last checkpoint."
    error = _last_error(job.run_dir)
    if code == EXIT_DISK_FULL or any(text in error for text in rundir.NO_SPACE):
        return (
            "failed",
            f"{rundir.DISK_FULL}: the run stopped while saving.",
            rundir.DISK_FULL_ADVICE,
        )
    if code == EXIT_BUSY:
        reason = "Another process was already training this run, so this one did not start."
        return "interrupted", reason, "Press Resume once the other process has finished."
    if job.cancel_at:
        return "cancelled", "Stopped by force: it did not stop within the grace period.", None
    if code is None or code < 0:
        how = f" (signal {signal.Signals(-code).name})" if code else ""
        hint = " The system may have run out of memory." if code == -signal.SIGKILL else ""
        return "interrupted", f"{gone_reason}{how}.{hint}", resume
    if code == 0 and rundir.adapter_complete(job.run_dir):
        return "completed", None, None
    return "failed", f"The worker exited with code {code}: {error}", resume


def _last_error(run_dir: str) -> str:
    lines = [line.strip() for line in rundir.tail_log(run_dir, 4000).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    text = (errors or lines or ["no output (see train.log)"])[-1]
    return text[:300]


def _check_hf_job(cfg: RunConfig, flavor: str, token: str) -> None:
    """What a Hugging Face job cannot run is refused before anything is created."""
    if flavor not in hf_jobs.FLAVORS:
        raise ValueError(f"Unknown Hugging Face Jobs flavour {flavor!r}.")
    if not token:
        raise ValueError(
            "Running on Hugging Face Jobs needs your Hugging Face sign-in, or a token with "
            "write access pasted in (used for this run only, never stored)."
        )
    hf_jobs.remote_config(cfg)


def _write_status(run_dir: str, status: str, reason: str | None = None, advice=None) -> None:
    """status.json as the runner sees the run, unless another process trains it (the file
    is theirs) or the disk refuses (the store has it; one log line)."""
    if rundir.trained_by(run_dir) is not None:
        return
    try:
        rundir.write_status(run_dir, status, reason, advice)
    except OSError as e:
        log.warning("could not write the status of %s: %s", run_dir, e)


def _refuse_if_trained_elsewhere(job: Job) -> None:
    pid = rundir.trained_by(job.run_dir)
    if pid is not None:
        raise rundir.Busy(f"{rundir.busy_message(pid)} Wait until it has finished.")


@contextmanager
def _plain_errors():
    """A full disk (the runs folder or the job database) as a plain ValueError."""
    try:
        yield
    except (OSError, sqlite3.Error) as e:
        if not rundir.disk_full(e):
            raise
        raise rundir.DiskFull(
            f"{rundir.DISK_FULL}: the server cannot save anything right now. "
            "Try again later; nothing was changed."
        ) from e


def progress_summary(run_dir: str) -> dict:
    """The last logged step and the latest train and eval loss, from the file's tail."""
    summary: dict = {}
    for record in rundir.read_progress(run_dir, max_bytes=16_000):
        summary.update({k: record[k] for k in SUMMARY_KEYS if record.get(k) is not None})
    return summary


def _signal_group(pgid: int, sig: int) -> None:
    """The worker's process group, and the group of every process below it: a launcher
    (torchrun under accelerate launch) starts each rank in a session of its own, so a kill
    of the launcher's group alone would leave the ranks training."""
    if pgid <= 0:  # an in-process run's pid 0 would be our own group
        return
    groups = {pgid}
    for pid in _descendants(pgid):
        with suppress(OSError):
            groups.add(os.getpgid(pid))
    groups.discard(os.getpgrp())
    for group in groups:
        with suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(group, sig)


def _descendants(pid: int) -> list[int]:
    """Every process below pid, from /proc (none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


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
