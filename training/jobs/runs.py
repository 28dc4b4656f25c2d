"""Runs as the playground and the evaluation see them: which runs and checkpoints have an
adapter to chat with, where it is, the run's config, and its data split exactly as the
worker made it (for example prompts, few-shot turns and held-out rows)."""

from pathlib import Path

from training.chat.generation import message_text
from training.jobs import rundir


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
    from training.paths import runs_dir

    runs = [p for p in runs_dir().iterdir() if p.is_dir() and checkpoints(p)]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def adapter_path(run_dir: Path, checkpoint: str | None = "final") -> Path:
    run_dir = Path(run_dir)
    if checkpoint in (None, "", "final"):
        return run_dir / rundir.ADAPTER
    return run_dir / rundir.CHECKPOINTS / checkpoint


def run_config(run_dir: Path):
    from training.config import RunConfig

    return RunConfig.from_yaml(Path(run_dir) / rundir.CONFIG)


def _data_file(name: str, run_dir: Path) -> str:
    """config.yaml keeps the path as given to the worker: try it as is, then next to the run
    and the repository."""
    from training.paths import REPO_ROOT

    for candidate in (Path(name), Path(run_dir) / name, REPO_ROOT / name):
        if candidate.is_file():
            return str(candidate)
    raise ValueError(f"The run's data file {name} is no longer there; pass a data file instead.")


_SPLITS: dict = {}


def run_examples(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(train, validation) exactly as the worker split them (same file, fraction and seed)."""
    from training.data import load_examples, split_examples

    cfg = run_config(run_dir)
    key = (str(Path(run_dir).resolve()), cfg.to_yaml())
    if key not in _SPLITS:
        mapping = cfg.column_mapping or None
        examples = load_examples(_data_file(cfg.data, run_dir), fmt=cfg.format, mapping=mapping)
        if cfg.validation_file:
            val = load_examples(
                _data_file(cfg.validation_file, run_dir), fmt=cfg.format, mapping=mapping
            )
            _SPLITS[key] = (examples, val)
        else:
            _SPLITS[key] = split_examples(examples, cfg.validation_split, cfg.seed)
    return _SPLITS[key]


def prompt_and_reference(example: dict) -> tuple[list[dict], str] | None:
    """The conversation up to its last assistant turn, and that turn's text (None: no turn)."""
    messages = example.get("messages") or []
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        return None
    prompt = [{"role": m["role"], "content": message_text(m["content"])} for m in messages[:last]]
    return prompt, message_text(messages[last]["content"])


def few_shot_turns(train: list[dict], k: int, seed: int = 0) -> list[dict]:
    """k training conversations as prior user/assistant turns (system messages left out):
    the prompt-engineering baseline. Deterministic for a given seed."""
    import random

    chats = [e["messages"] for e in train if prompt_and_reference(e)]
    picked = random.Random(seed).sample(chats, min(k, len(chats)))
    return [
        {"role": m["role"], "content": message_text(m["content"])}
        for chat in picked
        for m in chat
        if m["role"] in ("user", "assistant")
    ]
