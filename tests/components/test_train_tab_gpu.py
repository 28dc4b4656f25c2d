"""The Train tab and the Space's GPU: defaults prefilled for the detected GPU on page load,
QLoRA offered only on CUDA, and on ZeroGPU (a stand-in `spaces`) the estimate and Start say
how much of the run one GPU call trains, or refuse with the reason and the alternative."""

import gradio as gr
import pytest

from components import train_format as tf
from components import train_tab as tt
from tests.spaces_stand_in import use_zero_gpu
from training import zerogpu
from training.backends import preflight
from training.data import DataChoice, ReportSummary
from training.hardware import Hardware
from training.jobs.runner import JobRunner

STATS = {
    "max_length": 1024,
    "examples": 1000,
    "total_training_tokens": 200_000,
    "tokens_per_example": {"mean": 200.0, "max": 800},
}
CHECKED = ReportSummary(ok=True, format="messages", rows=1000, errors=0, warnings=0, stats=STATS)
DATASET = DataChoice(path="/data/chats.jsonl", format="messages", summary=CHECKED)


def config(**changes) -> list:
    values = [changes.get(name, getattr(tf.DEFAULTS, name)) for name in tf.HYPER]
    return ["a/m", False, DATASET, "lora", "lora", *values]


@pytest.fixture
def runner():
    r = JobRunner(device="cpu", worker_cmd=["/bin/true"])  # never started: jobs stay queued
    yield r
    r.shutdown()


def test_page_load_prefills_the_gpus_defaults_and_offers_qlora_only_on_cuda(monkeypatch):
    l4 = Hardware("cuda", "NVIDIA L4", 22.0, "bf16")
    monkeypatch.setattr(tt, "local_hardware", lambda: l4)
    method, preset, batch, accum, length = tt.on_hardware()
    assert [value for _, value in method.choices] == ["lora", "qlora"]
    assert preset.info.endswith("For this NVIDIA L4: t4-l4.")
    assert (batch, accum, length) == (8, 2, 1024)
    monkeypatch.setattr(tt, "local_hardware", lambda: Hardware("cpu", "CPU (2 cores)", 24, "fp32"))
    method, preset, *values = tt.on_hardware()
    assert [value for _, value in method.choices] == ["lora"]  # no 4-bit kernels off CUDA
    assert preset.info.endswith("For this CPU (2 cores): cpu-demo.")
    assert all(isinstance(v, type(gr.skip())) for v in values)  # RunConfig's defaults stay


def test_on_zero_gpu_the_estimate_and_start_say_what_one_call_trains(monkeypatch, runner):
    use_zero_gpu(monkeypatch)
    monkeypatch.setattr(zerogpu, "model_billions", lambda model: 1.7)
    monkeypatch.setattr(preflight, "load_model_config", lambda model: preflight.SMOLLM2_135M)
    estimate = tt.on_estimate(*config(epochs=20.0))
    assert "NVIDIA H200 (ZeroGPU slice)" in estimate  # the GPU a call gets, not this machine's
    assert "ℹ️ On ZeroGPU a run is one GPU call of at most 120 s: about" in estimate
    assert "of this run's 2,260 steps fit" in estimate
    message, job_id = tt.on_start(runner, "alice", "", *config(epochs=20.0))
    assert job_id in message and "of this run's 2,260 steps fit" in message
    short = tt.on_estimate(*config(max_steps=20))
    assert "this one needs about" in short


def test_on_zero_gpu_a_model_too_big_for_one_call_is_refused(monkeypatch, runner):
    use_zero_gpu(monkeypatch)
    monkeypatch.setattr(zerogpu, "model_billions", lambda model: 30.0)
    assert "⛔ On ZeroGPU a run is one GPU call" in tt.on_estimate(*config())
    message, _ = tt.on_start(runner, "alice", "", *config())
    assert message.startswith("⚠️ On ZeroGPU") and "dedicated GPU" in message
    assert runner.jobs_for("alice") == []
