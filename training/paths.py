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
    elif Path("/data").is_dir() and os.access("/data", os.W_OK) and os.environ.get("SPACE_ID"):
        root = Path("/data/tunesmith")
    else:
        root = REPO_ROOT / ".tunesmith"
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
