"""Pre-flight estimate: before Start, how big the run is, whether it fits, how long it takes.

Everything comes from the model's config.json (no weights loaded), the data report's token
statistics and the detected hardware. The numbers are estimates to decide with (does it fit
a 16 GB T4? minutes or hours?), each built from a formula written out below and checked
against measured runs (tests/training/backends/test_preflight.py measures the peak again).
The worker uses the same formulas for a run's first time left (training/backends/lora.py).

Its length: each formula sits next to the measurements it was fitted to.
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
# Time around the steps, from the worker's "[phase] ... at N s" log lines (2026-12, SmolLM2-135M
# on the 107-row JSON-answers sample, 2 CPU cores busy with other work): 13 s from start to
# "loading the model" (imports, tokenizer, data checked and encoded), 6 s to the first step
# (weights, Trainer); these constants give 15 and 5 s. A GPU machine's disk and cores are no
# slower; a download from the Hub comes on top.
STARTUP_S = 10.0  # a fresh worker: Python, torch, transformers, TRL and PEFT imports
PREPARE_S = 5.0  # the tokenizer loaded, the data read and split
PREPARE_TOKENS_PER_S = 20_000  # the data is tokenised twice: checked, then encoded
LOAD_S_PER_GB = 4.0  # weights from a local folder or the Hub cache, at the training precision
TRAINER_S = 3.0  # TRL's dataset preparation and the Trainer, after the weights
SAVE_S = 5.0  # the final adapter, after the last step

# Memory. Calibrated against measured peaks (2026-12, tests/training/backends/test_preflight.py
# repeats it): on CPU the worker's peak RSS, on CUDA torch.cuda.max_memory_allocated + overhead.
# Activations: the values kept per token per layer for the backward pass (norms, q/k/v,
# attention output, residuals, the MLP's gate/up/activation/product, the dropped-out copies of
# each LoRA input: ~16 h + 5 i, which autograd's saved tensors confirm within 3 % on SmolLM2).
# TRL's fused LM head scores the vocabulary in tiles of at most 4,096 tokens x 32,768 entries
# (trl/kernels/chunked_logprob.py), never the full logits: on CUDA a Triton kernel folds each
# tile in place (a forward and a backward tile); elsewhere plain torch ops make ~10 fp32
# temporaries of a tile. On CPU the process also keeps the backward pass's gradients and the
# blocks glibc's allocator holds after freeing them: fitted to the peak RSS of SmolLM2-135M (30
# layers) and a 4-layer h 1,024 model, same vocabulary, each at 282 and 1,136 tokens in the
# largest pass: 4.0 and 1.9 MiB per token, i.e. 1.45 x the activations + 10 tiles.
CPU_ACTIVATION_FACTOR = 1.45
HEAD_TILE_TOKENS, HEAD_TILE_VOCAB = 4096, 32768
HEAD_TILES = {"cuda": 2, "cpu": 10}
CPU_RUNTIME_GB = 0.5  # Python + torch + transformers + TRL + PEFT + datasets: 473 MiB RSS
GPU_OVERHEAD_GB = 1.0  # CUDA context (outside torch's allocator) and allocator slack
# training/backends/batching.py's cost of one more forward pass, in padded tokens (kept equal
# by a test: importing batching here would load TRL into the app for an estimate).
SPLIT_OVERHEAD_TOKENS = {"cuda": 256, "cpu": 24}
FITS, TIGHT = 0.85, 1.0  # peak / memory: fits below 85 %; tight up to all of it


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
    largest_batch: int | None = None  # tokens in the largest forward pass
    device: str = ""  # e.g. "NVIDIA T4" or "CPU (2 cores)"
    device_gb: float = 0.0  # GPU memory, or the CPU's RAM
    available_gb: float | None = None  # CPU: RAM free now (it changes with other programs)
    fits: bool | None = None  # None: unknown; True also when tight
    tight: bool = False  # near the memory's edge: may run out (CPU: free some RAM first)
    seconds: float | None = None  # start to finish: loading, preparing, training, saving
    startup_seconds: float | None = None  # the part before the first step
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


def largest_batch(cfg: RunConfig, stats: dict, cuda: bool) -> int | None:
    """Tokens in the largest forward pass of a step, None without the data's lengths. Batches
    are drawn at random, so the worst one holds the longest row; its companions are counted at
    the 90th-percentile length. Each batch runs as unpadded sub-batches (batching.py): a row
    much longer than the rest goes alone, and then the companions make one pass together."""
    dist = stats.get("tokens_per_example") or {}
    if not dist.get("max"):
        return None
    longest = min(int(dist["max"]), cfg.max_length)
    others = min(int(dist.get("p90") or longest), longest)
    rest = cfg.batch_size - 1
    if rest * (longest - others) > SPLIT_OVERHEAD_TOKENS["cuda" if cuda else "cpu"]:
        return max(longest, rest * others)  # batching.plan_sub_batches splits it
    return cfg.batch_size * longest


def memory_parts(cfg, config, total, lora, hw, tokens: int) -> dict[str, float]:
    """Peak memory in GB by part: base weights at the training precision (QLoRA: linear
    layers in 4-bit NF4, ~0.53 byte with double quantisation, the rest 16-bit); adapter
    weights + gradients + Adam moments (fp32: 16 bytes per parameter); activations of the
    largest forward pass (`tokens`); the LM head's tiles; the runtime."""
    c = config.get("text_config", config)
    h, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    inter = c.get("intermediate_size") or 4 * h
    value = 4 if hw.precision == "fp32" else 2
    if cfg.method == "qlora":
        embed = vocab * h * (1 if c.get("tie_word_embeddings", True) else 2)
        weights = (total - embed) * 0.53 + embed * 2
    else:
        weights = total * value
    per_layer = 16 * h + 5 * inter
    # With checkpointing only each layer's input is kept, plus one layer recomputed at a time.
    kept = h * layers + per_layer if hw.activation_checkpointing else per_layer * layers
    activations = tokens * kept * value * (1 if hw.cuda else CPU_ACTIVATION_FACTOR)
    tile = min(tokens, HEAD_TILE_TOKENS) * min(vocab, HEAD_TILE_VOCAB)
    head = tile * (value * HEAD_TILES["cuda"] if hw.cuda else 4 * HEAD_TILES["cpu"])
    parts = {
        "weights": weights,
        "adapter + optimizer": lora * 16,
        "activations": activations,
        "LM head": head,
    }
    out = {k: v / GB for k, v in parts.items()}
    out["runtime"] = GPU_OVERHEAD_GB if hw.cuda else CPU_RUNTIME_GB
    return out


def startup_seconds(total_params: int, precision: str, rows: int, tokens: int) -> float:
    """From Start to the first step: a fresh worker, the data checked and encoded, the weights
    loaded at the training precision."""
    weights_gb = total_params * (4 if precision == "fp32" else 2) / GB
    preparing = PREPARE_S + tokens / PREPARE_TOKENS_PER_S
    return STARTUP_S + preparing + weights_gb * LOAD_S_PER_GB + TRAINER_S


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
    """The detected device (for a CPU, its RAM installed: estimate() reads the RAM free now
    itself). On ZeroGPU the GPU a call gets (the app process itself never touches CUDA there)."""
    from training import zerogpu
    from training.hardware import detect

    return zerogpu.HARDWARE if zerogpu.active() else detect()


def estimate(
    cfg: RunConfig,
    report_stats: dict | None,
    hardware=None,
    model_config: dict | None = None,
    available_gb: float | None = None,
) -> Preflight:
    """Sizes, memory fit and duration of a run; `lines` says it in words. Never raises
    for a model or data problem: the problem becomes a line. available_gb: a CPU's RAM free
    now (default: read it when the hardware is this machine's, else all of its RAM)."""
    hw = hardware or local_hardware()
    if not hw.cuda and available_gb is None and hardware is None:
        available_gb = available_ram_gb()
    pf = Preflight(device=hw.name, device_gb=hw.memory_gb, available_gb=available_gb)
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
    stats = report_stats or {}
    train, mean, _, exact = data_figures(cfg, stats)
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
    pf.largest_batch = largest_batch(cfg, stats, hw.cuda)
    tokens = pf.largest_batch or cfg.batch_size * cfg.max_length
    pf.memory_gb = memory_parts(cfg, config, total, lora, hw, tokens)
    pf.peak_gb = sum(pf.memory_gb.values())
    pf.lines.append(_fit_line(pf, hw, cfg, tokens))
    if pf.total_tokens:
        speed, row = tokens_per_second(hw, total)
        rows = int(stats.get("examples") or 0)
        pf.startup_seconds = startup_seconds(total, hw.precision, rows, round(rows * mean))
        evals = _evaluations(cfg, pf.steps, rows - train)
        # A held-out pass is a forward only: about a third of a training step's work.
        evaluating = evals * (rows - train) * mean / (3 * speed)
        training = pf.total_tokens / speed
        pf.seconds = pf.startup_seconds + training + evaluating + SAVE_S
        checks = f", {_duration(evaluating)} of evaluation" if evals else ""
        pf.lines.append(
            f"Estimated time: {_duration(pf.seconds)} in all: {_duration(pf.startup_seconds)} "
            f"to start (load the model, prepare the data), {_duration(training)} of training at "
            f"~{speed:,.0f} tokens/s ({row}){checks}. Once it trains, the run's status rescales "
            "this from its measured speed."
        )
    return pf


def _evaluations(cfg: RunConfig, steps: int, held_out: int) -> int:
    """Held-out passes in a run: every eval_steps, and one at the end unless just done."""
    if held_out <= 0:
        return 0
    return math.ceil(steps / cfg.eval_steps) if cfg.eval_steps > 0 else 1


def _fit_line(pf: Preflight, hw, cfg: RunConfig, tokens: int) -> str:
    if not pf.device_gb:
        return f"Estimated peak memory {pf.peak_gb:.1f} GB ({hw.name}: memory size unknown)."
    peak = f"est. {pf.peak_gb:.1f} GB peak"
    if pf.largest_batch:
        peak += f" (largest batch {tokens:,} tokens)"
    else:
        peak += (
            f" (sized for full batches of max length {cfg.max_length:,}: check a dataset "
            "for its real lengths)"
        )
    tips = []
    parts = pf.memory_gb
    if parts["activations"] + parts["LM head"] > parts["weights"]:
        tips.append(f"a shorter max length (the largest batch now has {tokens:,} tokens)")
        if cfg.batch_size > 1:
            half = cfg.batch_size // 2
            tips.append(
                f"batch size {half} with gradient accumulation {cfg.grad_accum * 2} "
                "(same effective batch)"
            )
    if hw.cuda and cfg.method != "qlora":
        tips.append("QLoRA (4-bit base weights)")
    tips.append("a smaller model")
    tips = ", or ".join(tips)
    if hw.cuda:
        where, free = f"this {pf.device_gb:.0f} GB {hw.name}", pf.device_gb
    else:  # the RAM free now moves with other programs: near it the run is tight, not too big
        where = f"this CPU's {pf.device_gb:.0f} GB RAM"
        free = pf.device_gb if pf.available_gb is None else min(pf.available_gb, pf.device_gb)
    pf.fits = pf.peak_gb <= TIGHT * pf.device_gb
    pf.tight = pf.fits and pf.peak_gb > FITS * free
    if not pf.fits:
        return f"Too big for {where}: {peak}. Try {tips}."
    if not pf.tight:
        now = "" if hw.cuda or pf.available_gb is None else f"; {free:.1f} GB free now"
        return f"Fits in {where}: {peak}{now}."
    if hw.cuda:
        return f"Tight for {where}: {peak}; it may run out of memory. To be safe, try {tips}."
    return (
        f"Tight for {where}: {peak}, and {free:.1f} GB is free now. Close other programs "
        f"before Start, or try {tips}."
    )


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
