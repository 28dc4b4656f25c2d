"""A training run in a thread of the app's own process, for ZeroGPU.

On ZeroGPU (training/zerogpu.py) the GPU is lent only to `@spaces.GPU` calls of the app's
process, so a worker subprocess would never get it. There the job runner starts each run
with `InProcessRun(argv, run_dir)` instead of `python -m training train ARGV`: a thread
plans the call on the CPU (validates the data, then how many steps fit in one call), and
runs the worker's own main() (training/jobs/worker.py) on the run directory inside one GPU
call, its output appended to train.log. The run directory's files are the same as a
subprocess writes, so the rest of the app does not care. Cancel: the runner writes
RUN_DIR/stop, which the worker checks every step (there is no process group to signal); the
worker also stops by itself, adapter saved, SAVE_S before the call's time is up. After an app
restart the run has no process to find, so recovery marks it interrupted.
"""

import contextlib
import logging
import threading
import time
from pathlib import Path

from training import zerogpu
from training.jobs import rundir, worker

log = logging.getLogger(__name__)


class InProcessRun:
    """What the job runner needs of a subprocess.Popen: pid, poll(), wait(), returncode."""

    pid = 0  # no process of its own: the runner never signals it (cancel writes RUN_DIR/stop)

    def __init__(self, argv: list[str], run_dir: Path):
        self.returncode: int | None = None
        self._thread = threading.Thread(
            target=self._run, args=(argv, Path(run_dir)), name="in-process-run", daemon=True
        )
        self._thread.start()

    def _run(self, argv: list[str], run_dir: Path) -> None:
        try:
            self.returncode = train(argv)
        except Exception as exc:  # ZeroGPU refused or aborted the call: a plain status
            log.warning("in-process run in %s failed: %s", run_dir, exc)
            reason = f"The GPU call failed: {getattr(exc, 'message', None) or exc}"
            with contextlib.suppress(OSError):
                with open(run_dir / rundir.LOG, "a", encoding="utf-8") as f:
                    f.write(f"FAILED: {reason}\n")
                if rundir.read_status(run_dir).get("status") not in rundir.FINAL:
                    rundir.write_status(run_dir, "failed", reason, zerogpu.ALTERNATIVE)
            self.returncode = 1

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._thread.join(timeout)
        return self.poll()


def train(argv: list[str]) -> int:
    """The run `python -m training train ARGV` describes, trained in this process: on ZeroGPU
    inside one GPU call as long as the plan needs, its steps capped to what fits."""
    args = worker.parse_args(argv)
    try:
        cfg = worker.resolve_config(args)
        report = worker.check_data(cfg)
    except (ValueError, OSError):
        report = None
    skippable = report is not None and cfg.skip_bad_rows and report.skippable
    if report is None or not (report.ok or skippable):  # the worker says why, on the CPU
        return in_this_process(argv)
    plan = zerogpu.plan_training(cfg, report.stats)
    if plan.refusal:
        with open(args.run_dir / rundir.LOG, "a", encoding="utf-8") as f:
            f.write(f"FAILED: {plan.refusal}\n")
        rundir.write_status(args.run_dir, "failed", plan.refusal, zerogpu.ALTERNATIVE)
        return 1
    if plan.capped:
        return _train_on_gpu(argv, plan.seconds, plan.steps, plan.note)
    return _train_on_gpu(argv, plan.seconds)


def in_this_process(argv: list[str], seconds=None, step_limit=None, note=None) -> int:
    """worker.main(argv) with its output appended to the run's log. seconds: the GPU call's
    length (stop SAVE_S before it ends); step_limit and note: the plan's cap, and why."""
    args = worker.parse_args(argv)
    stop_at = time.time() + seconds - zerogpu.SAVE_S if seconds else None
    extra = {"in_process": True, "stop_at": stop_at}
    if step_limit and step_limit < (args.step_limit or step_limit + 1):
        extra |= {"step_limit": step_limit, "step_note": note}
    with (
        open(args.run_dir / rundir.LOG, "a", encoding="utf-8", buffering=1) as log_file,
        contextlib.redirect_stdout(log_file),
        contextlib.redirect_stderr(log_file),
    ):
        return worker.main(argv, **extra)


def _train_seconds(argv, seconds, step_limit=None, note=None) -> int:
    return seconds  # the plan's, made before the call (the duration rule sees its arguments)


_train_on_gpu = zerogpu.gpu(in_this_process, duration=_train_seconds)
