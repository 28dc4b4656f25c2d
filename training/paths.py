"""Where Tunesmith keeps its state: converted models, run directories, the job database,
and where Hugging Face models are cached.

One root, `TUNESMITH_HOME`; by default `/data/tunesmith` when a Space has persistent
storage mounted at /data, else `.tunesmith/` next to the code. Tests point it at a temp dir.

Model caches on a Space: `preload_from_hub` fills the image's default cache
(~/.cache/huggingface/hub) at build time, when /data is not mounted; models downloaded
while the app runs go under /data (HF_HOME, set by `use_persistent_hf_home`), so a restart
finds them. `hub_caches()` lists both, and a model found in either loads without a download.
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


def persistent_storage() -> Path | None:
    """/data inside a Space with persistent storage, else None."""
    data = Path("/data")
    return data if in_space() and data.is_dir() and os.access(data, os.W_OK) else None


def use_persistent_hf_home(storage: Path | None = None) -> None:
    """Send Hub downloads to persistent storage (HF_HOME=/data/.huggingface) unless HF_HOME is
    set already. Call before huggingface_hub is imported: it reads HF_HOME once."""
    storage = storage or persistent_storage()
    if storage is not None and not os.environ.get("HF_HOME"):
        os.environ["HF_HOME"] = str(storage / ".huggingface")


def hub_caches() -> list[Path]:
    """Where a Hub model may already be: the active cache (HF_HUB_CACHE / HF_HOME), then the
    image's default cache that preload_from_hub fills at build time."""
    from huggingface_hub import constants

    default = Path(os.path.expanduser("~/.cache/huggingface/hub"))
    return list(dict.fromkeys([Path(constants.HF_HUB_CACHE), default]))


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
