"""Pre-flight estimate against numbers worked out by hand (see the comments), and against
the peak memory of real runs (the tiny model here, SmolLM2 in a slow test)."""

import json
import math
import subprocess
import sys

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
    # Largest batch: no percentiles, so both rows count as the longest, 2 x 60 tokens. fp32
    # weights 102,784 x 4; adapter 32,768 x 16; each token keeps (16 x 64 + 5 x 128) x 2
    # layers values of 4 bytes, x 1.45 on CPU; the LM head's 10 fp32 tiles of 120 x 449.
    assert pf.largest_batch == 120
    parts = {k: round(v * GB) for k, v in pf.memory_gb.items()}
    assert parts == {
        "weights": 411_136,
        "adapter + optimizer": 524_288,
        "activations": round(120 * 3328 * 4 * 1.45),
        "LM head": 120 * 449 * 4 * 10,
        "runtime": GB // 2,
    }
    assert pf.fits is True and pf.tight is False
    assert pf.peak_gb == pytest.approx(0.5 + 5_406_912 / GB)
    # 12 tokens/s per billion per core x 2 cores / 0.000102784 B.
    speed = 24 / 102_784e-9
    # Start: worker 10 s + data 5 s + 4,000 tokens / 20,000 per s + weights + Trainer 3 s.
    assert pf.startup_seconds == pytest.approx(18.2 + 411_136 / GB * 4)
    # 2 evaluations (steps 50 and 69) of the 10 held-out rows x 40 tokens, a third of the work.
    evaluating = 2 * 10 * 40 / (3 * speed)
    assert pf.seconds == pytest.approx(pf.startup_seconds + 10800 / speed + evaluating + 5)
    text = "\n".join(pf.lines)
    assert "Trains 32.8 K of 102.8 K parameters (31.88 %)" in text
    assert "90 training examples, 3.6 K tokens per epoch; 10.8 K tokens in 69" in text
    assert "Fits in this CPU's 16 GB RAM: est. 0.5 GB peak (largest batch 120 tokens)." in text
    assert "Estimated time: about 23 s in all: about 18 s to start (load the model" in text


def test_smollm2_on_a_t4_uses_checkpointing_fp16_and_the_t4_speed():
    cfg = RunConfig(model=DEFAULT_MODEL, batch_size=4, max_length=1024, max_steps=100)
    stats = {"examples": 1000, "tokens_per_example": {"mean": 2000.0, "max": 5000}}
    pf = estimate(cfg, stats, hardware=T4, model_config=SMOLLM2_135M)
    # Checkpointing keeps 576 x 30 layer inputs + one layer (16 x 576 + 5 x 1536 = 16,896).
    assert pf.largest_batch == 4 * 1024  # every row is cut at max length
    assert pf.memory_gb["activations"] * GB == pytest.approx(4096 * (17_280 + 16_896) * 2)
    assert pf.memory_gb["weights"] * GB == pytest.approx(134_515_008 * 2)
    # The LM head: a forward and a backward fp16 tile of 4,096 tokens x 32,768 entries.
    assert pf.memory_gb["LM head"] * GB == 4096 * 32768 * 2 * 2
    assert pf.peak_gb == pytest.approx(1 + 1_164_022_400 / GB)
    # max_steps: 100 x 4 x 2 sequences x the clipped mean (1,024, not the 2,000 of the data).
    assert pf.total_tokens == 100 * 8 * 1024
    speed = 2200 / 0.5  # 135 M runs at the 0.5 B pace
    # Start: 10 + 5 + 1,024,000 data tokens / 20,000 + 0.25 GB x 4 + 3; evaluations at steps
    # 50 and 100 of the 100 held-out rows; the adapter saved.
    start = 10 + 5 + 51.2 + 134_515_008 * 2 / GB * 4 + 3
    evaluating = 2 * 100 * 1024 / (3 * speed)
    assert pf.seconds == pytest.approx(start + 819_200 / speed + evaluating + 5)
    assert "Fits in this 15 GB Tesla T4: est. 2.1 GB peak (largest batch 4,096 tokens)." in pf.lines
    assert "T4 table row" in pf.lines[-1] and "about 5 min in all" in pf.lines[-1]


def test_the_largest_batch_is_the_one_the_trainer_runs():
    """Sized from the longest row and the 90th percentile, cut into sub-batches exactly as
    training/backends/batching.py cuts a batch of those lengths."""
    from training.backends.batching import SPLIT_OVERHEAD_TOKENS, plan_sub_batches

    assert preflight.SPLIT_OVERHEAD_TOKENS == SPLIT_OVERHEAD_TOKENS
    for device, cuda in (("cpu", False), ("cuda", True)):
        for batch in (1, 2, 4, 8, 16):
            for longest, p90 in ((282, 64), (284, 282), (200, 64), (60, 59), (1024, 900)):
                lengths = [longest] + [p90] * (batch - 1)
                groups = plan_sub_batches(lengths, SPLIT_OVERHEAD_TOKENS[device])
                worst = max(len(g) * max(lengths[i] for i in g) for g in groups)
                stats = {"tokens_per_example": {"max": longest, "p90": p90}}
                cfg = RunConfig(batch_size=batch, max_length=2048)
                assert preflight.largest_batch(cfg, stats, cuda) == worst
    # Cut at max length; without the lengths nothing is known.
    stats = {"tokens_per_example": {"max": 5000, "p90": 4000}}
    assert preflight.largest_batch(RunConfig(batch_size=4, max_length=512), stats, False) == 2048
    assert preflight.largest_batch(RunConfig(), {}, False) is None


def test_a_short_longest_row_is_sized_as_such_not_as_max_length():
    """The report that prompted this: max length 1,024, the longest row 258 tokens."""
    stats = {"examples": 500, "tokens_per_example": {"mean": 120.0, "p90": 180, "max": 258}}
    cfg = RunConfig(max_length=1024)  # batch 4
    pf = estimate(cfg, stats, CPU, SMOLLM2_135M)
    assert pf.largest_batch == max(258, 3 * 180)  # the long row apart, its companions together
    unchecked = estimate(cfg, None, CPU, SMOLLM2_135M)
    assert unchecked.largest_batch is None and unchecked.peak_gb > 2 * pf.peak_gb
    assert "sized for full batches of max length 1,024" in unchecked.lines[-1]


def test_on_cpu_a_run_near_the_free_ram_is_tight_not_too_big():
    stats = {"examples": 64, "tokens_per_example": {"mean": 284.0, "p90": 284, "max": 284}}
    cfg = RunConfig(max_steps=3)  # batch 4 x 284 tokens: ~5.6 GB on SmolLM2 in fp32
    roomy = estimate(cfg, stats, CPU, SMOLLM2_135M, available_gb=12.0)
    assert roomy.fits and not roomy.tight and 5 < roomy.peak_gb < 6
    assert f"Fits in this CPU's 16 GB RAM: est. {roomy.peak_gb:.1f} GB peak" in roomy.lines[2]
    assert "; 12.0 GB free now." in roomy.lines[2]
    # Other programs hold most of the RAM now: it may fit once they let go.
    busy = estimate(cfg, stats, CPU, SMOLLM2_135M, available_gb=4.0)
    assert busy.fits and busy.tight
    assert busy.lines[2].startswith("Tight for this CPU's 16 GB RAM: est.")
    assert "4.0 GB is free now. Close other programs" in busy.lines[2]
    small = Hardware("cpu", "CPU (2 cores)", 4.0, "fp32")
    too_big = estimate(cfg, stats, small, SMOLLM2_135M, available_gb=3.0)
    assert too_big.fits is False and too_big.lines[2].startswith("Too big for this CPU's 4 GB RAM")
    # A GPU near its edge: tight, with the ways to make room.
    t4 = estimate(RunConfig(batch_size=176, max_length=1024), None, T4, SMOLLM2_135M)
    assert t4.fits and t4.tight and t4.lines[-1].startswith("Tight for this 15 GB Tesla T4")


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


def test_time_left_starts_from_the_estimate_then_follows_the_measured_steps(tmp_path, monkeypatch):
    """status.json's eta: the pre-flight's seconds per step until the first step has ended,
    then the measured ones (the first, a warm-up, only until there is a second)."""
    from types import SimpleNamespace

    from training.backends import callbacks
    from training.jobs import rundir

    clock = [100.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
    rundir.write_status(tmp_path, "running", started=0.0)
    cb = callbacks.ProgressCallback(tmp_path, step_seconds=2.0, tail_seconds=5.0)
    state = SimpleNamespace(global_step=0, max_steps=10, is_world_process_zero=True)
    args = control = None
    cb.on_train_begin(args, state, control)
    assert rundir.read_status(tmp_path)["eta"] == 10 * 2.0 + 5  # estimated: 2 s a step
    seen = []
    for seconds in (30, 10, 10, 16):  # the first step warms up
        cb.on_step_begin(args, state, control)
        clock[0] += seconds
        state.global_step += 1
        cb.on_step_end(args, state, control)
        cb.on_step_begin(args, state, control)
        status = rundir.read_status(tmp_path)
        seen.append((status["phase"], status["eta"]))
    assert seen == [
        ("step 2 of 10", 9 * 30 + 5),  # one step measured, warm-up and all
        ("step 3 of 10", 8 * 10 + 5),  # from the end of the first step on
        ("step 4 of 10", 7 * 10 + 5),
        ("step 5 of 10", 6 * 12 + 5),
    ]


# --- calibration: the estimate against a measured peak --------------------------------------
# The worker trains in a child process; afterwards it reports its peak: RSS on CPU (what the
# RAM must hold), torch.cuda.max_memory_allocated on CUDA (the estimate's runtime part, the
# CUDA context and allocator slack, is left out of that comparison).
MEASURE = """\
import json, sys
import torch
from training.hardware import own_peak_rss_mb
from training.jobs import worker
code = worker.main(sys.argv[1:])
print(json.dumps({
    "code": code,
    "rss_gb": own_peak_rss_mb() / 1024,
    "cuda_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
}))
"""
BAND = (0.7, 1.5)  # estimate / measured peak; measured 2026-12: 0.92-1.04 on CPU


def measure_peak(tmp_path, model: str, words: list[int], batch: int, max_length: int):
    """(estimate, measured GB, estimate's comparable GB) for one epoch of rows with these
    numbers of words in their question: every row, the longest included, is trained."""
    from training.data import validate_file
    from training.hardware import detect
    from training.models.catalogue import load_tokenizer
    from training.paths import REPO_ROOT

    data = tmp_path / "rows.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": " ".join(f"word{j % 17}" for j in range(n))},
                {"role": "assistant", "content": f"Answer {i} is fine."},
            ]
        }
        for i, n in enumerate(words)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = RunConfig(
        model=model,
        data=str(data),
        batch_size=batch,
        grad_accum=1,
        max_length=max_length,
        max_steps=math.ceil(len(words) / batch),
        validation_split=0.0,
        save_steps=0,
        logging_steps=1,
    )
    cfg.to_yaml(tmp_path / "config.yaml")
    report = validate_file(cfg.data, tokenizer=load_tokenizer(model, False), max_length=max_length)
    hw = detect()
    pf = estimate(cfg, report.stats, hw)
    argv = [str(tmp_path / "config.yaml"), "--run-dir", str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if hw.cuda:
        return pf, result["cuda_gb"], pf.peak_gb - pf.memory_gb["runtime"]
    return pf, result["rss_gb"], pf.peak_gb


def test_the_estimate_is_near_the_measured_peak_on_the_tiny_model(tmp_path, tiny_model_dir):
    pf, measured, estimated = measure_peak(tmp_path, str(tiny_model_dir), [60] * 8, 4, 512)
    print(f"\ntiny: largest batch {pf.largest_batch}, est {estimated:.2f} GB, peak {measured:.2f}")
    assert BAND[0] <= estimated / measured <= BAND[1], (estimated, measured, pf.memory_gb)


@pytest.mark.slow
@pytest.mark.parametrize(
    "words",
    [[100] * 8, [100] + [10] * 7],  # rows of ~284 tokens; one such row among ~62-token ones
    ids=["even", "one-long-row"],
)
def test_the_estimate_is_near_the_measured_peak_on_smollm2(tmp_path, words):
    from training.models.bundled import prepare_bundled

    prepare_bundled()  # convert the bundled GGUF into this test's home once (~30 s)
    pf, measured, estimated = measure_peak(tmp_path, DEFAULT_MODEL, words, 4, 1024)
    print(
        f"\nSmolLM2: largest batch {pf.largest_batch}, est {estimated:.2f} GB, "
        f"peak {measured:.2f} GB ({estimated / measured:.2f}x)"
    )
    assert BAND[0] <= estimated / measured <= BAND[1], (estimated, measured, pf.memory_gb)
