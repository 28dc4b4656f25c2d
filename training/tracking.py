"""Experiment tracking: off unless the user chooses it (RunConfig.report_to), and each
tracker only when its package is installed.

- "trackio": local-first, into RUN_DIR/trackio (a SQLite file; `trackio show` opens it).
- "tensorboard": event files in RUN_DIR/tensorboard (`tensorboard --logdir RUN_DIR`).
- "wandb": Weights & Biases with the machine's own WANDB_API_KEY; without one, offline
  files in RUN_DIR/wandb (`wandb sync` sends them later), so nothing leaves the machine
  unless its owner set up W&B.

Nothing is sent anywhere by "trackio" or "tensorboard": Trackio's sync to a Space or Hub
dataset is left to its own command line, with the user's own token.
"""

import importlib.util
import os
from pathlib import Path

TRACKERS = {  # choice -> the package it needs (None: nothing to log); RunConfig's TRACKERS
    "none": None,
    "trackio": "trackio",
    "tensorboard": "tensorboard",
    "wandb": "wandb",
}
LABELS = {
    "none": "Off",
    "trackio": "Trackio (local)",
    "tensorboard": "TensorBoard (local)",
    "wandb": "Weights & Biases",
}
PROJECT = "tunesmith"


def installed(name: str) -> bool:
    package = TRACKERS.get(name)
    return package is None or importlib.util.find_spec(package) is not None


def available(in_space: bool = False) -> list[str]:
    """The choices this machine can honour, "none" first (see `refusal`)."""
    return [name for name in TRACKERS if refusal(name, in_space) is None]


def refusal(name: str, in_space: bool = False) -> str | None:
    """Why this tracker cannot be used here (None: it can). In a Space, W&B is off: it would
    log a visitor's run to the Space owner's account."""
    if name not in TRACKERS:
        return f"report_to must be one of {', '.join(TRACKERS)}, not {name!r}"
    if name == "wandb" and in_space:
        return "Weights & Biases is off in a Space: it would log to the Space owner's account."
    if not installed(name):
        return f"{LABELS[name]} is not installed here (pip install {TRACKERS[name]})."
    return None


def trainer_args(name: str, run_dir: Path, run_name: str) -> dict:
    """The Trainer's report_to (and run name), with each tracker's files kept in the run
    directory; sets the environment variables the trackers read (this process only)."""
    if name in (None, "", "none"):
        return {"report_to": "none"}
    if why := refusal(name):
        raise ValueError(why)
    run_dir = Path(run_dir)
    if name == "trackio":
        os.environ["TRACKIO_DIR"] = str(run_dir / "trackio")
        os.environ.setdefault("TRACKIO_PROJECT", PROJECT)
        os.environ.pop("TRACKIO_SPACE_ID", None)  # local only: a sync is the user's own step
    elif name == "tensorboard":
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
    elif name == "wandb":
        os.environ["WANDB_DIR"] = str(run_dir)
        os.environ.setdefault("WANDB_PROJECT", PROJECT)
        if not os.environ.get("WANDB_API_KEY"):
            os.environ["WANDB_MODE"] = "offline"
    extra = {"project": PROJECT, "trackio_static_space_id": False} if name == "trackio" else {}
    return {"report_to": [name], "run_name": run_name, **extra}
