"""The run directory protocol: the one unit of state shared by app, job runner and worker.

    RUN_DIR/config.yaml      in:  the RunConfig the worker trains with
    RUN_DIR/train.log        out: the worker's stdout and stderr
    RUN_DIR/progress.jsonl   out: one JSON line per logging step (see append_progress)
    RUN_DIR/status.json      out: {"status", "reason", "advice", "updated", ...}; while running
                                  also "phase" (what the worker does now, in words: "preparing
                                  data", "loading the model", "step 3 of 30", "saving the
                                  adapter") and "eta" (seconds left for the whole run as
                                  estimated at "updated"; None until it can be told)
    RUN_DIR/adapter/         out: final PEFT adapter + tokenizer + inference chat template,
                                  config.yaml and metrics.json (built in .adapter.tmp/, renamed)
    RUN_DIR/checkpoints/     out: resumable trainer checkpoints (checkpoint-N/)
    RUN_DIR/metrics.json     out: final metrics
    RUN_DIR/skipped_rows.jsonl out: rows left out by the skip-bad-rows choice, one
                                  {"file", "row", "code", "reason"} per line
    RUN_DIR/train.lock       held (flock) by the one process training the run; holds its pid
    RUN_DIR/stop             in:  stop at the next step, adapter saved: the job runner's cancel
                                  of a run trained in the app's own process (ZeroGPU), which has
                                  no process group to signal; cleared when the runner starts it

Writers replace files atomically (write a temp sibling, then os.replace), so a reader or a
crash never sees half a status file. Whoever trains a run holds its lock for the whole time
(the worker, started by the app or by hand), so a second trainer refuses before it touches
anything; the lock goes with the process, however it ends.
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
FINAL = ("completed", "failed", "cancelled", "interrupted")

CONFIG, LOG, PROGRESS, STATUS, ADAPTER, CHECKPOINTS, METRICS, LOCK, STOP = (
    "config.yaml",
    "train.log",
    "progress.jsonl",
    "status.json",
    "adapter",
    "checkpoints",
    "metrics.json",
    "train.lock",
    "stop",
)
DISK_FULL = "The disk is full"
NO_SPACE = ("No space left on device", "database or disk is full")  # as errors word it
DISK_FULL_ADVICE = (
    "Free some space on the server (delete old runs you no longer need), then press Resume: "
    "it continues from the last complete checkpoint."
)


class DiskFull(ValueError):
    """Nothing more could be written: the message says so plainly."""


class Busy(ValueError):
    """Another process is training this run."""


def disk_full(exc: BaseException | None) -> bool:
    """Whether an error, or one it arose from, means the disk (or quota) is full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(exc) for text in NO_SPACE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def write_json_atomic(path: Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half file behind
        raise


def write_status(
    run_dir: Path, status: str, reason: str | None = None, advice: str | None = None, **extra
) -> dict:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    data = {"status": status, "reason": reason, "advice": advice, "updated": time.time(), **extra}
    write_json_atomic(Path(run_dir) / STATUS, data)
    return data


def note_status(run_dir: Path, **fields) -> dict:
    """Add fields (phase, eta...) to a running status, keeping what it holds; a run that has
    ended, or never started, is left alone. Returns the status as it now is."""
    current = read_status(run_dir)
    if current.get("status") != "running":
        return current
    keep = {k: v for k, v in current.items() if k not in ("status", "reason", "advice", "updated")}
    return write_status(
        run_dir, "running", current.get("reason"), current.get("advice"), **{**keep, **fields}
    )


def note_phase(run_dir: Path, phase: str, eta: float | None = None) -> None:
    """What the worker does now (and the seconds left in all, when it can tell) into its running
    status, and a line into train.log (the worker's stdout): a run shows life from its first
    second, through the minutes of loading before its first step."""
    fields = {"phase": phase} if eta is None else {"phase": phase, "eta": round(eta, 1)}
    started = note_status(run_dir, **fields).get("started")
    facts = [f"at {time.time() - started:.1f} s"] if started else []
    facts += [f"about {eta:.0f} s left in all"] if eta is not None else []
    print(f"[phase] {phase}" + (f" ({', '.join(facts)})" if facts else ""), flush=True)


def read_status(run_dir: Path) -> dict:
    """The run's status; a missing or unreadable file reads as queued (nothing ran yet)."""
    try:
        return json.loads((Path(run_dir) / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "queued", "reason": None, "advice": None, "updated": None}


def append_progress(run_dir: Path, record: dict) -> None:
    """One line per logging step: step, total_steps, epoch, loss, learning_rate,
    tokens_per_second (non-padding), elapsed, eta (seconds). Evaluations get their own line
    with eval_loss instead of loss/learning_rate/tokens_per_second (same step numbering)."""
    with open(Path(run_dir) / PROGRESS, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_progress(run_dir: Path, max_bytes: int | None = None) -> list[dict]:
    """All complete progress lines, or those in the last max_bytes (a cheap poll of a long
    run); a half-written last line (worker mid-write) or a cut first line is skipped."""
    try:
        with open(Path(run_dir) / PROGRESS, "rb") as f:
            if max_bytes is not None:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return [r for r in records if isinstance(r, dict)]


def tail_log(run_dir: Path, max_bytes: int = 8000) -> str:
    try:
        with open(Path(run_dir) / LOG, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def adapter_staging(run_dir: Path) -> Path:
    """An empty folder to build the adapter in; publish_adapter renames it into place."""
    tmp = Path(run_dir) / f".{ADAPTER}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def replace_folder(tmp: Path, target: Path) -> Path:
    """Rename a finished folder over target: readers see the old folder or the new one, never
    half of either. A superseded target is swapped aside (a unique hidden sibling, since two
    writers may publish at once), then deleted."""
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / target.name)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


def publish_adapter(run_dir: Path) -> Path:
    """Move the finished staging folder to RUN_DIR/adapter in one rename. A crash mid-save
    leaves only the hidden staging folder, never a half-written adapter/ that looks complete."""
    run_dir = Path(run_dir)
    return replace_folder(run_dir / f".{ADAPTER}.tmp", run_dir / ADAPTER)


def _complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: a kill or a full disk mid-save leaves it
    missing or cut short."""
    try:
        return checkpoint.name.split("-")[-1].isdigit() and bool(
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        )
    except (OSError, ValueError):
        return False


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint, or None."""
    done = [p for p in (Path(run_dir) / CHECKPOINTS).glob("checkpoint-*") if _complete(p)]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def drop_partial_saves(run_dir: Path) -> list[str]:
    """Delete what a failed save left: checkpoints without their trainer state and the
    adapter's staging folder. Nothing resumes from or chats with half a checkpoint, and the
    space comes back. Returns the names removed."""
    run_dir = Path(run_dir)
    partial = [p for p in (run_dir / CHECKPOINTS).glob("checkpoint-*") if not _complete(p)]
    partial += [p for p in [run_dir / f".{ADAPTER}.tmp"] if p.exists()]
    for p in partial:
        shutil.rmtree(p, ignore_errors=True)
    return [p.name for p in partial]


def lock_training(run_dir: Path, wait_s: float = 1.0):
    """Take the run's lock for this process; close the returned file to release it. Raises
    Busy, naming the holder, when another process trains the run. Waits up to wait_s: a
    reader (trained_by) holds the lock for an instant."""
    f = open(Path(run_dir) / LOCK, "a+")  # noqa: SIM115 - the caller holds it open
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                f.close()
                raise Busy(busy_message(trained_by(run_dir))) from None
            time.sleep(0.05)
    with contextlib.suppress(OSError):  # the pid is for messages; a full disk may refuse it
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
    return f


def trained_by(run_dir: Path) -> int | None:
    """The pid of the process training this run now (0 when it could not be read), or None."""
    try:
        f = open(Path(run_dir) / LOCK)  # noqa: SIM115 - closed below
    except OSError:
        return None  # never trained
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = f.read().strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(f, fcntl.LOCK_UN)
        return None


def request_stop(run_dir: Path) -> None:
    """Ask whoever trains the run to stop at the next step (idempotent)."""
    (Path(run_dir) / STOP).touch()


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP).exists()


def clear_stop(run_dir: Path) -> None:
    """Before a run (re)starts: an old request must not stop it."""
    (Path(run_dir) / STOP).unlink(missing_ok=True)


def busy_message(pid: int | None) -> str:
    who = f"pid {pid}" if pid else "pid unknown"
    return f"This run is being trained by another process ({who})."


def keep_progress_until(run_dir: Path, step: int) -> None:
    """On resume, forget progress lines logged after the checkpoint we restart from."""
    path = Path(run_dir) / PROGRESS
    kept = [r for r in read_progress(run_dir) if r.get("step", 0) <= step]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)


def adapter_ready(folder: Path) -> bool:
    """An adapter folder (final or checkpoint) with its config and weights inside."""
    return (folder / "adapter_config.json").is_file() and any(folder.glob("adapter_model.*"))


def adapter_complete(run_dir: Path) -> bool:
    """An adapter counts only once its folder was renamed into place with weights inside."""
    return adapter_ready(Path(run_dir) / ADAPTER)
