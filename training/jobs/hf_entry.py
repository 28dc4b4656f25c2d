"""Inside a Hugging Face job: train the uploaded run, then send its results back.

    python -m training.jobs.hf_entry     # in the job's copy of the run's repo (training/jobs/hf_jobs.py)

Runs the worker on config.yaml into ./run, one process per GPU under accelerate launch on a
flavour with several (training/jobs/launch.py, as the job runner at home), its output going
to the job's log, which Tunesmith follows. Then, however the worker ended, its results
(adapter/, status.json, progress.jsonl, metrics.json) go to the same repo under output/,
and the job exits with the worker's code. A cancelled job's SIGTERM is passed on to the
worker, which stops at the next step and saves its adapter. HF_TOKEN (the job's secret)
lets the worker load gated models and this upload write to the repo; nothing prints it.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from training.config import RunConfig
from training.hardware import detect
from training.jobs import launch, rundir
from training.jobs.hf_jobs import OUTPUT, RESULTS

RUN = Path("run")


def main() -> int:
    cfg = RunConfig.from_yaml(Path(rundir.CONFIG))
    hw = detect()
    how = launch.plan(cfg, hw)
    print(f"[tunesmith] {hw.describe()} x {hw.count}: {how.why}", flush=True)
    argv = launch.command(how, launch.WORKER_CMD, [rundir.CONFIG, "--run-dir", str(RUN)])
    worker = subprocess.Popen(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.send_signal(signal.SIGTERM))
    code = worker.wait()
    from huggingface_hub import HfApi

    try:
        HfApi().upload_folder(
            repo_id=os.environ["TUNESMITH_REPO"],
            repo_type="dataset",
            folder_path=RUN,
            path_in_repo=OUTPUT,
            allow_patterns=RESULTS,
            commit_message=f"Results (worker exit {code})",
        )
    except Exception as exc:  # the run's log already says how training went
        print(f"FAILED: could not upload the results: {exc}", file=sys.stderr, flush=True)
        return code or 1
    print(f"[tunesmith] results uploaded; worker exit {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
