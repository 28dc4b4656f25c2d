"""Runs as the playground, the evaluation and the export see them, and who may see them.

Which runs and checkpoints have an adapter to chat with, where it and its tokenizer are, the
run's config, and its data split exactly as the worker made it. This module is the one place
that decides access: `visible(owner)` lists a visitor's runs and `open(run, checkpoint,
owner)` checks any run value a handler receives (an API caller can send any string).

A run submitted through the app belongs to its owner alone: a visitor signed in with Hugging
Face is "hf:<username>" (the same runs on every device), anyone else the random id kept in
their browser; signing in adopts the browser's runs. Runs made with the CLI are not in the
job store: they belong to whoever runs this machine, and every visitor may use them.
"""

from pathlib import Path

from training.config import RunConfig
from training.data import SKIPPED_ROWS, load_splits, read_skipped
from training.jobs import rundir
from training.jobs.store import DB_NAME, JobStore
from training.paths import REPO_ROOT, home, runs_dir

REFUSED = "Pick a run and one of its checkpoints from the lists."
SIGNED_IN = "hf:"  # owner prefix of a visitor signed in with Hugging Face; browser ids have no ':'


def owner_of(browser_id: str, username: str | None = None) -> str:
    """Who owns the runs this visitor starts (see the module docstring)."""
    return SIGNED_IN + username if username else browser_id


def signed_in(owner: str) -> bool:
    return owner.startswith(SIGNED_IN)


def adopt(browser_id: str, owner: str) -> int:
    """On sign-in, the runs made in this browser before belong to the signed-in visitor."""
    db = home() / DB_NAME
    if not browser_id or owner == browser_id or not signed_in(owner) or not db.is_file():
        return 0
    return JobStore(db).reassign(browser_id, owner)


def may_see(run_dir, owner: str) -> bool:
    """Whether this visitor may use this run (see the module docstring)."""
    db = home() / DB_NAME
    if not db.is_file():  # nothing was ever submitted on this machine
        return True
    target = Path(run_dir).resolve()
    owners = {o for d, o in JobStore(db).owners() if Path(d).resolve() == target}
    return not owners or owner in owners


def visible(owner: str) -> list[Path]:
    """The visitor's runs with an adapter or checkpoint (and CLI runs), newest first."""
    return [p for p in list_runs() if may_see(p, owner)]


def owned(run: str | None, owner: str) -> Path | None:
    """The run folder if it is a run under the runs folder this visitor may use, else None
    (a typed-in path, another visitor's run)."""
    if not run:
        return None
    path = Path(run).resolve()
    return path if path.parent == runs_dir().resolve() and may_see(path, owner) else None


def open(run: str | None, checkpoint: str | None = "final", owner: str = "") -> Path:  # noqa: A001
    """The run folder, checked: a run this visitor may use and one of its own checkpoints.
    Raises ValueError with a plain message otherwise."""
    path = owned(run, owner)
    if path is None or checkpoint not in checkpoints(path):
        raise ValueError(REFUSED)
    return path


def checkpoints(run_dir: Path) -> list[str]:
    """ "final" (the run's adapter) first when present, then checkpoints, newest first."""
    run_dir = Path(run_dir)
    found = [
        p.name
        for p in (run_dir / rundir.CHECKPOINTS).glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and rundir.adapter_ready(p)
    ]
    found.sort(key=lambda n: int(n.split("-")[-1]), reverse=True)
    return (["final"] if rundir.adapter_ready(run_dir / rundir.ADAPTER) else []) + found


def list_runs() -> list[Path]:
    """Runs with something to chat with (an adapter or a checkpoint), newest first."""
    runs = [p for p in runs_dir().iterdir() if p.is_dir() and checkpoints(p)]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def adapter_path(run_dir: Path, checkpoint: str | None = "final") -> Path:
    run_dir = Path(run_dir)
    if checkpoint in (None, "", "final"):
        return run_dir / rundir.ADAPTER
    return run_dir / rundir.CHECKPOINTS / checkpoint


def tokenizer_dir(run_dir: Path, checkpoint: str | None = "final") -> Path:
    """The folder holding the tokenizer a checkpoint was trained with (its inference chat
    template): the checkpoint's own when saved there, else the run's final adapter."""
    adapter = adapter_path(run_dir, checkpoint)
    if (adapter / "tokenizer_config.json").is_file():
        return adapter
    return Path(run_dir) / rundir.ADAPTER


def run_config(run_dir: Path) -> RunConfig:
    return RunConfig.from_yaml(Path(run_dir) / rundir.CONFIG)


def _data_file(name: str, run_dir: Path) -> str:
    """config.yaml keeps the path as given to the worker: try it as is, then next to the run
    and the repository. A Hub dataset (hub:..., pinned to a commit) is read as it is."""
    if name.startswith("hub:"):
        return name
    for candidate in (Path(name), Path(run_dir) / name, REPO_ROOT / name):
        if candidate.is_file():
            return str(candidate)
    raise ValueError(f"The run's data file {name} is no longer there; pass a data file instead.")


_SPLITS: dict = {}


def run_examples(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(train, validation) exactly as the worker split them (same file, fraction and seed)."""
    cfg = run_config(run_dir)
    key = (str(Path(run_dir).resolve()), cfg.to_yaml())
    if key not in _SPLITS:
        skip = read_skipped(Path(run_dir) / SKIPPED_ROWS)  # rows the worker left out
        _SPLITS[key] = load_splits(cfg, find=lambda name: _data_file(name, run_dir), skip=skip)
    return _SPLITS[key]
