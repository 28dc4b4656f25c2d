"""Runs on Hugging Face Jobs against a local stand-in of the Hub (tests/hf_jobs_stand_in.py)
that records every request and replays a job's lifecycle: what Tunesmith sends (a private
dataset repo, the normalised data, the job with the token as a secret and the command), how
it follows the job (stage polled, log streamed into train.log, progress.jsonl and the
status), cancel, a failed job's reason reaching the user, and the adapter brought back where
the Playground, Evaluate and Export look. The token must be in no file and no log.

The job's own side (training/jobs/hf_entry.py) runs here too, on CPU: it downloads the repo
as the job's script does, trains the tiny model and uploads its results to the stand-in."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.assets import make_run, wait_for
from tests.hf_jobs_stand_in import USER, Lifecycle, jobs_hub
from tests.hub_dataset import go_online
from tests.training.jobs.test_worker import logits_change, write_chats
from training.config import RunConfig
from training.data.choice import load_splits
from training.jobs import hf_jobs, rundir, runs
from training.jobs.runner import JobRunner
from training.paths import REPO_ROOT, home

HUB_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
LOG = [
    "Installed 61 packages in 40.2s",
    "[tunesmith] NVIDIA A10G, 22 GB, bf16 x 1: one process (1 GPU visible)",
    "[phase] preparing data (at 0.1 s)",
    "[phase] loading the model (at 4.0 s, about 30 s left in all)",
    "[progress] 1/3 step=1 epoch=0.1 loss=2.5 learning_rate=0.0 tokens_per_second=900.0 "
    "elapsed=1.0 eta=4.0",
    "[progress] 2/3 step=2 epoch=0.2 loss=2.1 learning_rate=0.0002 tokens_per_second=950.5 "
    "elapsed=2.0 eta=2.0",
    "[progress] 3/3 step=3 epoch=0.3 loss=1.7 learning_rate=0.0001 tokens_per_second=949.0 "
    "elapsed=3.0 eta=None",
    "[phase] saving the adapter (at 9.0 s, about 5 s left in all)",
    "Completed: adapter in run/adapter",
]
OOM = [
    "Installed 61 packages in 40.2s",
    "[phase] loading the model (at 4.0 s)",
    "Traceback (most recent call last):",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "FAILED: Out of memory while training. Lower max_length (long examples cost the most "
    "memory), halve batch_size and double grad_accum (same effective batch).",
]


@pytest.fixture
def token():
    return "hf_" + secrets.token_hex(16)


def job_results(tmp_path: Path, model_dir: Path, status: str = "completed") -> dict[str, bytes]:
    """What hf_entry uploads at the end: a real adapter of the tiny model, the worker's
    status, progress and metrics."""
    made = make_run(tmp_path / "made-in-the-job", model_dir)
    files = {
        f"adapter/{p.name}": p.read_bytes() for p in (made / "adapter").iterdir() if p.is_file()
    }
    metrics = {"steps": 3, "train_loss": 2.1}
    reason = None if status == "completed" else "Cancelled; the adapter so far is saved."
    files["status.json"] = json.dumps(
        {"status": status, "reason": reason, "metrics": metrics}
    ).encode()
    files["progress.jsonl"] = b"".join(
        json.dumps(hf_jobs.progress_record(line)).encode() + b"\n"
        for line in LOG
        if hf_jobs.progress_record(line)
    )
    files["metrics.json"] = json.dumps(metrics).encode()
    return files


def config(tmp_path: Path, **changes) -> RunConfig:
    data = write_chats(tmp_path / "chats.jsonl", n=20)
    return RunConfig(model=HUB_MODEL, data=str(data), max_steps=3, **changes)


def no_token_anywhere(token: str, *texts: str) -> None:
    """Not in any file under the state root, nor in any captured log or output."""
    for path in Path(home()).rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert token.encode() not in path.read_bytes(), f"the token is in {path}"
    for text in texts:
        assert token not in text


def test_a_run_on_hf_jobs_is_followed_and_comes_back_like_a_local_run(
    tmp_path, tiny_model_dir, token, monkeypatch, caplog, capsys
):
    monkeypatch.setattr(hf_jobs, "POLL_S", 0.05)
    stages = ["SCHEDULING", "SCHEDULING"] + ["RUNNING"] * 30 + ["COMPLETED"]
    results = job_results(tmp_path, tiny_model_dir)
    cfg = config(tmp_path)
    with jobs_hub(token, Lifecycle(stages, LOG, results)) as hub:
        go_online(monkeypatch, hub.endpoint)
        runner = JobRunner(device="cpu", tick_s=0.05).start()
        try:
            job = runner.submit(cfg, owner="hf:alice", hf_job=("a10g-small", token))
            run = Path(job.run_dir)
            # While it runs: the log's progress lines are the run's progress, its phases
            # the status, and the run list's summary follows them.
            wait_for(lambda: len(rundir.read_progress(run)) == 3, timeout=30, what="progress")
            live = runner.live(runner.get(job.id))
            assert live.status == "running" and "On Hugging Face Jobs, a10g-small" in live.reason
            assert f"{hub.endpoint}/jobs/{USER}/job-1" in live.reason
            wait_for(lambda: runner.get(job.id).status != "running", timeout=60, what="the end")
        finally:
            runner.shutdown()
    done = runner.get(job.id)
    assert done.status == "completed", rundir.tail_log(run)
    assert done.progress["step"] == 3 and done.progress["loss"] == 1.7

    # What was sent: a private dataset repo with the normalised data, the config naming it
    # and the code; the job with the token as its secret, the command, the flavour.
    repo = f"{USER}/tunesmith-{job.id}"
    assert hub.created == [
        {"name": f"tunesmith-{job.id}", "organization": USER, "visibility": "private",
         "type": "dataset", "repo": repo}
    ]  # fmt: skip
    files = hub.repos[repo]
    train, val = load_splits(RunConfig.from_yaml(run / rundir.CONFIG))
    sent = [json.loads(line) for line in files["data/train.jsonl"].decode().splitlines()]
    assert sent == train and len(files["data/validation.jsonl"].splitlines()) == len(val)
    remote = RunConfig.from_yaml(files["config.yaml"].decode())
    assert remote.model == HUB_MODEL and remote.data == "data/train.jsonl"
    assert remote.validation_file == "data/validation.jsonl" and remote.max_steps == 3
    assert "training/jobs/hf_entry.py" in files and "configs/accelerate/ddp.yaml" in files
    requirements = files["requirements.txt"].decode()
    assert "torch==" in requirements and "trl==" in requirements
    assert "gradio" not in requirements
    [spec] = hub.jobs
    assert spec["secrets"] == {"HF_TOKEN": token}
    assert spec["flavor"] == "a10g-small" and spec["environment"]["TUNESMITH_REPO"] == repo
    assert spec["command"][:2] == ["bash", "-c"] and "training.jobs.hf_entry" in spec["command"][2]
    assert spec["timeoutSeconds"] >= 3600 and spec["labels"]["tunesmith"] == job.id
    assert token not in json.dumps({k: v for k, v in spec.items() if k != "secrets"})
    assert hub.polls >= 3  # its stage was asked until it ended
    assert not hub.requests("POST", rf"/api/jobs/{USER}/job-1/cancel")

    # What came back: the log, the worker's progress and status, the adapter, where the
    # Playground, Evaluate and Export look for them.
    log = rundir.tail_log(run, 100_000)
    assert all(line in log for line in LOG)
    assert rundir.read_status(run)["metrics"] == {"steps": 3, "train_loss": 2.1}
    assert rundir.read_status(run)["hf_job"]["url"].endswith("/jobs/alice/job-1")
    assert rundir.adapter_complete(run)
    for name, content in results.items():
        if name.startswith("adapter/"):
            assert (run / name).read_bytes() == content
    assert logits_change(tiny_model_dir, run / "adapter") > 0
    assert run in runs.visible("hf:alice")
    assert runs.open(str(run), "final", "hf:alice") == run.resolve()
    assert runs.run_examples(run) == (train, val)
    no_token_anywhere(token, caplog.text, *capsys.readouterr())


def test_cancel_cancels_the_job_and_keeps_the_adapter_it_saved(
    tmp_path, tiny_model_dir, token, monkeypatch
):
    monkeypatch.setattr(hf_jobs, "POLL_S", 0.05)
    stages = ["SCHEDULING"] + ["RUNNING"] * 100_000 + ["COMPLETED"]
    results = job_results(tmp_path, tiny_model_dir, status="cancelled")
    with jobs_hub(token, Lifecycle(stages, LOG[:5], results)) as hub:
        go_online(monkeypatch, hub.endpoint)
        runner = JobRunner(device="cpu", tick_s=0.05).start()
        try:
            job = runner.submit(config(tmp_path), owner="bob", hf_job=("t4-small", token))
            wait_for(lambda: rundir.read_progress(job.run_dir), timeout=30, what="progress")
            runner.cancel(job.id, "bob")
            wait_for(lambda: runner.get(job.id).status != "running", timeout=30, what="the end")
        finally:
            runner.shutdown()
        assert len(hub.requests("POST", rf"/api/jobs/{USER}/job-1/cancel")) == 1
    done = runner.get(job.id)
    assert done.status == "cancelled" and "adapter so far is saved" in done.reason
    assert rundir.adapter_complete(job.run_dir)
    with pytest.raises(ValueError, match="cannot be resumed"):
        runner.resume(job.id, "bob")
    no_token_anywhere(token)


def test_a_failed_job_tells_why_through_the_command_line(tmp_path, token):
    """`python -m training submit`, HF_ENDPOINT pointed at the stand-in: the job fails with
    the worker's out-of-memory line in its log and uploads nothing; that line is the run's
    reason, the log is printed as it comes, and the exit code says failed."""
    cfg_path = tmp_path / "cfg.yaml"
    config(tmp_path).to_yaml(cfg_path)
    run = tmp_path / "run"
    with jobs_hub(token, Lifecycle(["SCHEDULING", "RUNNING", "RUNNING", "ERROR"], OOM)) as hub:
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.endpoint,
            "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
            "HF_TOKEN": token,
        }
        argv = ["submit", str(cfg_path), "--flavor", "t4-small", "--run-dir", str(run)]
        proc = subprocess.run(
            [sys.executable, "-m", "training", *argv],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    status = rundir.read_status(run)
    assert status["status"] == "failed"
    assert status["reason"].startswith("The job failed on Hugging Face. Out of memory while")
    assert "FAILED: Out of memory while training" in proc.stdout  # the log, as it came
    assert "Failed: The job failed on Hugging Face. Out of memory" in proc.stdout
    assert hub.jobs[0]["secrets"] == {"HF_TOKEN": token}
    assert not rundir.adapter_complete(run)
    for path in run.rglob("*"):
        assert not path.is_file() or token.encode() not in path.read_bytes(), path
    no_token_anywhere(token, proc.stdout, proc.stderr)


@pytest.mark.slow
def test_the_job_side_trains_the_uploaded_run_and_sends_the_results_back(
    tmp_path, tiny_model_dir, token
):
    """What runs inside the job, on CPU: the repo as RemoteRun uploads it, downloaded with
    `hf download` as the job's script does, `python -m training.jobs.hf_entry` in it (its
    own copy of the training package), the results uploaded to the repo's output/."""
    folder = tmp_path / "upload"
    remote = hf_jobs.prepare(config(tmp_path, max_length=64, learning_rate=5e-3), folder)
    tiny = RunConfig.from_dict({**remote.to_dict(), "model": str(tiny_model_dir)})
    tiny.to_yaml(folder / rundir.CONFIG)  # the tiny model stands in for the Hub one
    repo = f"{USER}/tunesmith-job-side"
    with jobs_hub(token, Lifecycle(["RUNNING"], [])) as hub:
        hub.repos[repo] = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0", HF_TOKEN=token)
        job = tmp_path / "job"
        hf_cli = Path(sys.executable).with_name("hf")
        download = [str(hf_cli), "download", repo, "--repo-type", "dataset", "--local-dir", job]
        subprocess.run(download, env=env, check=True, capture_output=True, timeout=120)
        proc = subprocess.run(
            [sys.executable, "-m", "training.jobs.hf_entry"],
            cwd=job,
            env={**env, "TUNESMITH_REPO": repo, "PYTHONUNBUFFERED": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert "[tunesmith] CPU" in out and "[progress] 3/3" in out
        assert "results uploaded; worker exit 0" in out
        back = hub.repos[repo]
    assert json.loads(back["output/status.json"])["status"] == "completed"
    assert b'"step": 3' in back["output/progress.jsonl"]
    assert "output/adapter/adapter_model.safetensors" in back
    assert not any(name.startswith("output/checkpoints") for name in back)
    assert token not in out


def test_the_progress_line_reads_back_as_the_record_it_printed(tmp_path, capsys):
    """The worker prints each progress record as a `[progress]` line; a job's log is all
    Tunesmith sees while it runs, so the line must read back as the same record."""
    from training.backends.callbacks import ProgressCallback

    rundir.write_status(tmp_path, "running")
    callback = ProgressCallback(tmp_path)
    state = SimpleNamespace(global_step=0, max_steps=30, epoch=0.0, is_world_process_zero=True)
    callback.on_train_begin(None, state, None)
    callback.on_step_begin(None, state, None)
    state.global_step, state.epoch = 1, 0.0333
    callback.on_step_end(None, state, None)
    logs = {"loss": 2.3456789, "learning_rate": 2e-4, "num_tokens": 5120.0}
    callback.on_log(None, state, None, logs=logs)
    callback.on_log(None, state, None, logs={"eval_loss": 2.5})
    lines = [line for line in capsys.readouterr().out.splitlines() if "[progress]" in line]
    assert [hf_jobs.progress_record(line) for line in lines] == rundir.read_progress(tmp_path)
    assert hf_jobs.progress_record("[phase] step 3 of 30") is None


def test_the_suggested_flavour_is_the_cheapest_that_holds_the_run():
    from tests.training.jobs.test_launch import BIG

    small = hf_jobs.suggest(RunConfig(max_length=512, batch_size=4), {}, model_config=None)
    assert small.flavor.name == "t4-small" and "$0.40/h" in small.line
    assert hf_jobs.PRICES_SOURCE in small.line
    seven = hf_jobs.suggest(RunConfig(batch_size=8, max_length=2048), {}, model_config=BIG)
    assert seven.flavor.count == 1 and seven.flavor.gpu_gb >= 48
    huge = {**BIG, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80}
    seventy = hf_jobs.suggest(RunConfig(batch_size=1, max_length=512), {}, model_config=huge)
    assert seventy.flavor.count > 1 and "with FSDP" in seventy.line  # 140 GB of bf16 weights


def test_a_refused_token_fails_the_run_with_what_to_do(tmp_path, token, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    config(tmp_path).to_yaml(run / rundir.CONFIG)
    with jobs_hub(token, Lifecycle(["COMPLETED"], [])) as hub:
        go_online(monkeypatch, hub.endpoint)
        assert hf_jobs.RemoteRun(run, "t4-small", "hf_not_the_token").wait(30) == 1
    status = rundir.read_status(run)
    assert status["status"] == "failed"
    assert status["reason"] == f"Hugging Face Jobs: {hf_jobs.REFUSALS[401]}"
    assert not hub.created and not hub.jobs


def test_after_an_app_restart_a_remote_run_says_where_its_job_is(tmp_path, monkeypatch):
    """The token is never kept, so a new app process cannot follow the job: the run shows
    as interrupted with the job's address, and the minutes it ran are not the app's."""

    class Following:  # a RemoteRun that got as far as starting the job
        pid, returncode = 0, None

        def __init__(self, run_dir, flavor, token):
            job = {"id": "job-9", "url": "https://huggingface.co/jobs/alice/job-9"}
            rundir.write_status(run_dir, "running", "On Hugging Face Jobs", hf_job=job)

        def poll(self):
            return None

    monkeypatch.setattr(hf_jobs, "RemoteRun", Following)
    first = JobRunner(device="cpu", max_minutes=0.0001)
    job = first.submit(config(tmp_path), owner="alice", hf_job=("t4-small", "hf_x"))
    assert first.get(job.id).status == "running" and first.store.minutes_used("alice") == 0
    [ended] = JobRunner(device="cpu").recover()  # the app, restarted
    assert ended.id == job.id and ended.status == "interrupted"
    assert "no longer follows" in ended.reason and "/jobs/alice/job-9" in ended.reason


def test_what_a_job_cannot_run_is_refused_before_anything_is_sent(tmp_path, tiny_model_dir):
    runner = JobRunner(device="cpu")
    cfg = config(tmp_path)
    with pytest.raises(ValueError, match="needs your Hugging Face sign-in"):
        runner.submit(cfg, owner="a", hf_job=("t4-small", ""))
    with pytest.raises(ValueError, match="Unknown Hugging Face Jobs flavour"):
        runner.submit(cfg, owner="a", hf_job=("a-toaster", "hf_x"))
    folder = RunConfig(**{**cfg.to_dict(), "model": str(tiny_model_dir)})
    with pytest.raises(ValueError, match="loads its model from the Hub"):
        runner.submit(folder, owner="a", hf_job=("t4-small", "hf_x"))
    assert runner.jobs_for("a") == []
    default = hf_jobs.remote_config(RunConfig(data="x.jsonl"))
    assert default.model == HUB_MODEL  # the bundled model is this Hub model
    assert "hf download" in hf_jobs.job_command()[2] and "hf_x" not in hf_jobs.job_command()[2]
