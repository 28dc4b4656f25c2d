"""Several GPUs: which engine a run gets, the shipped accelerate configs, FSDP on the tiny
model, and the job runner starting, cancelling and resuming a two-rank run.

No GPU here: the ranks are CPU processes (gloo), started exactly as on GPUs; the runner is
told it has two GPUs by an injected Hardware. FSDP runs through tests/fsdp_on_cpu.py, which
lifts accelerate's GPU-only check and nothing else."""

import os
from pathlib import Path

import pytest

from tests.assets import wait_for
from tests.training.jobs.test_worker import accelerate_launch, logits_change, write_chats
from training.config import RunConfig
from training.hardware import Hardware
from training.jobs import rundir
from training.jobs.launch import ACCELERATE_CONFIGS, Launch, command, plan
from training.jobs.runner import JobRunner

TWO_GPUS = Hardware("cuda", "NVIDIA L4", 22.0, "bf16", count=2)
BIG = {  # a 7 B Llama: 13.5 GB of bf16 weights, too much for one 22 GB L4 with activations
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
}


def test_one_gpu_or_a_cpu_runs_one_process():
    cfg = RunConfig(distributed="ddp")
    assert plan(cfg, Hardware("cpu", "CPU (2 cores)", 24.0, "fp32")).engine == "none"
    assert plan(cfg, Hardware("cuda", "NVIDIA L4", 22.0, "bf16", count=1)).engine == "none"
    assert plan(cfg, None) == Launch("none", 1, "one process (1 GPU visible)")
    assert plan(RunConfig(distributed="none"), TWO_GPUS).engine == "none"
    assert plan(RunConfig(num_processes=1), TWO_GPUS).engine == "none"


def test_auto_takes_ddp_when_the_run_fits_one_gpu_and_fsdp_when_it_does_not():
    cfg = RunConfig(model="tiny")
    assert plan(cfg, TWO_GPUS, fits_one=True) == Launch("ddp", 2, "ddp: the run fits one NVIDIA L4")
    assert plan(cfg, TWO_GPUS, fits_one=False).engine == "fsdp"
    assert plan(cfg, TWO_GPUS, fits_one=None).engine == "ddp"  # model unknown: the usual
    assert plan(RunConfig(method="qlora"), TWO_GPUS, fits_one=False).engine == "ddp"
    assert plan(RunConfig(distributed="fsdp"), TWO_GPUS, fits_one=True).engine == "fsdp"
    eight = Hardware("cuda", "NVIDIA H100", 79.0, "bf16", count=8)
    assert plan(RunConfig(num_processes=4), eight, fits_one=True).processes == 4
    assert plan(RunConfig(num_processes=16), eight, fits_one=True).processes == 8


def test_the_fsdp_choice_comes_from_the_preflight_estimate(monkeypatch):
    from training.backends import preflight
    from training.jobs.launch import fits_one_gpu

    monkeypatch.setattr(preflight, "load_model_config", lambda name: BIG)
    cfg = RunConfig(model="someone/llama-7b", batch_size=8, max_length=2048)
    assert fits_one_gpu(cfg, TWO_GPUS) is False
    assert plan(cfg, TWO_GPUS).engine == "fsdp"
    small = RunConfig(model="someone/llama-7b", batch_size=1, max_length=256)
    big_gpus = Hardware("cuda", "NVIDIA A100", 79.0, "bf16", count=2)
    assert plan(small, big_gpus).engine == "ddp"


def test_fsdp_with_qlora_is_refused_in_the_config():
    with pytest.raises(ValueError, match="FSDP with QLoRA"):
        RunConfig(method="qlora", distributed="fsdp")
    with pytest.raises(ValueError, match="distributed must be one of"):
        RunConfig(distributed="deepspeed")


def test_the_launch_command_uses_the_shipped_config():
    worker = ["python", "-m", "training", "train"]
    assert command(Launch("none", 1, ""), worker, ["c.yaml"]) == [*worker, "c.yaml"]
    argv = command(Launch("fsdp", 4, ""), worker, ["c.yaml", "--run-dir", "r"])
    assert argv[:3] == ["python", "-m", "accelerate.commands.launch"]
    assert argv[argv.index("--config_file") + 1] == str(ACCELERATE_CONFIGS / "fsdp.yaml")
    assert argv[argv.index("--num_processes") + 1] == "4"
    assert argv[-6:] == ["-m", "training", "train", "c.yaml", "--run-dir", "r"]


@pytest.mark.parametrize("name", ["ddp", "fsdp"])
def test_every_shipped_accelerate_config_loads_with_accelerate(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ACCELERATE_CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.value == {"ddp": "MULTI_GPU", "fsdp": "FSDP"}[name]
    assert config.mixed_precision == "no"  # the worker picks bf16 / fp16 for the GPU
    if name == "fsdp":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"


@pytest.mark.slow
def test_fsdp_trains_the_tiny_model_and_saves_a_whole_adapter(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    from tests.training.jobs.test_worker import make_config

    data = write_chats(tmp_path / "c.jsonl")
    cfg = make_config(tmp_path, tiny_model_dir, data, max_steps=2, save_steps=2, eval_steps=0)
    run = tmp_path / "run"
    proc = accelerate_launch("fsdp", cfg, run, module="tests.fsdp_on_cpu", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "world_size=2" in out and rundir.read_status(run)["status"] == "completed"
    assert [r["step"] for r in rundir.read_progress(run) if "loss" in r] == [1, 2]
    shards = list((run / "checkpoints" / "checkpoint-2").glob("pytorch_model_fsdp_0/*.distcp"))
    assert len(shards) == 2, "the checkpoint is sharded: one file per rank"
    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    assert len(weights) == 2 * 7 * 2  # lora_A and lora_B on 7 linear layers x 2 layers
    assert logits_change(tiny_model_dir, run / "adapter") > 0


def ranks_alive(run_dir: Path) -> list[int]:
    """Processes whose command line names the run (the launcher and every rank)."""
    alive = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and str(run_dir) in (proc / "cmdline").read_text():
                alive.append(int(proc.name))
        except (OSError, IndexError):
            continue
    return alive


@pytest.mark.slow
def test_the_runner_starts_two_ranks_cancel_stops_every_one_and_resume_continues(
    tmp_path, tiny_model_dir
):
    runner = JobRunner(device="cpu", tick_s=0.2, hardware=lambda: TWO_GPUS).start()
    try:
        cfg = RunConfig(
            model=str(tiny_model_dir),
            data=str(write_chats(tmp_path / "c.jsonl")),
            max_steps=150,
            batch_size=2,
            max_length=64,
            learning_rate=5e-3,
            eval_steps=1000,
            save_steps=1000,
            logging_steps=1,
        )
        job = runner.submit(cfg, owner="alice")
        run = Path(job.run_dir)
        wait_for(lambda: len(rundir.read_progress(run)) >= 3, timeout=240, what="progress")
        log = rundir.tail_log(run, 100_000)
        assert "accelerate.commands.launch" in log and "configs/accelerate/ddp.yaml" in log
        assert "2 processes, ddp: the run fits one NVIDIA L4" in log
        assert len(ranks_alive(run)) >= 3  # the launcher and its two ranks
        launcher = Path(f"/proc/{runner.get(job.id).pid}/environ").read_bytes().split(b"\0")
        assert b"TORCH_ELASTIC_SHUTDOWN_TIMEOUT=30" in launcher  # waits as long as the runner
        runner.cancel(job.id, "alice")
        wait_for(lambda: runner.get(job.id).status != "running", timeout=120, what="the end")
        assert runner.get(job.id).status == "cancelled", rundir.tail_log(run)
        wait_for(lambda: not ranks_alive(run), timeout=30, what="every rank gone")
        assert rundir.adapter_complete(run) and logits_change(tiny_model_dir, run / "adapter") > 0
        stopped = rundir.read_status(run)["metrics"]["steps"]
        assert stopped < 150 and rundir.last_checkpoint(run).name == f"checkpoint-{stopped}"

        runner.resume(job.id, "alice")
        wait_for(lambda: runner.get(job.id).status == "completed", timeout=300, what="resumed")
        assert f"resuming from checkpoint-{stopped}" in rundir.tail_log(run, 200_000)
        steps = [r["step"] for r in rundir.read_progress(run) if "loss" in r]
        assert steps == list(range(1, 151))  # one line per step, none twice
        assert not ranks_alive(run)
    finally:
        runner.shutdown(stop_workers=True)
    assert os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT") is None  # the launcher's only
