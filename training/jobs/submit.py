"""`python -m training submit`: one run on Hugging Face Jobs, followed from here to its end.

    HF_TOKEN=hf_... python -m training submit configs/t4-l4.yaml --flavor t4-small --data chats.jsonl
    python -m training submit cfg.yaml --flavor a10g-small --run-dir RUN_DIR
    python -m training submit cfg.yaml --suggest       # the flavour the pre-flight suggests, and stop

The same RunConfig as `train`; flags override the file. Your data is normalised and sent to
a private dataset repo of yours, the job trains it with Tunesmith's own worker on the flavour
(billed to your account by the minute: `--suggest` prints the estimate and the price), its
log is printed here as it comes, and the adapter comes back into the run directory, where
`eval`, `export` and the app's Playground find it as after a local run (training/jobs/hf_jobs.py).
The token: HF_TOKEN, else the one `hf auth login` saved; it is sent to the job as a secret
and never written anywhere. Ctrl-C cancels the job (the worker in it saves its adapter);
a second Ctrl-C stops following at once and leaves the job running.

Exit codes, as `train`'s: 0 completed, 1 failed (status.json says why), 2 bad command line,
config or token, 143 cancelled.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from training.jobs import hf_jobs, rundir


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m training submit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="RunConfig YAML (configs/*.yaml or a run's)")
    p.add_argument("--flavor", choices=list(hf_jobs.FLAVORS), help="the job's hardware")
    p.add_argument("--suggest", action="store_true", help="print the suggested flavour and stop")
    p.add_argument("--model", help="Hub id of the base model")
    p.add_argument("--data", help="training data file")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    p.add_argument("--run-dir", type=Path, help="run directory (created if missing)")
    p.set_defaults(backend=None, resume=False)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    from huggingface_hub import get_token

    from training.jobs.worker import new_run_dir, resolve_config

    args = parse_args(argv)
    try:
        cfg = resolve_config(args)
        hf_jobs.remote_config(cfg)
    except (ValueError, OSError) as exc:
        print(f"Config error: {exc}", file=sys.stderr)
        return 2
    if args.suggest or not args.flavor:
        from training.data.choice import load_splits

        rows = "".join(json.dumps(row) + "\n" for row in load_splits(cfg)[0]).encode()
        suggestion = hf_jobs.suggest(cfg, hf_jobs.rough_size(rows, cfg.max_length))
        print(suggestion.line.replace("**", ""))
        if not args.suggest:
            print("Pass --flavor to submit the run.", file=sys.stderr)
        return 0 if args.suggest else 2
    token = get_token()
    if not token:
        print("No Hugging Face token: set HF_TOKEN or run `hf auth login`.", file=sys.stderr)
        return 2
    run_dir = args.run_dir or new_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.to_yaml(run_dir / rundir.CONFIG)
    rundir.write_status(run_dir, "queued")
    print(f"Run directory: {run_dir}", flush=True)
    run = hf_jobs.RemoteRun(run_dir, args.flavor, token)
    del token
    return follow(run, run_dir)


def follow(run: hf_jobs.RemoteRun, run_dir: Path, poll_s: float = 0.5) -> int:
    """Print the run's log as it grows until the run ends; Ctrl-C cancels the job."""
    shown = 0
    while True:
        try:
            shown = _print_new(run_dir, shown)
            if run.poll() is not None:
                _print_new(run_dir, shown)
                break
            time.sleep(poll_s)
        except KeyboardInterrupt:
            if rundir.stop_requested(run_dir):
                print("Stopped following; the job goes on.", file=sys.stderr)
                return 130
            print("Cancelling the job (Ctrl-C again to stop waiting)...", file=sys.stderr)
            rundir.request_stop(run_dir)
    status = rundir.read_status(run_dir)
    print(f"{status['status'].capitalize()}: {status.get('reason') or ''}".rstrip(": "))
    if rundir.adapter_complete(run_dir):
        print(f"Adapter in {run_dir / rundir.ADAPTER}")
    return run.returncode


def _print_new(run_dir: Path, shown: int) -> int:
    try:
        with open(run_dir / rundir.LOG, "rb") as f:
            f.seek(shown)
            chunk = f.read()
    except OSError:
        return shown
    sys.stdout.write(chunk.decode("utf-8", errors="replace"))
    sys.stdout.flush()
    return shown + len(chunk)
