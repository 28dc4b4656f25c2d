"""The run directory protocol: the one unit of state shared by app, job runner and worker.

    RUN_DIR/config.yaml      in:  the RunConfig the worker trains with
    RUN_DIR/train.log        out: the worker's stdout and stderr
    RUN_DIR/progress.jsonl   out: one JSON line per logging step (see append_progress)
    RUN_DIR/status.json      out: {"status", "reason", "advice", "updated", ...}
    RUN_DIR/adapter/         out: final PEFT adapter + tokenizer + inference chat template
    RUN_DIR/checkpoints/     out: resumable trainer checkpoints (checkpoint-N/)
    RUN_DIR/metrics.json     out: final metrics

Writers replace files atomically (write a temp sibling, then os.replace), so a reader or a
crash never sees half a status file.
"""

import json
import os
import time
from pathlib import Path

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
FINAL = ("completed", "failed", "cancelled", "interrupted")

CONFIG, LOG, PROGRESS, STATUS, ADAPTER, CHECKPOINTS, METRICS = (
    "config.yaml", "train.log", "progress.jsonl", "status.json", "adapter", "checkpoints", "metrics.json",
)  # fmt: skip


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
    """One line per logging step: step, total_steps, epoch, loss, eval_loss (when present),
    learning_rate, tokens_per_second, elapsed, eta (seconds)."""
    with open(Path(run_dir) / PROGRESS, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_progress(run_dir: Path) -> list[dict]:
    """All complete progress lines; a half-written last line (worker mid-write) is skipped."""
    try:
        lines = (Path(run_dir) / PROGRESS).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def tail_log(run_dir: Path, max_bytes: int = 8000) -> str:
    try:
        with open(Path(run_dir) / LOG, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def adapter_complete(run_dir: Path) -> bool:
    """An adapter counts only once its folder was renamed into place with weights inside."""
    adapter = Path(run_dir) / ADAPTER
    return (adapter / "adapter_config.json").is_file() and any(adapter.glob("adapter_model.*"))
