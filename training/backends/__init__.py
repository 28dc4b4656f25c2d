"""Training backends: one small protocol, two implementations picked by `RunConfig.backend`.

    lora       TRL SFTTrainer + PEFT in this process (training/backends/lora.py)
    autotrain  Hugging Face AutoTrain Advanced in its own venv (training/backends/autotrain.py)

Also here: the pre-flight estimate of a run (preflight.py), and the pieces the LoRA backend
adds to TRL (batching.py: unpadded sub-batches; callbacks.py: progress and cancel).
The UI reaches a backend only through `get_backend(name)` and the protocol below.

The worker (training/jobs/worker.py) owns everything around a backend: the command line, the
run directory's config.yaml and status.json, data validation and the split, signals,
failures and exit codes. A backend only trains: it reads the config, writes progress lines
(rundir.append_progress), checkpoints, the adapter (atomically, via rundir.publish_adapter)
and returns its final figures. It polls `should_stop()` and, when it turns true, stops at the
next step boundary, saves what it has and returns status "cancelled".
"""

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from training.config import RunConfig


class Splits(NamedTuple):
    train: list[dict]  # normalised examples: {"messages": [...]} or {"text": str}
    val: list[dict]  # may be empty: no evaluation then


class Backend(Protocol):
    def available(self) -> tuple[bool, str]:
        """(usable here, why or what it is), cheap enough for every page load."""
        ...

    def install(self, gpu: bool = False) -> Iterator[str]:
        """Set the backend up, yielding output lines; RuntimeError when that fails."""
        ...

    def export_config(self, cfg: RunConfig, path: Path) -> Path:
        """Write a file that runs this config with the backend's own tool elsewhere."""
        ...

    def train(
        self,
        cfg: RunConfig,
        run_dir: Path,
        data: Splits,
        *,
        resume: bool,
        should_stop: Callable[[], bool],
    ) -> dict:
        """Train; return {"status": "completed" | "cancelled", "metrics": {...}}.
        Raise on failure: the worker turns the exception into a plain-language status."""
        ...


# Modules satisfy the protocol (module-level functions); imported only when chosen, so the
# app never pays for torch when it merely lists backends.
BACKENDS = {"lora": "training.backends.lora", "autotrain": "training.backends.autotrain"}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"Unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    return importlib.import_module(BACKENDS[name])
