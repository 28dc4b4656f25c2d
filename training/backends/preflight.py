"""Pre-flight estimate: before Start, how big the run is, whether it fits, how long it takes.

Everything comes from the model's config.json (no weights loaded), the data report's token
statistics and the detected hardware. The numbers are estimates to decide with (does it fit
a 16 GB T4? minutes or hours?), each built from a formula written out below.
"""

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from training.config import DEFAULT_MODEL, RunConfig

GB = 2**30
# SmolLM2-135M-Instruct's config.json: the bundled model, before its first conversion.
SMOLLM2_135M = {
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "tie_word_embeddings": True,
}
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Training speed, tokens/s per billion parameters, LoRA. GPUs: MFU x peak dense 16-bit
# FLOP/s / (6 FLOPs per parameter per token: forward 2, backward to the activations 2 (the
# frozen base needs no weight gradients), activation-checkpoint recompute 2). Peaks from the
# vendor datasheets (T4 65 fp16, L4 121, A10G ~125 like the A10, L40S 362, A100 312, H100 SXM 989
# TFLOP/s; H200 has the H100's compute). MFU assumed 20 % (T4), 22 % (L4, bandwidth-bound),
# 25 % (A10G, L40S), 30 % (A100, H100): typical of LoRA on short sequences. CPU: measured here
# (2026-11, 2 shared cores, fp32): SmolLM2-135M, LoRA r16 all-linear, AdamW, batch 4 x 256
# and 8 x 128 tokens: 184-211 tokens/s, i.e. 12-14 per billion parameters per core.
TOKENS_PER_S_PER_B = {
    "T4": 2200,
    "L4": 4400,
    "A10G": 5200,
    "L40S": 15000,
    "A100": 15600,
    "H100": 49000,
}
CPU_TOKENS_PER_S_PER_B_PER_CORE = 12
SMALL_MODEL_B = 0.5  # below ~0.5 B a GPU is launch-bound: smaller models are no faster
OVERHEAD_GB = 1.0  # CUDA context / Python + torch, allocator slack


@dataclass
class Preflight:
    total_params: int | None = None
    trainable_params: int | None = None
    train_examples: int | None = None
    tokens_per_epoch: int | None = None
    total_tokens: int | None = None
    steps: int | None = None
    memory_gb: dict[str, float] = field(default_factory=dict)  # part -> GB
    peak_gb: float | None = None
    device: str = ""  # e.g. "NVIDIA T4" or "CPU (2 cores)"
    device_gb: float = 0.0  # GPU memory, or RAM available for a CPU run
    fits: bool | None = None
    seconds: float | None = None
    lines: list[str] = field(default_factory=list)  # plain-language verdict, one per line


def count_params(config: dict, target_modules: str, r: int) -> tuple[int, int]:
    """(total parameters, LoRA parameters) of a Llama-style decoder from its config.json.
    A LoRA pair on a linear layer in -> out adds r x (in + out) parameters."""
    c = config.get("text_config", config)
    h, layers = c["hidden_size"], c["num_hidden_layers"]
    inter = c.get("intermediate_size") or 4 * h
    heads = c["num_attention_heads"]
    kv = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or h // heads
    shapes = {  # (in, out) per layer
        "q_proj": (h, heads * head_dim),
        "k_proj": (h, kv * head_dim),
        "v_proj": (h, kv * head_dim),
        "o_proj": (heads * head_dim, h),
        "gate_proj": (h, inter),
        "up_proj": (h, inter),
        "down_proj": (inter, h),
    }
    embed = c["vocab_size"] * h * (1 if c.get("tie_word_embeddings", True) else 2)
    total = embed + h + layers * (sum(i * o for i, o in shapes.values()) + 2 * h)
    names = LINEAR if target_modules == "all-linear" else target_modules.replace(" ", "").split(",")
    lora = layers * sum(r * sum(shapes[n]) for n in names if n in shapes)
    return total, lora


def load_model_config(name: str) -> dict:
    """The base model's config.json, without loading (or converting) any weights."""
    from training.models import bundled
    from training.models import catalogue as models

    if (name or DEFAULT_MODEL) == DEFAULT_MODEL:
        folder = bundled.bundled_dir()
        if not (folder / "config.json").is_file():
            return SMOLLM2_135M
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    target = models.resolve_model(name)  # ValueError with a plain message when unusable
    if isinstance(target, str):  # a Hub id, reachable
        from huggingface_hub import hf_hub_download

        target = Path(hf_hub_download(target, "config.json")).parent
    return json.loads((Path(target) / "config.json").read_text(encoding="utf-8"))


def data_figures(cfg: RunConfig, stats: dict) -> tuple[int, float, int, bool]:
    """(training examples, mean tokens per example, longest example, exact?) from the data
    report's statistics, for this run's validation split and max length."""
    from training.data.stats import validation_count  # the worker's own split rule

    n = int(stats.get("examples") or 0)
    train = n if cfg.validation_file else n - validation_count(n, cfg.validation_split)
    dist = stats.get("tokens_per_example") or {}
    longest = min(int(dist.get("max") or cfg.max_length), cfg.max_length)
    total = stats.get("total_training_tokens")  # sum of min(max_length, tokens) per example
    exact = bool(total) and stats.get("max_length") == cfg.max_length
    if exact:
        mean = total / max(n, 1)
    elif dist.get("mean"):  # clipped mean: exact only when no example is longer
        mean = min(float(dist["mean"]), cfg.max_length)
    else:  # counted for another max length: close enough unless many rows are truncated
        mean = min((total or 0) / max(n, 1), cfg.max_length)
    return train, mean, longest, exact


def memory_parts(cfg, config, total, lora, precision, checkpointing, length) -> dict[str, float]:
    """Peak memory in GB by part: base weights at the training precision (QLoRA: linear
    layers in 4-bit NF4, ~0.53 byte with double quantisation, the rest 16-bit); adapter
    weights + gradients + Adam moments (fp32: 16 bytes per parameter); activations; logits."""
    c = config.get("text_config", config)
    h, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    inter = c.get("intermediate_size") or 4 * h
    value = 4 if precision == "fp32" else 2
    if cfg.method == "qlora":
        embed = vocab * h * (1 if c.get("tie_word_embeddings", True) else 2)
        weights = (total - embed) * 0.53 + embed * 2
    else:
        weights = total * value
    tokens = cfg.batch_size * length
    # Values kept per token per layer for the backward pass: norms, q/k/v, attention output,
    # residuals, the MLP's gate/up/activation/product, and the dropped-out copies of each
    # LoRA input (~16 h + 5 i, a rough count). With checkpointing only each layer's input
    # is kept, plus one layer recomputed at a time.
    per_layer = 16 * h + 5 * inter
    kept = h * layers + per_layer if checkpointing else per_layer * layers
    # Logits in the model's precision plus fp32 copies for the loss and its gradient.
    logits = tokens * vocab * (value + 8)
    parts = {
        "weights": weights,
        "adapter + optimizer": lora * 16,
        "activations": tokens * kept * value,
        "logits": logits,
    }
    out = {k: v / GB for k, v in parts.items()}
    out["overhead"] = OVERHEAD_GB
    return out


def tokens_per_second(hw, params: int) -> tuple[float, str]:
    """(speed, which table row) for this hardware and model size."""
    billions = params / 1e9
    if not hw.cuda:
        cores = os.cpu_count() or 1
        return (
            CPU_TOKENS_PER_S_PER_B_PER_CORE * cores / billions,
            f"measured CPU speed x {cores} cores",
        )
    name = hw.name.upper()
    found = next(
        (k for k in ("H100", "H200", "A100", "A10", "L40S", "L4", "T4") if k in name), None
    )
    row = {"H200": "H100", "A10": "A10G", None: "L4"}.get(found, found)
    note = "" if found else ", unknown GPU: assumed L4-class"
    return TOKENS_PER_S_PER_B[row] / max(billions, SMALL_MODEL_B), f"{row} table row{note}"


def available_ram_gb() -> float:
    try:
        import psutil

        return psutil.virtual_memory().available / GB
    except ImportError:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / GB


def local_hardware():
    """The detected device; for a CPU run the RAM free now, not the RAM installed. On
    ZeroGPU the GPU a call gets (the app process itself never touches CUDA there)."""
    from dataclasses import replace

    from training import zerogpu
    from training.hardware import detect

    if zerogpu.active():
        return zerogpu.HARDWARE
    hw = detect()
    return hw if hw.cuda else replace(hw, memory_gb=available_ram_gb())


def estimate(
    cfg: RunConfig, report_stats: dict | None, hardware=None, model_config: dict | None = None
) -> Preflight:
    """Sizes, memory fit and duration of a run; `lines` says it in words. Never raises
    for a model or data problem: the problem becomes a line."""
    hw = hardware or local_hardware()
    pf = Preflight(device=hw.name, device_gb=hw.memory_gb)
    if cfg.method == "qlora" and not hw.supports_4bit:
        pf.lines.append("QLoRA (4-bit) needs a CUDA GPU and this machine has none: choose LoRA.")
    try:
        config = model_config or load_model_config(cfg.model)
        total, lora = count_params(config, cfg.target_modules, cfg.lora_r)
    except Exception as e:  # unknown model, offline Hub, odd config: say so, do not crash
        pf.lines.append(f"Cannot size the model {cfg.model!r}: {e}")
        return pf
    pf.total_params, pf.trainable_params = total, lora
    targets = "all linear layers" if cfg.target_modules == "all-linear" else cfg.target_modules
    pf.lines.append(
        f"Trains {_count(lora)} of {_count(total)} parameters ({100 * lora / total:.2f} %): "
        f"{'QLoRA' if cfg.method == 'qlora' else 'LoRA'} rank {cfg.lora_r} on {targets}."
    )
    train, mean, length, exact = data_figures(cfg, report_stats or {})
    if train and mean:
        per_epoch = max(1, math.ceil(math.ceil(train / cfg.batch_size) / cfg.grad_accum))
        by_steps = cfg.max_steps > 0
        pf.steps = cfg.max_steps if by_steps else math.ceil(cfg.epochs * per_epoch)
        pf.train_examples, pf.tokens_per_epoch = train, round(train * mean)
        per_step = cfg.batch_size * cfg.grad_accum * mean
        pf.total_tokens = round(
            pf.steps * per_step if by_steps else pf.tokens_per_epoch * cfg.epochs
        )
        pf.lines.append(
            f"{train:,} training examples, {'' if exact else '~'}{_count(pf.tokens_per_epoch)} "
            f"tokens per epoch; {_count(pf.total_tokens)} tokens in {pf.steps:,} optimizer steps."
        )
    else:
        pf.lines.append("Check a dataset on the Data tab to estimate tokens, steps and time.")
    pf.memory_gb = memory_parts(
        cfg, config, total, lora, hw.precision, hw.activation_checkpointing, length
    )
    pf.peak_gb = sum(pf.memory_gb.values())
    pf.lines.append(_fit_line(pf, hw, cfg, length))
    if pf.total_tokens:
        speed, row = tokens_per_second(hw, total)
        pf.seconds = pf.total_tokens / speed
        pf.lines.append(
            f"Estimated time: {_duration(pf.seconds)} at ~{speed:,.0f} tokens/s ({row}; "
            "evaluation and model loading come on top)."
        )
    return pf


def _fit_line(pf: Preflight, hw, cfg: RunConfig, length: int) -> str:
    if not pf.device_gb:
        return f"Estimated peak memory {pf.peak_gb:.1f} GB ({hw.name}: memory size unknown)."
    where = (
        f"this {pf.device_gb:.0f} GB {hw.name}"
        if hw.cuda
        else f"this CPU's free RAM ({pf.device_gb:.0f} GB)"
    )
    pf.fits = pf.peak_gb <= 0.9 * pf.device_gb  # the rest: fragmentation, other processes
    if pf.fits:
        return f"Fits in {where}: est. {pf.peak_gb:.1f} GB peak."
    tips = []
    parts = pf.memory_gb
    if parts["activations"] + parts["logits"] > parts["weights"]:
        tips.append(f"a shorter max length (the longest batch now has {length:,} tokens)")
        if cfg.batch_size > 1:
            half = cfg.batch_size // 2
            tips.append(
                f"batch size {half} with gradient accumulation {cfg.grad_accum * 2} "
                "(same effective batch)"
            )
    if hw.cuda and cfg.method != "qlora":
        tips.append("QLoRA (4-bit base weights)")
    tips.append("a smaller model")
    return f"Too big for {where}: est. {pf.peak_gb:.1f} GB peak. Try {', or '.join(tips)}."


def _count(n: float) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
