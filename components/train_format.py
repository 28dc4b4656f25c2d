"""Pure helpers of the Train tab: widget values -> RunConfig, and typed results
(RunConfig, Preflight, Job, run directory files) -> Markdown / HTML / DataFrames. No
widgets, no events: the tab's handlers (components/train_tab.py) call these, and tests
call them directly.
"""

import math
import re
import time
from pathlib import Path

import pandas as pd

from components.format import esc
from training.backends.preflight import Preflight
from training.config import RunConfig
from training.data import DataChoice
from training.jobs import rundir
from training.jobs.store import Job
from training.recipe import Recipe

DEFAULTS = RunConfig()
# Hyperparameter widgets, in the order their values reach the handlers.
MAIN = ["epochs", "max_steps", "learning_rate", "batch_size", "grad_accum", "max_length"]
ADAPTER = ["lora_r", "lora_alpha"]
ADVANCED = [
    "lora_dropout",
    "target_modules",
    "lr_scheduler",
    "warmup_ratio",
    "validation_split",
    "eval_steps",
    "save_steps",
    "logging_steps",
    "early_stopping_patience",
    "seed",
    "report_to",
]
HYPER = MAIN + ADAPTER + ADVANCED
LOG_LINES = 40
SERVER_PATH = re.compile(r"(?<![\w.~:/])/(?:[\w.@+-]+/)+([\w.@+-]*)")  # /a/b/c.py -> …/c.py
LABELS = {
    "lora_r": "LoRA rank (adapter size)",
    "lora_alpha": "LoRA alpha (adapter strength)",
    "grad_accum": "Gradient accumulation",
    "max_steps": "Max steps (updates)",
    "lr_scheduler": "Learning-rate schedule",
    "warmup_ratio": "Warm-up share",
    "lora_dropout": "LoRA dropout",
    "report_to": "Experiment tracking",
}
TRAINED_STYLE = "background:#bbf7d0;color:#14532d;box-shadow:inset -1px 0 0 #86efac"
CONTEXT_STYLE = "color:#6b7280;box-shadow:inset -1px 0 0 #e5e7eb"
SETUP = "bash scripts/setup_autotrain.sh"
RUN_EXPORT = "pip install autotrain-advanced==0.8.36 && autotrain --config autotrain.yml"


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def build_config(model, trust, choice: DataChoice | None, backend, method, *values) -> RunConfig:
    """Widget values -> RunConfig (ValueError with a plain message when out of range)."""
    data = dict(zip(HYPER, values, strict=True))
    for name, value in data.items():
        if value is None or value == "":
            raise ValueError(f"{label(name)} is empty.")
        default = getattr(DEFAULTS, name)
        data[name] = type(default)(value) if isinstance(default, int | float) else value
    return RunConfig(
        model=model or DEFAULTS.model,
        trust_remote_code=bool(trust),
        backend=backend or DEFAULTS.backend,
        method=method,
        **(choice or DataChoice()).run_fields(),
        **data,
    )


def plan_markdown(r: Recipe, has_data: bool) -> str:
    """Why the learning rate and passes are what they are (the Train tab's plan line)."""
    if not has_data:
        return f"ℹ️ {r.reason} Check a dataset on the Data tab and the passes follow its size."
    return f"ℹ️ **Suggested:** {r.reason} You can change both under Advanced settings."


def report_stats(choice: DataChoice | None) -> dict | None:
    """The Data tab's report figures (counted at the max length it checked with)."""
    return choice.summary.stats if choice and choice.summary else None


def config_text(cfg: RunConfig) -> tuple[str, str]:
    """(YAML, shell command) reproducing this run from the command line."""
    yaml_text = cfg.to_yaml()
    setup = (
        f"{SETUP}   # once: AutoTrain lives in its own venv\n" if cfg.backend == "autotrain" else ""
    )
    shell = (
        f"{setup}cat > config.yaml <<'EOF'\n{yaml_text}EOF\npython -m training train config.yaml\n"
    )
    return yaml_text, shell


def preflight_markdown(pf: Preflight) -> str:
    lines = [f"- {line}" for line in pf.lines]
    if pf.memory_gb:
        parts = ", ".join(f"{k} {v:.2f} GB" for k, v in pf.memory_gb.items())
        lines.append(f"- Memory estimate by part: {parts}.")
    icon = "⚠️" if pf.tight else {True: "✅", False: "⛔", None: "ℹ️"}[pf.fits]
    return f"**Pre-flight estimate** {icon}\n\n" + "\n".join(lines)


# --- the AutoTrain backend's availability ---------------------------------------------


def backend_choices(autotrain_ok: bool) -> list[tuple[str, str]]:
    """The backend radio. Gradio cannot grey out one choice, so an unusable AutoTrain keeps
    its place with the reason in its label, and the tab refuses to select it."""
    name = "AutoTrain Advanced" if autotrain_ok else "AutoTrain Advanced (not installed)"
    return [("LoRA (TRL + PEFT)", "lora"), (name, "autotrain")]


def autotrain_note(ok: bool, reason: str, can_install: bool, building: bool = False) -> str:
    """What AutoTrain is here: ready (and what differs), being installed, or why not and how
    to enable it."""
    if building and not ok:
        return "⏳ **AutoTrain is being installed** (a few minutes); its progress shows below."
    if ok:
        return (
            f"✅ {reason}. AutoTrain trains whole epochs (max steps are rounded to epochs) "
            "and prepares for 10–30 s before its first step."
        )
    text = f"⛔ **AutoTrain is unavailable.** {reason}"
    if SETUP not in reason:
        text += f" Enable it with `{SETUP}`."
    if can_install:
        text += " Or press **Install AutoTrain** (a few minutes; its progress shows below)."
    return text


def export_note(path: str) -> str:
    return (
        f"Saved `{Path(path).name}`. On your own machine, next to a `data/` folder holding "
        f"`train.jsonl`, run: `{RUN_EXPORT}`"
    )


# --- runs: list, status line, chart, log, the "what the model learns" view ------------


def duration(seconds) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m {seconds % 60:02d}s"
    )


def status_text(job: Job) -> str:
    if job.status == "queued" and job.position:
        return f"queued (#{job.position} in line)"
    return job.status


def jobs_table(jobs: list[Job]) -> pd.DataFrame:
    rows = []
    for job in jobs:
        p = job.progress
        step = f"{p['step']}/{p.get('total_steps', '?')}" if "step" in p else ""
        loss = " / ".join(f"{p[k]:.4f}" for k in ("loss", "eval_loss") if p.get(k) is not None)
        eta = duration(p.get("eta")) if job.status == "running" else ""
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created))
        rows.append([job.id, Path(job.model).name, status_text(job), step, loss, eta, created])
    columns = ["Run", "Model", "Status", "Step", "Loss (train / eval)", "ETA", "Created"]
    return pd.DataFrame(rows, columns=columns)


def time_left(job: Job, status: dict) -> float | None:
    """Seconds left of a running run: the worker's own estimate in status.json (rewritten at
    every step, from the measured speed; before the first step from the pre-flight formulas),
    counted down since it was written; else (AutoTrain) the last progress line's. None when
    not known yet, or when the estimate has run out (the phase still shows the run at work)."""
    if job.status != "running":
        return None
    if "eta" not in status:
        return job.progress.get("eta")
    if status["eta"] is None or not status.get("updated"):
        return None
    left = status["eta"] - (time.time() - status["updated"])
    return left if left > 0 else None


def job_markdown(job: Job | None, phase: str | None = None) -> str:
    """The selected run's status line and what to do next. phase: status.json's phase
    ("preparing data", "loading the model", "step 3 of 30", AutoTrain's milestones), shown
    while running, from the worker's first second."""
    if job is None:
        return "No runs yet: check a dataset, pick the settings, then press **Start**."
    p = job.progress
    running = job.status == "running"
    state = status_text(job)
    if phase and running:
        state += f" ({phase})"
    facts = [f"**Run {job.id}**", state]
    # While training, the phase names the step under way; the last logged one is older.
    if "step" in p and not (running and (phase or "").startswith("step ")):
        facts.append(f"step {p['step']}/{p.get('total_steps', '?')}")
    facts += [
        f"{k.replace('_', ' ')} {p[k]:.4f}" for k in ("loss", "eval_loss") if p.get(k) is not None
    ]
    left = time_left(job, rundir.read_status(job.run_dir)) if running else None
    if left is not None:
        facts.append(f"ETA {duration(left)}")
    text = " · ".join(facts)
    if job.reason:
        text += f"\n\n{job.reason}"
    if job.advice:
        text += f"\n\n**What to try:** {job.advice}"
    if job.status == "completed":
        text += "\n\nThe adapter is ready: try it in the Playground, take it away from Export."
    elif job.status in ("cancelled", "interrupted", "failed"):
        text += "\n\n**Resume** continues from the last checkpoint with the same settings."
    return text


def loss_frame(run_dir: str | None) -> pd.DataFrame:
    """Long format for gr.LinePlot: step, loss, series (train / eval)."""
    rows = [
        (r["step"], r[key], series)
        for r in (rundir.read_progress(run_dir) if run_dir else [])
        for key, series in (("loss", "train"), ("eval_loss", "eval"))
        if r.get(key) is not None and r.get("step") is not None
    ]
    # gradio 6's plot fixes its axis types and colours from the first data it draws: a
    # run without points yet would leave it blank for good. One empty (NaN) point per
    # series, typed columns, keep both lines drawable from the start.
    first = rows[0][0] if rows else 1
    rows = [(first, math.nan, "train"), (first, math.nan, "eval"), *rows]
    frame = pd.DataFrame(rows, columns=["step", "loss", "series"])
    return frame.astype({"step": "int64", "loss": "float64"})


def log_text(run_dir: str, last: int = LOG_LINES) -> str:
    """The log's last lines, each progress bar (tqdm's \\r updates) at its latest state, with
    the server's folders left out of every path (a visitor sees file names only)."""
    lines = []
    for line in rundir.tail_log(run_dir, 20_000).rstrip().split("\n"):
        parts = [part for part in line.split("\r") if part.strip()]
        lines.append(parts[-1] if parts else line)
    return SERVER_PATH.sub(r"…/\1", "\n".join(lines[-last:]))


def learned_html(pairs: list[tuple[str, bool]]) -> str:
    """Token by token, the ones that receive loss highlighted."""
    trained = sum(1 for _, t in pairs if t)
    spans = "".join(
        f'<span style="{TRAINED_STYLE if t else CONTEXT_STYLE}" title="{"trained" if t else "context"}">'
        f"{esc(text)}</span>"
        for text, t in pairs
    )
    head = (
        f"{trained:,} of {len(pairs):,} tokens receive loss (green): what the model learns to "
        "write. Grey tokens are context it reads but is not trained on."
    )
    return f'<div class="ts-caption">{esc(head)}</div><pre class="ts-rendered">{spans}</pre>'
