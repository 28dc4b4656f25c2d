"""What this machine can train with: device, memory and numeric precision.

Shared by the worker (which precision and whether to checkpoint activations) and by the
Train tab's pre-flight estimate (does the model fit). Precision follows the hardware, never
TRL's defaults (SFTConfig turns bf16 on everywhere): bf16 where the GPU supports it
(Ampere and newer: A10G, L4, A100, H100), fp16 on older GPUs (T4, V100), fp32 on CPU, where
mixed precision brings no speed and bf16 autocast costs accuracy. `defaults_for` gives the
Train tab the batch size, accumulation and max length that suit the GPU's memory, and
`suggested_preset` the configs/ preset for its size.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda", "mps" or "cpu"
    name: str  # e.g. "NVIDIA L4", or "CPU (2 cores)"
    memory_gb: float  # device memory (GPU) or total RAM (CPU); 0 when unknown
    precision: str  # "bf16", "fp16" or "fp32"
    count: int = 1  # GPUs visible (1 for CPU)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    @property
    def activation_checkpointing(self) -> bool:
        """Recompute activations in the backward pass to save memory: worth it on a GPU,
        where memory is the limit; on CPU RAM is plentiful and the ~20 % slow-down is not."""
        return self.cuda

    @property
    def supports_4bit(self) -> bool:
        """bitsandbytes 4-bit (QLoRA) kernels exist for CUDA only."""
        return self.cuda

    def describe(self) -> str:
        memory = f", {self.memory_gb:.0f} GB" if self.memory_gb else ""
        return f"{self.name}{memory}, {self.precision}"


# Train tab defaults by GPU memory class, in GiB as torch reports it (a 16 GB T4 shows ~14.7,
# an 80 GB A100 ~79, ZeroGPU's H200 slice 69.5). Sized for a ~1.7 B model in 16-bit LoRA
# (SmolLM2-1.7B, the a10g-a100 preset's): 3.2 GB of weights + 0.3 adapter and optimizer + 1
# overhead, and ~0.7 MB per token in flight (training/backends/preflight.py's memory_parts:
# activations with checkpointing ~0.23, logits over a 49 k vocabulary ~0.47). Every class
# keeps 16 sequences per optimizer step (batch x accumulation); a run fits when its peak is
# under 90 % of the memory, and the rest is room for a bigger model:
#   >= 64 GiB  16 x 2,048 = 32 k tokens in flight -> ~27 GB peak of 71 usable
#   >= 36 GiB   8 x 2,048 = 16 k                  -> ~16 GB of 35
#   >= 20 GiB   8 x 1,024 =  8 k                  -> ~10 GB of 19
#   >= 12 GiB   4 x 1,024 =  4 k                  ->  ~7 GB of 13
#   smaller     2 x   512 =  1 k                  ->  ~5 GB
GPU_DEFAULTS = (  # (at least GiB, preset, batch_size, grad_accum, max_length)
    (64, "a10g-a100", 16, 1, 2048),  # A100 80 GB, H100, H200
    (36, "a10g-a100", 8, 2, 2048),  # A100 40 GB, L40S (48)
    (20, "t4-l4", 8, 2, 1024),  # L4, A10G (24)
    (12, "t4-l4", 4, 4, 1024),  # T4 (16)
    (0, "t4-l4", 2, 8, 512),  # smaller GPUs
)
CPU_PRESET = "cpu-demo"  # the CPU keeps RunConfig's defaults: the bundled model is small


def defaults_for(hw: Hardware) -> dict:
    """RunConfig field overrides that suit this hardware: batch_size, grad_accum and
    max_length by GPU memory class; nothing on a CPU or an Apple GPU."""
    if not hw.cuda:
        return {}
    _, _, batch, accum, length = next(row for row in GPU_DEFAULTS if hw.memory_gb >= row[0])
    return {"batch_size": batch, "grad_accum": accum, "max_length": length}


def suggested_preset(hw: Hardware) -> str:
    """The configs/*.yaml preset (its stem) made for this hardware's size."""
    if not hw.cuda:
        return CPU_PRESET
    return next(row for row in GPU_DEFAULTS if hw.memory_gb >= row[0])[1]


def _ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 0.0


def own_peak_rss_mb() -> float:
    """This process's own peak resident memory in MiB (VmHWM). Not ru_maxrss: a child's
    ru_maxrss keeps the parent's peak across fork and exec, so a test run's big pytest
    process would be counted as the child's."""
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read())[1]) / 1024
    except (OSError, TypeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def detect() -> Hardware:
    """The device training will use. Honours accelerate's `--cpu` (ACCELERATE_USE_CPU)."""
    import torch

    force_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if torch.cuda.is_available() and not force_cpu:
        props = torch.cuda.get_device_properties(0)
        # T4 / V100 (compute capability < 8) lack bf16 tensor cores: fp16 with loss scaling.
        precision = "bf16" if torch.cuda.is_bf16_supported() and props.major >= 8 else "fp16"
        return Hardware(
            "cuda", props.name, props.total_memory / 2**30, precision, torch.cuda.device_count()
        )
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() and not force_cpu:
        return Hardware("mps", "Apple GPU (MPS)", _ram_gb(), "fp32")
    return Hardware("cpu", f"CPU ({os.cpu_count()} cores)", _ram_gb(), "fp32")


def torch_dtype(precision: str):
    """The dtype to load base weights in for a given precision."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def use_cpu_when_distributed_without_gpu() -> None:
    """Data parallel on CPU. accelerate 1.15's `launch --cpu` starts one process unless MPI
    is set up; `launch --multi_gpu --num_processes N` (torchrun) starts N, but the Trainer
    only runs them as CPU DDP (gloo) when ACCELERATE_USE_CPU is set. Call before the
    Trainer's arguments or accelerate's state exist."""
    import torch

    if world_size() > 1 and not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")


def default_device() -> str:
    """The queue's device key: 'cuda:0' when an NVIDIA GPU is visible, else 'cpu'. Cheap
    (no torch import, the app calls it at start-up); the worker picks its own precision."""
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return "cpu"
    return "cuda:0" if Path("/dev/nvidia0").exists() else "cpu"
