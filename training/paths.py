"""Where Tunesmith keeps its state: converted models, run directories, the job database.

One root, `TUNESMITH_HOME`; by default `/data/tunesmith` when a Space has persistent
storage mounted at /data, else `.tunesmith/` next to the code. Tests point it at a temp dir.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    if env := os.environ.get("TUNESMITH_HOME"):
        root = Path(env)
    elif Path("/data").is_dir() and os.access("/data", os.W_OK) and in_space():
        root = Path("/data/tunesmith")
    else:
        root = REPO_ROOT / ".tunesmith"
    root.mkdir(parents=True, exist_ok=True)
    return root


def in_space() -> bool:
    """Running inside a Hugging Face Space (the platform sets SPACE_ID)."""
    return bool(os.environ.get("SPACE_ID"))


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set: nothing may be fetched from the Hub."""
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "on", "yes", "true"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
