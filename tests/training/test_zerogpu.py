"""ZeroGPU on a CPU: a stand-in `spaces` (tests/spaces_stand_in.py) records which entry points
are decorated and the durations each call asks for. Generation, evaluation, merge and
training run through their GPU calls on the tiny model; training runs in this process,
writes the run directory as the worker subprocess does, and keeps to the steps that fit.
Without ZeroGPU the same modules' own tests run the plain paths."""

import importlib
import json
import os
import sys
from pathlib import Path

import pytest

from tests.assets import MSGS, make_run, wait_for
from tests.spaces_stand_in import use_zero_gpu
from training import zerogpu
from training.config import RunConfig
from training.jobs import rundir
from training.jobs.runner import JobRunner

# Their GPU entry points are decorated at import: reloaded with the stand-in in place.
GPU_MODULES = (
    "training.chat.engine",
    "training.evaluation.evaluate",
    "training.export.export",
    "training.jobs.in_process",
)
ENTRY_POINTS = {
    "training.chat.engine._stream_in_worker",
    "training.evaluation.evaluate._evaluate_in_worker",
    "training.export.export._merge_in_worker",
    "training.jobs.in_process.in_this_process",
}


def reload_gpu_modules() -> list:
    return [importlib.reload(importlib.import_module(name)) for name in GPU_MODULES]


@pytest.fixture
def zero_gpu(monkeypatch):
    """This process as a ZeroGPU Space for one test; afterwards the modules as before."""
    try:
        with monkeypatch.context() as patch:
            stand_in = use_zero_gpu(patch)
            reload_gpu_modules()
            yield stand_in
    finally:
        reload_gpu_modules()


def sizes(monkeypatch, **billions):
    """Fake model sizes (billions of parameters) by model name."""
    monkeypatch.setattr(zerogpu, "model_billions", lambda model: billions[model])


# --- the glue ------------------------------------------------------------------------------
def test_without_zero_gpu_nothing_is_decorated(monkeypatch):
    def fn():
        return 1

    assert not zerogpu.active() and zerogpu.gpu(fn, duration=lambda: 5) is fn
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # the package not installed
    assert not zerogpu.active() and zerogpu.gpu(fn, duration=lambda: 5) is fn


def test_entry_points_are_decorated_with_sensible_capped_durations(zero_gpu, monkeypatch):
    engine, evaluate, export, in_process = reload_gpu_modules()
    assert set(zero_gpu.decorated) == ENTRY_POINTS
    rule = {name.rsplit(".", 1)[1]: fn for name, fn in zero_gpu.decorated.items()}
    sizes(monkeypatch, small=0.135, mid=1.7, big=7.6, huge=30.0)
    chat = rule["_stream_in_worker"]
    rows = [engine.Row(MSGS)]
    short = chat("small", rows, engine.Settings(max_new_tokens=64), None, False)
    long = chat("small", rows * 2, engine.Settings(max_new_tokens=1024), None, False)
    bigger = chat("mid", rows * 2, engine.Settings(max_new_tokens=1024), None, False)
    assert 10 <= short < long < bigger <= zerogpu.MAX_SECONDS  # ~14 s, ~45 s, ~93 s
    assert chat("huge", rows * 3, engine.Settings(max_new_tokens=4096), None, False) == 120

    run = Path("/nonexistent/run")
    monkeypatch.setattr(evaluate, "run_config", lambda run_dir: RunConfig(model="mid"))
    monkeypatch.setattr(export, "run_config", lambda run_dir: RunConfig(model="mid"))
    few = rule["_evaluate_in_worker"](run, None, 4, "final", 3, 64, 4, "")
    more = rule["_evaluate_in_worker"](run, None, 12, "final", 3, 64, 4, "")
    assert 10 < few < more <= zerogpu.MAX_SECONDS
    assert rule["_evaluate_in_worker"](run, None, 500, "final", 3, 512, 4, "") == 120
    assert 20 < rule["_merge_in_worker"](run, "final", None, False) <= zerogpu.MAX_SECONDS
    # Training asks for the plan's seconds (made before the call), never more than the cap.
    assert rule["in_this_process"](["cfg.yaml"], 75, 300, "note") == 75
    assert rule["in_this_process"](["cfg.yaml"], 10_000) == 120


# --- the training plan -------------------------------------------------------------------
STATS = {  # 1,000 chats of ~200 tokens, as the Data tab's report counts them
    "examples": 1000,
    "tokens_per_example": {"mean": 200.0, "max": 800},
    "total_training_tokens": 200_000,
    "max_length": 1024,
}


def test_plan_caps_a_long_run_to_the_steps_that_fit_and_says_so(monkeypatch):
    sizes(monkeypatch, m=1.7)
    plan = zerogpu.plan_training(RunConfig(model="m", epochs=20), STATS)
    assert plan.total_steps == 20 * 113  # 900 training rows / 4 per batch / 2 accumulated
    assert 0 < plan.steps < plan.total_steps and plan.capped and not plan.refusal
    assert zerogpu.MAX_SECONDS - 10 < plan.seconds <= zerogpu.MAX_SECONDS
    assert f"about {plan.steps:,} of this run's {plan.total_steps:,} steps fit" in plan.note
    assert "dedicated GPU" in plan.note


def test_plan_of_a_run_that_fits_asks_only_for_its_time(monkeypatch):
    sizes(monkeypatch, m=0.135)
    plan = zerogpu.plan_training(RunConfig(model="m", max_steps=30), STATS)
    assert (plan.steps, plan.total_steps, plan.capped) == (30, 30, False)
    assert 25 <= plan.seconds < zerogpu.MAX_SECONDS
    assert plan.note.endswith(f"this one needs about {plan.seconds} s.")
    # Without the data's statistics an epoch-based run's length is unknown: capped, said so.
    unknown = zerogpu.plan_training(RunConfig(model="m"), None)
    assert unknown.total_steps is None and unknown.capped
    assert f"about {unknown.steps:,} optimizer steps fit" in unknown.note


def test_plan_refuses_a_model_too_big_to_load_in_one_call(monkeypatch):
    sizes(monkeypatch, m=14.8)
    plan = zerogpu.plan_training(RunConfig(model="m"), STATS)
    assert plan.refusal and plan.steps == 0
    assert "a 14.8 B model needs about" in plan.refusal
    assert "duplicate this Space on a dedicated GPU" in plan.refusal


# --- the entry points on the tiny model ----------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "run1", tiny_model_dir, rows=16)


def test_playground_generates_inside_the_gpu_call(zero_gpu, run_dir, tiny_model_dir):
    engine = importlib.import_module("training.chat.engine")
    app_engine = engine.ChatEngine()
    assert app_engine.zero_gpu
    model, adapter = str(tiny_model_dir), run_dir / "adapter"
    rows = [engine.Row(MSGS), engine.Row(MSGS, adapter)]
    greedy = engine.Settings(temperature=0, max_new_tokens=16)
    replies = app_engine.generate(model, rows, greedy, tokenizer_dir=adapter)
    plain = engine.ChatEngine(zero_gpu=False).generate(model, rows, greedy, tokenizer_dir=adapter)
    assert [r.text for r in replies] == [r.text for r in plain]
    assert replies[1].stats.generated_tokens == plain[1].stats.generated_tokens > 0
    assert app_engine.loaded()["base"] is None  # the app process holds no model...
    assert engine.device_engine().loaded()["base"] == model  # ...the GPU worker does
    ((name, seconds),) = zero_gpu.calls
    assert name.endswith("_stream_in_worker") and 10 <= seconds <= zerogpu.MAX_SECONDS
    stream = app_engine.stream(model, rows, greedy, tokenizer_dir=adapter)
    next(stream)
    stream.close()  # the visitor pressed Stop: the call ends, nothing hangs


def test_evaluation_runs_in_one_gpu_call_with_the_rows_that_fit(
    zero_gpu, tiny_model_dir, tmp_path, monkeypatch
):
    engine, evaluate = map(importlib.import_module, GPU_MODULES[:2])
    run = make_run(tmp_path / "run", tiny_model_dir, rows=40)
    said = []
    report = evaluate.evaluate_run(
        run, limit=3, engine=engine.ChatEngine(), progress=lambda f, m: said.append(m)
    )
    assert report["rows"] == 3 and "Evaluated" not in report["verdict"]
    assert json.loads((run / "eval" / "report.json").read_text())["rows"] == 3
    assert "Waiting for a GPU (ZeroGPU)" in said
    ((name, seconds),) = zero_gpu.calls
    assert name.endswith("_evaluate_in_worker") and 10 <= seconds <= zerogpu.MAX_SECONDS
    assert report["latency_rows"] == 3 and report["retrieval"]["latency_s"] > 0
    # Slower decoding: one call holds one batch of 4 rows, so 4 of the 8 asked are evaluated,
    # and no requests are timed alone (rows come first).
    monkeypatch.setattr(zerogpu, "DECODE_S_PER_STEP", 4.0)
    report = evaluate.evaluate_run(run, limit=8, max_new_tokens=10, engine=engine.ChatEngine())
    assert report["rows"] == 4 and report["latency_rows"] == 0
    assert report["base"]["latency_s"] is None and report["retrieval"]["latency_s"] is None
    assert report["verdict"].endswith(
        "Evaluated 4 of 8 rows: what fits in one ZeroGPU call of at most 120 s. Seconds per "
        "request were not measured: no time left for them in the call."
    )


def test_merge_runs_in_a_gpu_call_when_it_fits_else_on_the_cpu(
    zero_gpu, run_dir, monkeypatch, tmp_path
):
    export = importlib.import_module("training.export.export")
    merged = export.merge(run_dir, out_dir=tmp_path / "merged")
    assert merged == tmp_path / "merged" and list(merged.glob("*.safetensors"))
    ((name, seconds),) = zero_gpu.calls
    assert name.endswith("_merge_in_worker") and 10 <= seconds <= zerogpu.MAX_SECONDS
    monkeypatch.setattr(zerogpu, "model_billions", lambda model: 20.0)  # 80 GB in fp32
    said = []
    export.merge(run_dir, out_dir=tmp_path / "cpu", progress=said.append)
    assert len(zero_gpu.calls) == 1 and said[0].startswith("Loading the base model")


# --- training: in this process, the run directory as the subprocess writes it ---------------
def chats(path: Path, n: int = 24) -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Fact {i}?"},
                {"role": "assistant", "content": f"The answer is {i % 5}."},
            ]
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_run(model_dir: Path, tmp_path: Path, **changes) -> RunConfig:
    settings = dict(
        model=str(model_dir),
        data=str(chats(tmp_path / "chats.jsonl")),
        max_steps=8,
        batch_size=4,
        grad_accum=1,
        max_length=64,
        eval_steps=0,
        save_steps=2,
        logging_steps=1,
        learning_rate=5e-3,
    )
    return RunConfig(**{**settings, **changes})


def ended(runner, job_id):
    return runner.get(job_id).status not in ("queued", "running")


def test_training_runs_in_process_and_stops_at_the_steps_that_fit(
    zero_gpu, tiny_model_dir, tmp_path, monkeypatch
):
    note = "On ZeroGPU a run is one GPU call of at most 120 s: about 3 of this run's 8 steps fit."
    plan = zerogpu.TrainingPlan(60, 3, 8, note)
    monkeypatch.setattr(zerogpu, "plan_training", lambda cfg, stats: plan)
    runner = JobRunner(device="cpu", tick_s=0.1).start()
    try:
        assert runner.in_process
        job = runner.submit(tiny_run(tiny_model_dir, tmp_path), owner="alice")
        wait_for(lambda: ended(runner, job.id), timeout=180, what="the run to end")
        done = runner.get(job.id)
        assert done.status == "completed", rundir.tail_log(job.run_dir)
        assert done.reason == note == rundir.read_status(job.run_dir)["reason"]
        trained = [r["step"] for r in rundir.read_progress(job.run_dir) if "loss" in r]
        assert trained == [1, 2, 3] and rundir.adapter_complete(job.run_dir)
        log = rundir.tail_log(job.run_dir, 100_000)
        assert "-m training train" in log and "Data: " in log and note in log
        assert rundir.read_status(job.run_dir)["pid"] == os.getpid()  # no subprocess
        assert zero_gpu.calls == [("training.jobs.in_process.in_this_process", 60)]
    finally:
        runner.shutdown(stop_workers=True)  # pid 0: nothing to signal, this process lives on


def test_cancel_stops_an_in_process_run_with_its_adapter(zero_gpu, tiny_model_dir, tmp_path):
    runner = JobRunner(device="cpu", tick_s=0.1).start()
    try:
        job = runner.submit(tiny_run(tiny_model_dir, tmp_path, max_steps=3000), owner="alice")
        wait_for(lambda: runner.live(runner.get(job.id)).progress.get("step", 0) >= 2, 180)
        runner.cancel(job.id, owner="alice")
        wait_for(lambda: ended(runner, job.id), timeout=60, what="the run to stop")
        done = runner.get(job.id)
        assert done.status == "cancelled" and done.progress["step"] < 3000
        assert rundir.adapter_complete(job.run_dir)
        runner.resume(job.id, owner="alice")  # the stop request is gone: it trains again
        wait_for(lambda: runner.get(job.id).status == "running", what="resumed")
        runner.cancel(job.id, owner="alice")
        wait_for(lambda: ended(runner, job.id), timeout=60, what="the run to stop again")
    finally:
        runner.shutdown(stop_workers=True)


def test_a_run_stops_itself_before_its_gpu_call_ends(tiny_model_dir, tmp_path, monkeypatch):
    from training.jobs import in_process

    monkeypatch.setattr(zerogpu, "SAVE_S", 0.0)
    run = tmp_path / "run"
    run.mkdir()
    cfg = tiny_run(tiny_model_dir, tmp_path, max_steps=100_000, save_steps=1000)
    cfg.to_yaml(run / rundir.CONFIG)
    argv = [str(run / rundir.CONFIG), "--run-dir", str(run)]
    assert in_process.in_this_process(argv, seconds=8) == 143
    status = rundir.read_status(run)
    assert status["status"] == "cancelled" and "GPU call's time ran out" in status["reason"]
    assert rundir.adapter_complete(run)


def test_after_a_restart_an_in_process_run_is_interrupted(tmp_path):
    runner = JobRunner(device="cpu")
    job = runner.submit(RunConfig(data=str(chats(tmp_path / "c.jsonl"))), owner="alice")
    assert runner.store.claim(job.id, "cpu", lambda: 0) == 0  # as InProcessRun's pid
    (ended_job,) = JobRunner(device="cpu").recover()
    assert ended_job.status == "interrupted" and "restarted" in ended_job.reason
