"""The training worker end to end on the tiny model: real subprocesses, real signals.

Each run takes a few seconds (mostly imports); the tiny model trains at ~0.02 s/step."""

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.config import RunConfig
from training.jobs import rundir
from training.paths import REPO_ROOT


def write_chats(path: Path, n: int = 48, long_every: int = 0) -> Path:
    rows = []
    for i in range(n):
        answer = f"The answer is {i * 7 % 13}."
        if long_every and i % long_every == 0:
            answer = " ".join([answer] * 12)
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Tell me fact {i}."},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_config(tmp_path: Path, model: Path, data: Path, **changes) -> Path:
    settings = dict(
        model=str(model),
        data=str(data),
        max_steps=8,
        batch_size=4,
        grad_accum=1,
        max_length=64,
        learning_rate=5e-3,
        eval_steps=4,
        save_steps=4,
        logging_steps=1,
        validation_split=0.2,
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    RunConfig(**{**settings, **changes}).to_yaml(path)
    return path


def worker(*args, **popen):
    cmd = [sys.executable, "-m", "training", "train", *map(str, args)]
    return subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **popen,
    )


def finish(proc, timeout=180) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def load_tuned(model_dir: Path, adapter: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    return PeftModel.from_pretrained(base, adapter).eval()


def logits_change(model_dir: Path, adapter: Path) -> float:
    tuned = load_tuned(model_dir, adapter)
    ids = torch.tensor([[1, 20, 30, 40, 50, 2]])
    with torch.no_grad():
        out = tuned(input_ids=ids).logits
        with tuned.disable_adapter():
            base = tuned(input_ids=ids).logits
    return (out - base).abs().max().item()


def wait_for(predicate, proc, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"worker exited ({proc.returncode}) before {what}: {proc.stdout.read()}"
            )
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_end_to_end_then_continue_from_adapter(tmp_path, tiny_model_dir):
    data = write_chats(tmp_path / "chats.jsonl")
    cfg_path = make_config(tmp_path, tiny_model_dir, data, max_steps=50)
    run = tmp_path / "run"
    code, out = finish(worker(cfg_path, "--max-steps", 12, "--run-dir", run))
    assert code == 0, out
    status = rundir.read_status(run)
    assert status["status"] == "completed" and status["pid"] > 0
    assert RunConfig.from_yaml(run / "config.yaml").max_steps == 12  # flag beat the file
    progress = rundir.read_progress(run)
    train_lines = [r for r in progress if "loss" in r]
    assert [r["step"] for r in train_lines] == list(range(1, 13))
    for key in ("total_steps", "epoch", "learning_rate", "tokens_per_second", "elapsed", "eta"):
        assert key in train_lines[-1], key
    assert train_lines[-1]["tokens_per_second"] > 0 and train_lines[-1]["total_steps"] == 12
    assert [r["step"] for r in progress if "eval_loss" in r] == [4, 8, 12]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["eval_loss"] > 0 and metrics["padding_waste"] >= 1
    assert rundir.adapter_complete(run) and not (run / ".adapter.tmp").exists()
    for name in ("adapter_config.json", "config.yaml", "metrics.json", "chat_template.jinja"):
        assert (run / "adapter" / name).is_file(), name
    assert logits_change(tiny_model_dir, run / "adapter") > 1e-4
    assert train_lines[-1]["loss"] < train_lines[0]["loss"]
    for noise in ("is_gradient_checkpointing", "kernels-community", "pin_memory"):
        assert noise not in out, noise  # library notices a user cannot act on stay out

    # A new run that starts from the finished run's adapter begins where that one ended.
    second = tmp_path / "second"  # init_adapter may name the run folder or its adapter/
    cfg2 = make_config(tmp_path, tiny_model_dir, data, max_steps=2, init_adapter=str(run))
    code, out = finish(worker(cfg2, "--run-dir", second))
    assert code == 0, out
    first_loss = next(r["loss"] for r in rundir.read_progress(second) if "loss" in r)
    assert first_loss < train_lines[0]["loss"] - 0.05


def test_the_run_tells_its_phase_from_the_first_second(tmp_path, tiny_model_dir):
    """status.json's phase, each one also a train.log line: preparing the data, loading the
    model (with the time left in all, from the pre-flight's formulas), each step, saving."""
    data = write_chats(tmp_path / "chats.jsonl")
    run = tmp_path / "run"
    proc = worker(make_config(tmp_path, tiny_model_dir, data, max_steps=3), "--run-dir", run)
    wait_for(lambda: rundir.read_status(run).get("phase"), proc, what="the first phase")
    assert rundir.read_status(run)["phase"] == "preparing data"
    code, out = finish(proc)
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("[phase] ")]
    phases = [line[len("[phase] ") :].split(" (")[0] for line in lines]
    assert phases == ["preparing data", "loading the model", "step 1 of 3", "saving the adapter"]
    at = [float(line.split("(at ")[1].split(" s")[0]) for line in lines]
    assert at == sorted(at) and at[0] < 1.0  # from the worker's first second
    assert "s left in all)" in lines[1] and "s left in all)" in lines[2]
    status = rundir.read_status(run)
    assert status["status"] == "completed" and "phase" not in status  # news only while running


def test_without_run_dir_creates_one_and_prints_it(tmp_path, tiny_model_dir):
    data = write_chats(tmp_path / "chats.jsonl")
    code, out = finish(worker("--model", tiny_model_dir, "--data", data, "--max-steps", 1))
    assert code == 0, out
    line = next(x for x in out.splitlines() if x.startswith("Run directory: "))
    run = Path(line.removeprefix("Run directory: "))
    assert run.parent == Path(os.environ["TUNESMITH_HOME"]) / "runs"
    assert "tiny-chatml" in run.name and "chats" in run.name
    assert rundir.read_status(run)["status"] == "completed"


def test_trains_on_a_hub_dataset_and_records_the_commit(tmp_path, tiny_model_dir, monkeypatch):
    """--data hub:OWNER/NAME:CONFIG from the Hugging Face cache, offline; config.yaml names
    the dataset, configuration, split and commit, and the run's rows read back the same."""
    from tests.hub_dataset import CHATS_SHA, use_hub_cache
    from training.jobs.runs import run_examples

    use_hub_cache(tmp_path, monkeypatch)  # the worker inherits HF_HUB_CACHE and HOME
    run = tmp_path / "run"
    args = ("--model", tiny_model_dir, "--data", "hub:me/chats:short", "--max-steps", 2)
    code, out = finish(worker(*args, "--run-dir", run))
    assert code == 0, out
    cfg = RunConfig.from_yaml(run / "config.yaml")
    assert cfg.data == f"hub:me/chats:short@{CHATS_SHA}#train"
    assert "Data: 27 training / 3 validation examples" in out
    assert rundir.read_status(run)["status"] == "completed" and rundir.adapter_complete(run)
    train, val = run_examples(run)  # as the evaluation and the playground read the run
    assert (len(train), len(val)) == (27, 3)


def test_data_without_a_config_trains_with_the_suggested_recipe(tmp_path, tiny_model_dir):
    from training.data.stats import validation_count
    from training.jobs.worker import parse_args, resolve_config
    from training.recipe import model_params, recipe

    data = write_chats(tmp_path / "chats.jsonl")
    n = len(data.read_text().splitlines())
    cfg = resolve_config(parse_args(["--model", str(tiny_model_dir), "--data", str(data)]))
    d = RunConfig()
    train = n - validation_count(n, d.validation_split)
    want = recipe(model_params(str(tiny_model_dir)), train, d.batch_size, d.grad_accum)
    assert (cfg.learning_rate, cfg.epochs) == (want.learning_rate, want.epochs)
    assert (cfg.learning_rate, cfg.epochs) != (RunConfig.learning_rate, RunConfig.epochs)
    # A config file is taken as written.
    RunConfig(model=str(tiny_model_dir), data=str(data), epochs=2).to_yaml(tmp_path / "c.yaml")
    cfg = resolve_config(parse_args([str(tmp_path / "c.yaml")]))
    assert (cfg.learning_rate, cfg.epochs) == (RunConfig.learning_rate, 2)


def test_a_closed_log_pipe_does_not_stop_training(tmp_path, tiny_model_dir):
    """The reader of the worker's output going away must not lose the run."""
    data = write_chats(tmp_path / "chats.jsonl")
    run = tmp_path / "run"
    proc = worker("--model", tiny_model_dir, "--data", data, "--max-steps", 3, "--run-dir", run)
    proc.stdout.close()
    assert proc.wait(timeout=180) == 0
    assert rundir.read_status(run)["status"] == "completed" and rundir.adapter_complete(run)


def test_invalid_data_blocks_training_with_a_reason(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    run = tmp_path / "run"
    code, out = finish(worker("--model", tiny_model_dir, "--data", bad, "--run-dir", run))
    status = rundir.read_status(run)
    assert code == 1 and status["status"] == "failed", out
    assert "bad.jsonl" in status["reason"] and "row" in status["reason"]
    assert not (run / "adapter").exists()


def test_qlora_is_refused_on_cpu(tmp_path, tiny_model_dir):
    cfg = make_config(tmp_path, tiny_model_dir, write_chats(tmp_path / "c.jsonl"), method="qlora")
    run = tmp_path / "run"
    code, out = finish(worker(cfg, "--run-dir", run))
    status = rundir.read_status(run)
    assert code == 1 and status["status"] == "failed", out
    assert "CUDA" in status["reason"] and "'lora'" in status["reason"]
    assert "Traceback" in out  # the traceback is in the log, the reason in status.json


def test_sigterm_stops_at_a_step_and_keeps_the_adapter(tmp_path, tiny_model_dir):
    cfg = make_config(
        tmp_path,
        tiny_model_dir,
        write_chats(tmp_path / "c.jsonl"),
        max_steps=100_000,
        save_steps=1000,
        eval_steps=1000,
    )
    run = tmp_path / "run"
    proc = worker(cfg, "--run-dir", run)
    wait_for(lambda: len(rundir.read_progress(run)) >= 3, proc, what="progress lines")
    assert rundir.read_status(run)["status"] == "running"
    os.killpg(proc.pid, signal.SIGTERM)
    # Repeated until it exits, as accelerate's launcher forwards it: a SIGTERM landing while
    # the interpreter shuts down used to kill the worker (-15) and lose the exit code 143.
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(0.005)
    code, out = finish(proc, timeout=60)
    assert code == 143, out
    status = rundir.read_status(run)
    assert status["status"] == "cancelled"
    assert rundir.adapter_complete(run)
    assert logits_change(tiny_model_dir, run / "adapter") > 0
    checkpoint = rundir.last_checkpoint(run)  # resumable from the step it stopped at
    assert (
        checkpoint is not None and int(checkpoint.name.split("-")[1]) == status["metrics"]["steps"]
    )


def test_sigkill_then_resume_continues_the_step_count(tmp_path, tiny_model_dir):
    cfg = make_config(
        tmp_path,
        tiny_model_dir,
        write_chats(tmp_path / "c.jsonl"),
        max_steps=40,
        save_steps=3,
        eval_steps=20,
    )
    run = tmp_path / "run"
    proc = worker(cfg, "--run-dir", run)
    wait_for(lambda: rundir.last_checkpoint(run) is not None, proc, what="a checkpoint")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    killed_at = int(rundir.last_checkpoint(run).name.split("-")[1])
    assert rundir.read_status(run)["status"] == "running"  # the job runner marks it interrupted
    assert killed_at < 40, "the run finished before it could be killed"

    code, out = finish(worker(run / "config.yaml", "--run-dir", run, "--resume"))
    assert code == 0, out
    assert f"resuming from checkpoint-{killed_at}" in out
    steps = [r["step"] for r in rundir.read_progress(run) if "loss" in r]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no restart, no duplicates
    assert steps[-1] == 40 and steps[0] == 1  # the lines up to the checkpoint are kept
    assert (
        sum(1 for line in out.splitlines() if line.startswith("[progress]") and " loss=" in line)
        == 40 - killed_at
    )
    assert rundir.read_status(run)["status"] == "completed"
    state = json.loads((rundir.last_checkpoint(run) / "trainer_state.json").read_text())
    assert state["global_step"] == 40


def test_early_stopping_ends_the_run_before_max_steps(tmp_path, tiny_model_dir):
    # A validation file unlike the training data: learning the training answers makes its
    # loss worse from the first evaluations, so patience 1 stops the run within a few steps.
    val = tmp_path / "val.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Write a haiku."},
                {"role": "assistant", "content": "Autumn leaves falling softly to the ground."},
            ]
        }
    ] * 12
    val.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = make_config(
        tmp_path,
        tiny_model_dir,
        write_chats(tmp_path / "c.jsonl"),
        max_steps=60,
        validation_file=str(val),
        eval_steps=2,
        save_steps=2,
        early_stopping_patience=1,
    )
    run = tmp_path / "run"
    code, out = finish(worker(cfg, "--run-dir", run))
    assert code == 0, out
    metrics = json.loads((run / "metrics.json").read_text())
    evals = [r["eval_loss"] for r in rundir.read_progress(run) if "eval_loss" in r]
    assert metrics["steps"] < 60 and rundir.read_status(run)["status"] == "completed"
    assert metrics["validation_examples"] == 12 and metrics["train_examples"] == 48
    # the best checkpoint was restored and re-measured: the final eval is the best one
    assert metrics["eval_loss"] == min(evals)


def accelerate_launch(engine: str, cfg: Path, run: Path, module: str = "training", **kw):
    """Two CPU ranks (gloo) under a shipped accelerate config, as the job runner starts them
    on two GPUs (training/jobs/launch.py): the worker sees no GPU and trains data parallel."""
    from training.jobs.launch import Launch, command

    worker = [sys.executable, "-m", module, "train"]
    argv = command(Launch(engine, 2, "test"), worker, [str(cfg), "--run-dir", str(run)])
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_two_processes_train_the_same_loss_curve_as_one_with_the_same_effective_batch(
    tmp_path, tiny_model_dir
):
    """The same run config under two processes (2 ranks x batch 2) and in one process with
    the same 4 sequences per step (batch 2 x accumulation 2): accelerate hands rank r the
    batches r, r+2, ... of the one sampler, so both see the same rows in every step, and
    the gradient is the same token-weighted average. Per-step losses agree within 0.5 %
    (measured: equal to the 6 logged decimals). Dropout off: each rank draws its own."""
    data = write_chats(tmp_path / "c.jsonl")
    same = dict(max_steps=6, batch_size=2, lora_dropout=0.0, eval_steps=0, save_steps=0)
    two_cfg = make_config(tmp_path / "two", tiny_model_dir, data, grad_accum=1, **same)
    one_cfg = make_config(tmp_path / "one", tiny_model_dir, data, grad_accum=2, **same)
    two, one = tmp_path / "two" / "run", tmp_path / "one" / "run"
    proc = accelerate_launch("ddp", two_cfg, two, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "world_size=2" in proc.stdout + proc.stderr
    code, out = finish(worker(one_cfg, "--run-dir", one))
    assert code == 0, out
    assert rundir.read_status(two)["status"] == "completed"
    curves = [[r["loss"] for r in rundir.read_progress(run) if "loss" in r] for run in (two, one)]
    assert len(curves[0]) == len(curves[1]) == 6  # rank 0 alone writes progress
    for step, (a, b) in enumerate(zip(*curves, strict=True), 1):
        assert a == pytest.approx(b, rel=5e-3), f"step {step}: {a} vs {b}"
    assert logits_change(tiny_model_dir, two / "adapter") > 0


@pytest.mark.slow
def test_two_processes_with_skewed_lengths_do_not_wait_for_each_other(tmp_path, tiny_model_dir):
    """Each rank cuts its batch into unpadded sub-batches by its own rows' lengths, and TRL
    gathers its metrics across ranks in each one: unequal counts used to hang the run at its
    first step. The ranks now agree on the count."""
    data = write_chats(tmp_path / "c.jsonl", long_every=3)  # a long answer every third row
    cfg = make_config(tmp_path, tiny_model_dir, data, max_steps=4, max_length=128)
    run = tmp_path / "run"
    proc = accelerate_launch("ddp", cfg, run, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [r["step"] for r in rundir.read_progress(run) if "loss" in r] == [1, 2, 3, 4]


def test_failures_become_plain_status_with_advice(tmp_path, monkeypatch, capsys):
    """Out of memory anywhere in training -> status failed, advice, exit 1, traceback in log."""
    import training.backends
    from training.jobs import worker as worker_module

    class Exploding:
        @staticmethod
        def train(*a, **k):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training.backends, "get_backend", lambda name: Exploding)
    data = write_chats(tmp_path / "c.jsonl")
    run = tmp_path / "run"
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        code = worker_module.main(
            ["--model", "/nonexistent/model", "--data", str(data), "--run-dir", str(run)]
        )
        status = rundir.read_status(run)
        assert code == 1 and status["status"] == "failed"
        assert "neither a model folder" in status["reason"]
        # the OOM path needs the tokenizer to load: use a real model folder
        from tests.assets import build_tiny_model

        model = build_tiny_model(tmp_path / "m")
        code = worker_module.main(
            ["--model", str(model), "--data", str(data), "--run-dir", str(run)]
        )
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    status = rundir.read_status(run)
    assert code == 1 and status["status"] == "failed"
    assert status["reason"] == "Out of memory while training."
    for word in ("max_length", "batch_size", "grad_accum", "qlora", "smaller model"):
        assert word in status["advice"]
    err = capsys.readouterr().err
    assert "Traceback" in err and "FAILED: Out of memory" in err


@pytest.mark.parametrize(
    "exc", [MemoryError(), RuntimeError("CUDA error: out of memory"), torch.OutOfMemoryError("x")]
)
def test_every_kind_of_oom_gets_advice(exc):
    from training.jobs.worker import explain_failure

    reason, advice = explain_failure(exc)
    assert reason.startswith("Out of memory") and "max_length" in advice


@contextlib.contextmanager
def own_signals():
    """main() in this process installs signal handlers: put the test runner's back."""
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])


def test_a_full_disk_while_saving_a_checkpoint_fails_plainly_and_keeps_the_last_good_one(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    from transformers import Trainer

    from training.jobs import worker as worker_module

    save = Trainer._save_checkpoint

    def full_at_step_4(self, model, trial):
        if self.state.global_step < 4:
            return save(self, model, trial)
        half = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        half.mkdir(parents=True)
        (half / "adapter_config.json").write_text("{}")  # looks like an adapter to a lister
        (half / "adapter_model.safetensors").write_bytes(b"\0" * 10)
        raise OSError(errno.ENOSPC, "No space left on device", str(half / "optimizer.pt"))

    monkeypatch.setattr(Trainer, "_save_checkpoint", full_at_step_4)
    cfg = make_config(
        tmp_path, tiny_model_dir, write_chats(tmp_path / "c.jsonl"), save_steps=2, eval_steps=100
    )
    run = tmp_path / "run"
    with own_signals():
        code = worker_module.main([str(cfg), "--run-dir", str(run)])
    status = rundir.read_status(run)
    assert code == worker_module.EXIT_DISK_FULL == 28 and status["status"] == "failed"
    assert status["reason"] == "The disk is full: no space left to write optimizer.pt."
    assert "Free some space" in status["advice"] and "Resume" in status["advice"]
    assert "FAILED: The disk is full" in capsys.readouterr().err
    assert [p.name for p in (run / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    assert rundir.trained_by(run) is None  # the lock went with the failed run

    monkeypatch.setattr(Trainer, "_save_checkpoint", save)  # space again: Resume
    with own_signals():
        code = worker_module.main([str(run / "config.yaml"), "--run-dir", str(run), "--resume"])
    assert code == 0 and "resuming from checkpoint-2" in capsys.readouterr().out
    assert rundir.read_status(run)["status"] == "completed"


def test_a_disk_too_full_for_status_json_still_exits_as_disk_full(
    tmp_path, tiny_model_dir, monkeypatch
):
    import training.backends
    from training.jobs import worker as worker_module

    class Full:
        @staticmethod
        def train(cfg, run_dir, *a, **k):
            (Path(run_dir) / "checkpoints" / "checkpoint-6").mkdir(parents=True)  # half saved
            raise OSError(errno.ENOSPC, "No space left on device")

    write = rundir.write_status

    def no_room_for_the_end(run_dir, status, *a, **k):
        if status != "running":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(run_dir, status, *a, **k)

    monkeypatch.setattr(training.backends, "get_backend", lambda name: Full)
    monkeypatch.setattr(rundir, "write_status", no_room_for_the_end)
    run = tmp_path / "run"
    data = write_chats(tmp_path / "c.jsonl")
    argv = ["--model", str(tiny_model_dir), "--data", str(data), "--run-dir", str(run)]
    with own_signals():
        code = worker_module.main(argv)
    assert code == 28  # the job runner reads the reason from the exit code
    assert rundir.read_status(run)["status"] == "running"
    assert not (run / "checkpoints" / "checkpoint-6").exists()


def test_a_second_worker_on_a_run_refuses_at_once_and_touches_nothing(tmp_path, tiny_model_dir):
    cfg = make_config(tmp_path, tiny_model_dir, write_chats(tmp_path / "c.jsonl"))
    run = tmp_path / "run"
    run.mkdir()
    rundir.write_status(run, "running", pid=4242)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with rundir.lock_training(run):  # this process trains the run (as the app's worker would)
        code, out = finish(worker(cfg, "--run-dir", run, "--resume"), timeout=60)
    assert code == 75, out
    assert f"This run is being trained by another process (pid {os.getpid()})" in out
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.name != rundir.LOCK}
    assert after == before


def test_an_epoch_based_run_stops_at_the_step_limit(tmp_path, tiny_model_dir):
    cfg = make_config(
        tmp_path, tiny_model_dir, write_chats(tmp_path / "c.jsonl"), max_steps=-1, epochs=3
    )
    run = tmp_path / "run"
    code, out = finish(worker(cfg, "--run-dir", run, "--step-limit", 3))
    assert code == 0, out
    # 38 training rows in batches of 4: 10 steps an epoch, 30 for the 3 epochs
    note = "This run would take 30 steps; the limit here is 3: it stops there."
    assert note in out
    status = rundir.read_status(run)
    assert status["status"] == "completed" and status["reason"] == note
    assert json.loads((run / "metrics.json").read_text())["steps"] == 3
    assert RunConfig.from_yaml(run / "config.yaml").max_steps == -1  # what was asked, kept


def test_cap_steps_counts_epochs_as_the_trainer_does():
    from training.jobs.worker import cap_steps

    by_epochs = RunConfig(max_steps=-1, epochs=2.5, batch_size=4, grad_accum=2)
    assert cap_steps(by_epochs, 100, None) == (by_epochs, None)
    assert cap_steps(by_epochs, 100, 40) == (by_epochs, None)  # 13 steps an epoch: 33
    capped, note = cap_steps(by_epochs, 100, 20)
    assert capped.max_steps == 20 and "would take 33 steps" in note
    assert cap_steps(RunConfig(max_steps=500), 100, 100)[0].max_steps == 100


@pytest.mark.slow
def test_cpu_demo_preset_halves_the_loss_on_smollm2(tmp_path):
    """The shipped CPU preset as is (bundled SmolLM2-135M on the JSON-answers sample, 24
    steps, ~2-4 min on 2 idle cores): the training loss must fall by at least half."""
    from training.models.bundled import prepare_bundled

    prepare_bundled()  # convert the bundled GGUF into this test's home once (~30 s)
    run = tmp_path / "run"
    started = time.monotonic()
    preset = REPO_ROOT / "configs" / "cpu-demo.yaml"
    code, out = finish(worker(preset, "--run-dir", run), timeout=1800)
    assert code == 0, out[-3000:]
    losses = [r["loss"] for r in rundir.read_progress(run) if "loss" in r]
    evals = [r["eval_loss"] for r in rundir.read_progress(run) if "eval_loss" in r]
    print(
        f"\nSmolLM2 cpu-demo: loss {losses[0]:.3f} -> {losses[-1]:.3f}; eval {evals}; "
        f"{time.monotonic() - started:.0f} s"
    )
    assert losses[-1] <= losses[0] / 2
    assert evals[-1] < evals[0]
    assert logits_change(prepare_bundled(), run / "adapter") > 1e-3


def test_tracking_is_off_by_default_and_trackio_logs_into_the_run(tmp_path, tiny_model_dir):
    from training import tracking

    assert RunConfig().report_to == "none"
    data = write_chats(tmp_path / "chats.jsonl")
    run = tmp_path / "run"
    cfg = RunConfig(
        model=str(tiny_model_dir), data=str(data), max_steps=2, save_steps=0, report_to="trackio"
    )
    cfg.to_yaml(tmp_path / "config.yaml")
    code, out = finish(worker(tmp_path / "config.yaml", "--run-dir", run))
    assert code == 0, out
    assert any((run / "trackio").rglob("*.db")), sorted((run / "trackio").rglob("*"))
    if "tensorboard" not in tracking.available():  # chosen but missing: a plain refusal
        cfg = RunConfig.from_dict({**cfg.to_dict(), "report_to": "tensorboard"})
        cfg.to_yaml(tmp_path / "tb.yaml")
        code, out = finish(worker(tmp_path / "tb.yaml", "--run-dir", tmp_path / "tb"))
        assert code != 0 and "TensorBoard (local) is not installed here" in out
        assert "Traceback" not in rundir.read_status(tmp_path / "tb").get("reason", "")
