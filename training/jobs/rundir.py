"""The run directory protocol: the one unit of state shared by app, job runner and worker.

    RUN_DIR/config.yaml      in:  the RunConfig the worker trains with
    RUN_DIR/train.log        out: the worker's stdout and stderr
    RUN_DIR/progress.jsonl   out: one JSON line per logging step (see append_progress)
    RUN_DIR/status.json      out: {"status", "reason", "advice", "updated", ...}
    RUN_DIR/adapter/         out: final PEFT adapter + tokenizer + inference chat template,
                                  config.yaml and metrics.json (built in .adapter.tmp/, renamed)
    RUN_DIR/checkpoints/     out: resumable trainer checkpoints (checkpoint-N/)
    RUN_DIR/metrics.json     out: final metrics

Writers replace files atomically (write a temp sibling, then os.replace), so a reader or a
crash never sees half a status file.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
FINAL = ("completed", "failed", "cancelled", "interrupted")

CONFIG, LOG, PROGRESS, STATUS, ADAPTER, CHECKPOINTS, METRICS = (
    "config.yaml",
    "train.log",
    "progress.jsonl",
    "status.json",
    "adapter",
    "checkpoints",
    "metrics.json",
)


def write_json_atomic(path: Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_status(
    run_dir: Path, status: str, reason: str | None = None, advice: str | None = None, **extra
) -> dict:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    data = {"status": status, "reason": reason, "advice": advice, "updated": time.time(), **extra}
    write_json_atomic(Path(run_dir) / STATUS, data)
    return data


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


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint (trainer_state.json is written last), or None."""

    def complete(p: Path) -> bool:
        try:  # a kill mid-write leaves it missing or cut short
            return p.name.split("-")[-1].isdigit() and bool(
                json.loads((p / "trainer_state.json").read_text(encoding="utf-8"))
            )
        except (OSError, ValueError):
            return False

    done = [p for p in (Path(run_dir) / CHECKPOINTS).glob("checkpoint-*") if complete(p)]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


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
