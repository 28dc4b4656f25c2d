"""Precision and memory-saving choices follow the hardware, never TRL's defaults."""

from types import SimpleNamespace

import pytest
import torch

from training import hardware
from training.config import RunConfig


def fake_gpu(monkeypatch, name: str, major: int, bf16: bool):
    props = SimpleNamespace(name=name, major=major, total_memory=16 * 2**30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)


@pytest.mark.parametrize(
    ("name", "major", "bf16", "precision"),
    [
        ("Tesla T4", 7, True, "fp16"),  # torch reports emulated bf16 on T4: not used
        ("NVIDIA L4", 8, True, "bf16"),
        ("NVIDIA A100-SXM4-80GB", 8, True, "bf16"),
    ],
)
def test_gpu_precision(monkeypatch, name, major, bf16, precision):
    fake_gpu(monkeypatch, name, major, bf16)
    hw = hardware.detect()
    assert (hw.device, hw.precision, hw.name) == ("cuda", precision, name)
    assert hw.activation_checkpointing and hw.supports_4bit
    assert (
        hardware.torch_dtype(hw.precision)
        == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    )


def test_cpu_is_fp32_without_checkpointing_or_4bit(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    hw = hardware.detect()
    assert (hw.device, hw.precision) == ("cpu", "fp32")
    assert not hw.activation_checkpointing and not hw.supports_4bit
    assert hardware.torch_dtype("fp32") == torch.float32


def test_accelerate_cpu_flag_wins_over_a_gpu(monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA L4", 8, True)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    assert hardware.detect().device == "cpu"


def test_trainer_settings_are_explicit(tmp_path):
    """SFTConfig defaults bf16=True, lr 2e-5 and activation checkpointing on: all overridden.
    (GPU precisions cannot be built here: SFTConfig itself checks the device.)"""
    from training.backends.lora import sft_config

    hw = hardware.Hardware("cpu", "CPU", 24, "fp32")
    cfg = RunConfig(learning_rate=3e-4, eval_steps=10, save_steps=20)
    args = sft_config(cfg, tmp_path, hw, has_val=True)
    assert (args.bf16, args.fp16, args.activation_checkpointing) == (False, False, False)
    assert args.learning_rate == 3e-4 and args.lr_scheduler_type == "cosine"
    assert args.eval_steps == 10 and args.save_steps == 20 and args.logging_steps == 5
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 2
    assert args.report_to == [] and not args.load_best_model_at_end
    no_val = sft_config(cfg, tmp_path, hw, has_val=False)
    assert no_val.eval_strategy == "no"


def test_qlora_refused_without_cuda():
    from training.backends.lora import Refused, check_supported

    with pytest.raises(Refused, match="CUDA"):
        check_supported(RunConfig(method="qlora"), hardware.Hardware("cpu", "CPU", 24, "fp32"))
    check_supported(RunConfig(method="lora"), hardware.Hardware("cpu", "CPU", 24, "fp32"))


# SmolLM2-1.7B-Instruct's config.json: the model the defaults table is sized for.
SMOLLM2_1_7B = {
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 24,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 49152,
    "tie_word_embeddings": True,
}
GPUS = [  # name, GiB as torch reports it, precision, batch, accumulation, max length, preset
    ("Tesla T4", 14.7, "fp16", 4, 4, 1024, "t4-l4"),
    ("NVIDIA L4", 22.0, "bf16", 8, 2, 1024, "t4-l4"),
    ("NVIDIA A10G", 22.2, "bf16", 8, 2, 1024, "t4-l4"),
    ("NVIDIA L40S", 44.4, "bf16", 8, 2, 2048, "a10g-a100"),
    ("NVIDIA A100-SXM4-40GB", 39.4, "bf16", 8, 2, 2048, "a10g-a100"),
    ("NVIDIA A100-SXM4-80GB", 79.2, "bf16", 16, 1, 2048, "a10g-a100"),
    ("NVIDIA H100 80GB HBM3", 79.1, "bf16", 16, 1, 2048, "a10g-a100"),
]


@pytest.mark.parametrize(("name", "gb", "precision", "batch", "accum", "length", "preset"), GPUS)
def test_defaults_follow_the_gpu_and_fit_it(name, gb, precision, batch, accum, length, preset):
    """Each GPU's defaults, and a 1.7 B model at full length with them fits its memory by the
    pre-flight estimate (the arithmetic in hardware.py's table)."""
    from training.backends.preflight import estimate

    hw = hardware.Hardware("cuda", name, gb, precision)
    defaults = hardware.defaults_for(hw)
    assert defaults == {"batch_size": batch, "grad_accum": accum, "max_length": length}
    assert hardware.suggested_preset(hw) == preset
    cfg = RunConfig(**defaults)
    stats = {"examples": 1000, "tokens_per_example": {"mean": length, "max": length}}
    assert estimate(cfg, stats, hw, SMOLLM2_1_7B).fits
    assert batch * accum == 16  # the same effective batch everywhere


def test_the_cpu_keeps_runconfig_defaults_and_every_preset_exists():
    from training.paths import REPO_ROOT

    cpu = hardware.Hardware("cpu", "CPU (2 cores)", 24, "fp32")
    assert hardware.defaults_for(cpu) == {} and hardware.suggested_preset(cpu) == "cpu-demo"
    assert hardware.defaults_for(hardware.Hardware("mps", "Apple GPU (MPS)", 16, "fp32")) == {}
    presets = {row[1] for row in hardware.GPU_DEFAULTS} | {hardware.CPU_PRESET}
    assert all((REPO_ROOT / "configs" / f"{p}.yaml").is_file() for p in presets)
