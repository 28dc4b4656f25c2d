"""Pre-flight estimate against numbers worked out by hand (see the comments)."""

import pytest

from training.backends import preflight
from training.backends.preflight import SMOLLM2_135M, count_params, estimate
from training.config import DEFAULT_MODEL, RunConfig
from training.hardware import Hardware

CPU = Hardware("cpu", "CPU (2 cores)", 16.0, "fp32")
T4 = Hardware("cuda", "Tesla T4", 15.0, "fp16")
GB = 2**30


def test_tiny_model_parameters_by_hand(tiny_model_dir):
    cfg = RunConfig(model=str(tiny_model_dir))
    config = preflight.load_model_config(cfg.model)
    assert (config["hidden_size"], config["vocab_size"]) == (64, 449)
    # Per layer: q 64x64 + k 64x32 + v 64x32 + o 64x64 + 3 MLP 64x128 = 36,864, norms 128;
    # x 2 layers = 73,984; tied embedding 449 x 64 = 28,736; final norm 64.
    assert count_params(config, "all-linear", 16)[0] == 73_984 + 28_736 + 64 == 102_784
    # LoRA r x (in + out): 16 x (128 + 96 + 96 + 128 + 192 x 3) = 16,384 per layer, x 2.
    assert count_params(config, "all-linear", 16)[1] == 32_768
    # q and v only at r 8: 8 x (128 + 96) x 2 layers.
    assert count_params(config, "q_proj, v_proj", 8)[1] == 3_584


def test_smollm2_counts_match_its_published_size():
    total, lora = count_params(SMOLLM2_135M, "all-linear", 16)
    assert total == 134_515_008  # 134.5 M, as the bundled model reports
    assert lora == 30 * 16 * (1152 + 768 + 768 + 1152 + 3 * 2112) == 4_884_480


def test_tiny_model_estimate_on_cpu_by_hand(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(preflight.os, "cpu_count", lambda: 2)
    cfg = RunConfig(model=str(tiny_model_dir), batch_size=2, grad_accum=2, max_length=64)
    stats = {
        "examples": 100,
        "max_length": 64,
        "total_training_tokens": 4000,
        "tokens_per_example": {"mean": 41.0, "max": 60},
    }
    pf = estimate(cfg, stats, hardware=CPU)
    # 10 % held out: 100 - ceil(10) = 90 rows; ceil(ceil(90 / 2) / 2) = 23 steps x 3 epochs.
    assert (pf.train_examples, pf.steps) == (90, 69)
    # Mean 4,000 / 100 = 40 tokens (exact, same max length): 3,600 per epoch, 10,800 total.
    assert (pf.tokens_per_epoch, pf.total_tokens) == (3600, 10800)
    # fp32 weights 102,784 x 4; adapter 32,768 x 16; longest batch 2 x 60 tokens keeps
    # (16 x 64 + 5 x 128) x 2 layers values each, 4 bytes; logits 120 x 449 x (4 + 8).
    parts = {k: round(v * GB) for k, v in pf.memory_gb.items()}
    assert parts == {
        "weights": 411_136,
        "adapter + optimizer": 524_288,
        "activations": 120 * 3328 * 4,
        "logits": 120 * 449 * 12,
        "overhead": GB,
    }
    assert pf.fits is True and pf.peak_gb == pytest.approx(1 + 3_179_424 / GB)
    # 12 tokens/s per billion per core x 2 cores / 0.000102784 B.
    assert pf.seconds == pytest.approx(10800 / (24 / 102_784e-9))
    text = "\n".join(pf.lines)
    assert "Trains 32.8 K of 102.8 K parameters (31.88 %)" in text
    assert "90 training examples, 3.6 K tokens per epoch; 10.8 K tokens in 69" in text
    assert "Fits in this CPU's free RAM (16 GB): est. 1.0 GB peak." in text


def test_smollm2_on_a_t4_uses_checkpointing_fp16_and_the_t4_speed():
    cfg = RunConfig(model=DEFAULT_MODEL, batch_size=4, max_length=1024, max_steps=100)
    stats = {"examples": 1000, "tokens_per_example": {"mean": 2000.0, "max": 5000}}
    pf = estimate(cfg, stats, hardware=T4, model_config=SMOLLM2_135M)
    # Checkpointing keeps 576 x 30 layer inputs + one layer (16 x 576 + 5 x 1536 = 16,896).
    assert pf.memory_gb["activations"] * GB == pytest.approx(4096 * (17_280 + 16_896) * 2)
    assert pf.memory_gb["weights"] * GB == pytest.approx(134_515_008 * 2)
    assert pf.peak_gb == pytest.approx(1 + 2_640_417_408 / GB)
    # max_steps: 100 x 4 x 2 sequences x the clipped mean (1,024, not the 2,000 of the data).
    assert pf.total_tokens == 100 * 8 * 1024
    assert pf.seconds == pytest.approx(819_200 / (2200 / 0.5))  # 135 M runs at the 0.5 B pace
    assert "Fits in this 15 GB Tesla T4: est. 3.5 GB peak." in pf.lines
    assert "T4 table row" in pf.lines[-1] and "min" in pf.lines[-1]


def test_too_big_gives_concrete_advice_and_qlora_needs_cuda():
    big = RunConfig(batch_size=64, max_length=4096, grad_accum=2)
    pf = estimate(big, None, hardware=T4, model_config=SMOLLM2_135M)
    assert pf.fits is False
    advice = next(line for line in pf.lines if line.startswith("Too big"))
    assert "shorter max length" in advice and "batch size 32 with gradient accumulation 4" in advice
    assert "QLoRA" in advice
    assert any("Check a dataset" in line for line in pf.lines) and pf.seconds is None

    qlora = RunConfig(method="qlora")
    lines = estimate(qlora, None, hardware=CPU, model_config=SMOLLM2_135M).lines
    assert lines[0].startswith("QLoRA (4-bit) needs a CUDA GPU")
    # 4-bit linear weights: (134.5 M - 28.3 M embedding) x 0.53 + embedding x 2 bytes.
    on_gpu = estimate(qlora, None, hardware=T4, model_config=SMOLLM2_135M)
    assert on_gpu.memory_gb["weights"] * GB == pytest.approx(106_203_456 * 0.53 + 28_311_552 * 2)


def test_unknown_model_becomes_a_line_not_an_exception():
    pf = estimate(RunConfig(model="/no/such/model"), {"examples": 10}, hardware=CPU)
    assert pf.total_params is None and "Cannot size the model" in pf.lines[-1]


def test_data_tab_summary_without_distributions_still_gives_tokens_and_steps():
    # The Data tab's state carries counts only, made at its own max length.
    summary = {"examples": 50, "total_training_tokens": 5000, "max_length": 1024}
    pf = estimate(RunConfig(batch_size=4, grad_accum=2), summary, CPU, SMOLLM2_135M)
    # 50 - 5 held out = 45 rows x 100 tokens; ceil(ceil(45 / 4) / 2) = 6 steps x 3 epochs.
    assert (pf.train_examples, pf.tokens_per_epoch, pf.steps) == (45, 4500, 18)
    assert "45 training examples, 4.5 K tokens per epoch" in pf.lines[1]
    shorter = estimate(RunConfig(max_length=64), summary, CPU, SMOLLM2_135M)
    assert shorter.tokens_per_epoch == 45 * 64 and "~2.9 K tokens" in shorter.lines[1]
    with_file = estimate(RunConfig(validation_file="val.jsonl"), summary, CPU, SMOLLM2_135M)
    assert with_file.train_examples == 50
