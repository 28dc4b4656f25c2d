"""The Train tab's run status line: the worker's phase from its first second, and the time
left as the worker last estimated it, counted down; the pre-flight verdict's icon."""

import time

from components import train_format as tf
from training.backends.preflight import SMOLLM2_135M, estimate
from training.config import RunConfig
from training.hardware import Hardware
from training.jobs import rundir
from training.jobs.store import Job


def running(tmp_path, progress=None) -> Job:
    return Job(
        id="r1",
        run_dir=str(tmp_path),
        owner="alice",
        device="cpu",
        model="m",
        status="running",
        seq=1,
        created=time.time(),
        progress=progress or {},
    )


def test_before_the_first_step_the_phase_and_the_estimated_time_left_show(tmp_path):
    job = running(tmp_path)
    rundir.write_status(tmp_path, "running", pid=1, started=time.time())
    rundir.note_phase(tmp_path, "preparing data")
    text = tf.job_markdown(job, "preparing data")
    assert text == "**Run r1** · running (preparing data)"  # no time left yet: not guessed
    rundir.note_phase(tmp_path, "loading the model", eta=125)
    text = tf.job_markdown(job, "loading the model")  # 125 s, counted down since written
    assert text.startswith("**Run r1** · running (loading the model) · ETA 2m 0")


def test_while_training_the_step_under_way_and_a_countdown_from_the_last_estimate(tmp_path):
    job = running(tmp_path, {"step": 4, "total_steps": 30, "loss": 1.5, "eta": 999})
    rundir.write_status(tmp_path, "running", phase="step 6 of 30", eta=300.0)
    status = rundir.read_status(tmp_path)
    status["updated"] -= 60  # written a minute ago
    rundir.write_json_atomic(tmp_path / rundir.STATUS, status)
    text = tf.job_markdown(job, "step 6 of 30")
    # The phase names the step under way (the logged step 4 is older); 300 s a minute ago.
    assert text.startswith("**Run r1** · running (step 6 of 30) · loss 1.5000 · ETA 3m 5")
    assert "step 4/30" not in text
    status["updated"] -= 600  # the estimate has run out: no ETA rather than a wrong one
    rundir.write_json_atomic(tmp_path / rundir.STATUS, status)
    assert "ETA" not in tf.job_markdown(job, "step 6 of 30")


def test_autotrain_phases_keep_the_progress_lines_step_and_eta(tmp_path):
    job = running(tmp_path, {"step": 4, "total_steps": 30, "eta": 65})
    rundir.write_status(tmp_path, "running", pid=1, phase="training")  # no eta of its own
    text = tf.job_markdown(job, "training")
    assert text == "**Run r1** · running (training) · step 4/30 · ETA 1m 05s"
    job.status = "completed"
    assert "ETA" not in tf.job_markdown(job, "training") and "training" not in tf.job_markdown(job)


def test_a_tight_fit_gets_its_own_icon():
    cpu = Hardware("cpu", "CPU (2 cores)", 16.0, "fp32")
    stats = {"examples": 64, "tokens_per_example": {"mean": 284.0, "p90": 284, "max": 284}}
    cfg = RunConfig(max_steps=3)
    tight = estimate(cfg, stats, cpu, SMOLLM2_135M, available_gb=4.0)
    assert tf.preflight_markdown(tight).startswith("**Pre-flight estimate** ⚠️")
    roomy = estimate(cfg, stats, cpu, SMOLLM2_135M, available_gb=12.0)
    text = tf.preflight_markdown(roomy)
    assert text.startswith("**Pre-flight estimate** ✅") and "LM head" in text
    assert "Estimated time:" in text and "to start (load the model, prepare the data)" in text
