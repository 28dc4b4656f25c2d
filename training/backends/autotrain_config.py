"""What AutoTrain Advanced is given: its YAML config, data folder, model folder and
environment, where its venv lives and whether it is installed at all. Light (no torch at
import): the Train tab reaches `available()` and `export_config()` through the backend
protocol (training/backends/__init__.py); `install()` runs in the background build
(autotrain_install.py); training/backends/autotrain.py runs AutoTrain itself.

The YAML is the one `autotrain --config FILE` reads (task llm-sft, backend local). Our runs
use it as is, and "Export as AutoTrain config" writes the same mapping with portable paths,
so a user can rerun a Tunesmith run on their own hardware:

    pip install autotrain-advanced==0.8.36
    autotrain --config autotrain.yml        # next to a data/ folder holding train.jsonl
"""

import json
import math
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml

from training.config import DEFAULT_MODEL, RunConfig
from training.models.bundled import BUNDLED_HUB_ID
from training.paths import REPO_ROOT, home

VERSION = "0.8.36"
SETUP_COMMAND = "bash scripts/setup_autotrain.sh"
STAMP = ".tunesmith-installed"  # written last by the setup script: "<hash>-cpu" / "<hash>-gpu"
# Environment names AutoTrain must not see. With SPACE_ID it pauses the hosting Space when
# training ends or fails; ENDPOINT_ID pauses an endpoint; tokens it simply does not need.
SECRET = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|API_?KEY|CREDENTIALS?)(_|$)", re.IGNORECASE)
DROPPED_PREFIXES = ("SPACE_", "ENDPOINT_")
DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")  # our venv's packages stay ours


def venv_dir() -> Path:
    """AutoTrain's venv: TUNESMITH_AUTOTRAIN_VENV when set; else .venv-autotrain in the repo
    when it exists (what `bash scripts/setup_autotrain.sh` builds by hand, and CI); else
    venv-autotrain under TUNESMITH_HOME, which on a Space with persistent storage is under
    /data, so a restart keeps it. The setup script is handed the same path."""
    if env := os.environ.get("TUNESMITH_AUTOTRAIN_VENV"):
        return Path(env)
    local = REPO_ROOT / ".venv-autotrain"
    return local if local.exists() else home() / "venv-autotrain"


def flavour() -> str | None:
    """'cpu' or 'gpu' as built by the setup script; None when not (completely) built."""
    try:
        stamp = (venv_dir() / STAMP).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return stamp.rsplit("-", 1)[-1] or None


def setup_command(gpu: bool = False) -> list[str]:
    """What install() runs: the setup script (it prints one line per step)."""
    return ["bash", str(REPO_ROOT / "scripts" / "setup_autotrain.sh"), *(["--gpu"] if gpu else [])]


def install(gpu: bool = False, pass_fds: tuple[int, ...] = ()) -> Iterator[str]:
    """Build AutoTrain's venv (venv_dir()) with the setup script, yielding its output line by
    line (a quick no-op once built). Pip sees no secret. Raises RuntimeError when the script
    fails; a consumer that stops reading stops the script's whole process group. pass_fds:
    descriptors the script inherits (the background build's lock, held while it runs)."""
    env = {k: v for k, v in os.environ.items() if not SECRET.search(k)}
    env["TUNESMITH_AUTOTRAIN_VENV"] = str(venv_dir())
    proc = subprocess.Popen(
        setup_command(gpu),
        cwd=REPO_ROOT,
        env=env,
        text=True,
        errors="replace",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=pass_fds,
    )
    try:
        for line in proc.stdout:
            yield line.rstrip()
        code = proc.wait()
    finally:
        if proc.poll() is None:  # the reader went away mid-install: stop (a rerun resumes)
            os.killpg(proc.pid, signal.SIGTERM)
    if code != 0:
        raise RuntimeError(f"The install failed (exit code {code}); the lines above say why.")


def available() -> tuple[bool, str]:
    """(usable, reason). Cheap: two file checks, no subprocess."""
    venv = venv_dir()
    if flavour() is None or not (venv / "bin" / "autotrain").exists():
        return False, (
            f"AutoTrain Advanced is not installed here. Enable it with `{SETUP_COMMAND}` "
            "(about 2 minutes and 3 GB; add --gpu on a machine with an NVIDIA GPU)."
        )
    return True, f"AutoTrain Advanced {VERSION} ({flavour()} build)"


def autotrain_env(base: dict, trust_remote_code: bool, work: Path) -> dict:
    """Our environment minus Space/endpoint ids and every secret; offline and cache
    settings (HF_HUB_OFFLINE, HF_HOME, CUDA_VISIBLE_DEVICES...) pass through."""

    def secret(name: str) -> bool:  # HF_TOKEN, OAUTH_CLIENT_SECRET...; not TOKENIZERS_*
        return bool(SECRET.search(name)) or name.upper().startswith(DROPPED_PREFIXES)

    env = {k: v for k, v in base.items() if not secret(k) and k not in DROPPED}
    venv = venv_dir()
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{base.get('PATH', os.defpath)}",  # it runs `accelerate`
        VIRTUAL_ENV=str(venv),
        PYTHONUNBUFFERED="1",  # lines as they happen, not in 8 KB blocks
        PAUSE_ON_FAILURE="0",  # belt and braces: never try to pause a Space
        ALLOW_REMOTE_CODE="true" if trust_remote_code else "false",  # its default is true
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1",  # nor a token stored on disk
        HF_TOKEN_PATH=str(work / ".no-token"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    return env


def params_for(
    cfg: RunConfig,
    *,
    model: str,
    data_dir: str,
    chat: bool,
    project: str,
    epochs: int,
    precision: str | None,
    has_val: bool,
) -> dict:
    """The `autotrain --config` mapping for a run. precision: 'bf16' / 'fp16' on a GPU,
    None on CPU (then no quantization: AutoTrain's int4 default fails without CUDA)."""
    return {
        "task": "llm-sft",
        "base_model": model,
        "project_name": project,
        "log": "none",
        "backend": "local",
        "data": {
            "path": data_dir,
            "train_split": "train",
            # AutoTrain 0.8.36's CLI reads but then drops it (llm_munge_data): no eval loss.
            "valid_split": "validation" if has_val else None,
            "chat_template": "tokenizer" if chat else None,
            "column_mapping": {"text_column": "messages" if chat else "text"},
        },
        "params": {
            "block_size": cfg.max_length,
            "model_max_length": cfg.max_length,
            "epochs": epochs,
            "batch_size": cfg.batch_size,
            "gradient_accumulation": cfg.grad_accum,
            "lr": cfg.learning_rate,
            "scheduler": cfg.lr_scheduler,
            "warmup_ratio": cfg.warmup_ratio,
            "optimizer": "adamw_torch",
            "seed": cfg.seed,
            "logging_steps": cfg.logging_steps,
            "peft": True,
            "quantization": "int4" if cfg.method == "qlora" and precision else None,
            "target_modules": cfg.target_modules,
            "lora_r": cfg.lora_r,
            "lora_alpha": cfg.lora_alpha,
            "lora_dropout": cfg.lora_dropout,
            "mixed_precision": precision,
            # Recomputing activations saves GPU memory; on CPU it only costs time.
            "disable_gradient_checkpointing": precision is None,
            "padding": "right",
            "merge_adapter": False,
        },
    }


def write_yaml(params: dict, path: Path, header: str = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(params, sort_keys=False, allow_unicode=True)
    path.write_text(header + text, encoding="utf-8")
    return path


def export_config(cfg: RunConfig, path: Path, data=None) -> Path:
    """Write a YAML for `autotrain --config` on the user's own hardware. With `data` (the
    worker's Splits) the normalised rows go to data/ next to it; no token is ever written."""
    path = Path(path)
    chat = cfg.format != "text"
    if data is not None:
        chat = write_data(data, path.parent / "data")
    slug = "".join(c if c.isalnum() and c.isascii() else "-" for c in Path(cfg.data or "run").stem)
    project = ("tunesmith-" + "-".join(filter(None, slug.split("-"))))[:50].rstrip("-")
    gpu = cfg.method == "qlora"  # 4-bit needs CUDA anyway; plain LoRA runs anywhere
    params = params_for(
        cfg,
        model=BUNDLED_HUB_ID if cfg.model == DEFAULT_MODEL else cfg.model,
        data_dir="data",
        chat=chat,
        project=project,
        epochs=max(1, math.ceil(cfg.epochs)),
        precision="bf16" if gpu else None,
        has_val=bool(data is not None and data.val),
    )
    steps = f"# max_steps {cfg.max_steps} is not an AutoTrain setting: adjust epochs.\n"
    header = (
        "# AutoTrain Advanced config exported by Tunesmith. Run it with:\n"
        f"#   pip install autotrain-advanced=={VERSION}\n"
        f"#   autotrain --config {path.name}\n"
        f"# data.path holds train.jsonl with a '{'messages' if chat else 'text'}' column.\n"
        "# On a GPU set params.mixed_precision to bf16 (fp16 on T4/V100) and\n"
        "# disable_gradient_checkpointing to false; quantization int4 = QLoRA (CUDA only).\n"
        "# To push the result to the Hub add: hub: {username: ..., token: ${HF_TOKEN},\n"
        "# push_to_hub: true}. No token is written here.\n"
    ) + (steps if cfg.max_steps != -1 else "")
    return write_yaml(params, path, header)


def write_data(data, folder: Path) -> bool:
    """train.jsonl (+ validation.jsonl); returns True for chat data. Messages keep role and
    content only: AutoTrain renders them with the tokenizer's template, loss on all tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    chat = all("messages" in ex for ex in data.train)
    if not chat and not all("text" in ex for ex in data.train):
        raise ValueError("AutoTrain needs one kind of data per run: all chats or all text.")
    if any(_uses_tools(ex) for ex in (*data.train, *data.val)):
        raise ValueError(
            "AutoTrain renders only plain turns and would drop the tool calls: train this data "
            "with the LoRA backend and a model whose chat template supports tools."
        )
    for split, rows in (("train", data.train), ("validation", data.val)):
        if not rows:
            continue
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for ex in rows:
                if chat:
                    msgs = [{"role": m["role"], "content": m["content"]} for m in ex["messages"]]
                    row = {"messages": msgs}
                else:
                    row = {"text": ex["text"]}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return chat


def _uses_tools(ex: dict) -> bool:
    msgs = ex.get("messages") or []
    return bool(ex.get("tools")) or any(m.get("tool_calls") or m["role"] == "tool" for m in msgs)


def project_name(run_dir: Path) -> str:
    """AutoTrain's rule: letters, digits and hyphens, at most 50 characters."""
    slug = "".join(c if c.isalnum() and c.isascii() else "-" for c in run_dir.name)
    slug = "-".join(filter(None, slug.split("-")))
    return ("ts-" + slug)[:50].rstrip("-") or "tunesmith"


def compat_model_dir(src: Path, dst: Path) -> Path:
    """A view of a model folder that transformers 4.48 reads: files symlinked, except
    config.json and tokenizer_config.json as transformers 5 wrote them, which are patched
    (rope_parameters -> rope_theta / rope_scaling, TokenizersBackend -> PreTrainedTokenizerFast).
    Without the rope patch SmolLM2 would silently train with the wrong rope_theta."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name not in ("config.json", "tokenizer_config.json"):
            (dst / item.name).symlink_to(item.resolve())
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" not in config:
        config["rope_theta"] = rope.get("rope_theta", 10000.0)
        if rope.get("rope_type", "default") != "default":
            config["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config["dtype"]
    (dst / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    if (src / "tokenizer_config.json").is_file():
        tok = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
        if tok.get("tokenizer_class") in ("TokenizersBackend", None):
            tok["tokenizer_class"] = "PreTrainedTokenizerFast"
        (dst / "tokenizer_config.json").write_text(json.dumps(tok, indent=2), encoding="utf-8")
    return dst


def epochs_for(cfg: RunConfig, data, base: Path | None, chat: bool) -> int:
    """AutoTrain trains whole epochs. max_steps becomes the epoch count closest to it,
    counted the way AutoTrain packs: all tokens in max_length blocks."""
    if cfg.max_steps == -1 or base is None:
        epochs = max(1, math.ceil(cfg.epochs))
        if epochs != cfg.epochs:
            print(f"[autotrain] AutoTrain trains whole epochs: {cfg.epochs} -> {epochs}.")
        return epochs
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base, trust_remote_code=cfg.trust_remote_code)
    texts = [
        tok.apply_chat_template(ex["messages"], tokenize=False) if chat else ex["text"]
        for ex in data.train
    ]
    tokens = sum(len(ids) + 1 for ids in tok(texts)["input_ids"])  # + the eos between rows
    batches = math.ceil(max(1, tokens // cfg.max_length) / cfg.batch_size)
    per_epoch = max(1, batches // cfg.grad_accum)
    epochs = max(1, round(cfg.max_steps / per_epoch))
    print(
        f"[autotrain] AutoTrain trains whole epochs: max_steps {cfg.max_steps} -> {epochs} "
        f"epoch(s) of about {per_epoch} steps.",
        flush=True,
    )
    return epochs
