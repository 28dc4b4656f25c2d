"""The training worker: one fine-tune, in its own process, driven by a run directory.

    python -m training train configs/cpu-demo.yaml
    python -m training train --data chats.jsonl --max-steps 30          # default model
    python -m training train --data hub:OWNER/NAME#train --max-steps 30  # a Hub dataset
    python -m training train RUN_DIR/config.yaml --run-dir RUN_DIR --resume
    python -m training train cfg.yaml --run-dir RUN_DIR --step-limit 10000   # as the app starts it
    accelerate launch --config_file configs/accelerate/ddp.yaml --num_processes 2 \
        -m training train cfg.yaml --run-dir RUN_DIR                   # as the runner starts it

Flags override the config file. A Hub dataset (training/data/hub.py) is pinned before
config.yaml is written: configuration, split and the commit's sha. Without --run-dir a new run directory is created under the
app's runs folder and its path printed. The worker writes config.yaml (resolved) and
status.json (running, with pid, then completed / failed / cancelled) into it; the backend
writes progress.jsonl, checkpoints/ and adapter/ (training/jobs/rundir.py has the protocol).
The worker holds the run directory's lock while it runs: a second worker on the same run
(the app's and one started by hand) refuses at once and leaves the run alone. --step-limit
(the app passes its TUNESMITH_MAX_STEPS) caps the optimizer steps, epoch-based runs included.

Exit codes: 0 completed; 1 failed (status.json says why, in plain words, with advice for
out-of-memory; the traceback goes to the log); 2 bad command line or config; 28 the disk is
full (status.json says so if it could still be written; half-written checkpoints are
deleted); 75 another process is training this run (nothing touched); 143 / 130 cancelled by
SIGTERM / SIGINT (the worker stops at the next step boundary and saves the adapter it has).
Run in a thread of the app's own process (ZeroGPU, training/jobs/in_process.py, where there
is no process to signal) it stops that way when RUN_DIR/stop appears (the job runner's
cancel), or at `stop_at`, the time that process gives it to finish before its GPU call ends.
Under `accelerate launch` (several GPUs: training/jobs/launch.py) only rank 0 writes to the
run directory; without a GPU the processes train data parallel on CPU (gloo). accelerate
1.15's `--cpu` flag starts one process only (it needs MPI for more), hence the DDP config's
MULTI_GPU launcher, which works on CPU here.

Its length: one run from start to end (config, lock, data, training, disk-full and cancel
handling, status) reads best as one straight script.
"""

import argparse
import contextlib
import logging
import math
import os
import re
import shutil
import signal
import sys
import time
import traceback
import warnings
from dataclasses import replace
from pathlib import Path

from training.config import BACKENDS, RunConfig
from training.data.hub import pin
from training.hardware import use_cpu_when_distributed_without_gpu, world_size
from training.jobs import rundir
from training.models.catalogue import default_model
from training.paths import REPO_ROOT, runs_dir

OOM_ADVICE = (
    "Lower max_length (long examples cost the most memory), halve batch_size and double "
    "grad_accum (same effective batch), use method 'qlora' (4-bit, GPU only), or pick a "
    "smaller model."
)
EXIT_DISK_FULL = 28  # ENOSPC's number
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: try again once the other process is done
# torch's checkpoint writer reports a full disk only as a failed write, without errno.
WRITE_FAILED = ("unexpected pos", "file write failed", "iostream error")
LOW_SPACE = 64 * 1024 * 1024
OUT_OF_TIME = (
    "Stopped with the adapter saved before this GPU call's time ran out (on ZeroGPU a run "
    "trains in calls of limited length). Resume continues from here in another call."
)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m training train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config", nargs="?", help="RunConfig YAML (configs/*.yaml or a run's config.yaml)"
    )
    p.add_argument("--model", help="catalogue key, model folder or Hub id")
    p.add_argument(
        "--data", help="training data file, or hub:OWNER/NAME[:CONFIG][@REVISION][#SPLIT]"
    )
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    p.add_argument("--run-dir", type=Path, help="run directory (created if missing)")
    p.add_argument("--backend", choices=BACKENDS)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument(
        "--step-limit",
        type=int,
        help="most optimizer steps this run may take; an epoch-based run stops there",
    )
    # Set by a run in the app's own process only (training/jobs/in_process.py): that it runs
    # there, a time (Unix seconds) to stop by, adapter saved, and why the step limit applies.
    p.set_defaults(in_process=False, stop_at=None, step_note=None)
    return p.parse_args(argv)


def resolve_config(args) -> RunConfig:
    source = args.config
    if source is None and args.resume and args.run_dir and (args.run_dir / rundir.CONFIG).is_file():
        source = args.run_dir / rundir.CONFIG  # resume: the run's own config
    data = RunConfig.from_yaml(Path(source)).to_dict() if source else {}
    overrides = {
        "model": args.model,
        "data": args.data,
        "max_steps": args.max_steps,
        "backend": args.backend,
    }
    data.update({k: v for k, v in overrides.items() if v is not None})
    data.setdefault("model", default_model())  # inside a Space: the preloaded Hub model
    if not data.get("data"):
        raise ValueError("No training data: pass --data FILE or set `data:` in the config.")
    for key in ("data", "validation_file", "init_adapter"):
        if data.get(key):
            data[key] = _find(data[key])
    for key in ("data", "validation_file"):  # a Hub dataset: the commit it trains on, named
        if data.get(key):
            data[key] = pin(data[key])
    cfg = RunConfig.from_dict(data)
    return cfg if source else with_recipe(cfg)


def with_recipe(cfg: RunConfig) -> RunConfig:
    """No config given (`train --data FILE`): the learning rate and passes the app suggests
    for this model and this data (training/recipe.py), said on stderr with the reason."""
    from training.data.examples import iter_examples
    from training.data.stats import validation_count
    from training.recipe import model_params, recipe

    try:
        rows = iter_examples(cfg.data, cfg.format, cfg.column_mapping or None)
        examples = sum(1 for _ in rows)
    except Exception:  # unreadable data: the validation step says what is wrong
        return cfg
    if not cfg.validation_file:
        examples -= validation_count(examples, cfg.validation_split)
    r = recipe(model_params(cfg.model), examples, cfg.batch_size, cfg.grad_accum)
    if _rank() == 0:
        print(f"No config given, so the suggested settings: {r.reason}", file=sys.stderr)
    return replace(cfg, learning_rate=r.learning_rate, epochs=r.epochs)


def _find(path: str) -> str:
    """Relative paths: the current folder first, then the Tunesmith folder (so presets naming
    samples/... work from anywhere). Stored absolute, so a resume finds them again."""
    for base in (Path.cwd(), REPO_ROOT):
        if (base / path).exists():
            return str((base / path).resolve())
    return path  # validation reports the missing file


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def new_run_dir(cfg: RunConfig) -> Path:
    """runs/<timestamp>-<model>-<data>, agreed on by all ranks under accelerate."""
    parts = [Path(cfg.model.rstrip("/")).name, Path(cfg.data).stem if cfg.data else "run"]
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")[:40]
    path = runs_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    if world_size() > 1:
        from accelerate import PartialState
        from accelerate.utils import broadcast_object_list

        PartialState()  # joins the process group the Trainer will use
        path = broadcast_object_list([path])[0]
    return path


def cap_steps(
    cfg: RunConfig, examples: int, limit: int | None, note: str | None = None
) -> tuple[RunConfig, str | None]:
    """The config with max_steps at the limit when it would take more steps (epochs
    counted as the Trainer does), and a line saying so (note, when given); unchanged (None)
    otherwise."""
    steps = cfg.max_steps
    if steps == -1:
        per_epoch = math.ceil(
            math.ceil(examples / (cfg.batch_size * world_size())) / cfg.grad_accum
        )
        steps = math.ceil(cfg.epochs * per_epoch)
    if not limit or steps <= limit:
        return cfg, None
    note = (
        note or f"This run would take {steps:,} steps; the limit here is {limit:,}: it stops there."
    )
    return replace(cfg, max_steps=limit), note


def _disk_full(exc: BaseException, run_dir: Path | None = None) -> bool:
    """ENOSPC anywhere in the error, or a failed write on a disk with almost nothing left."""
    if rundir.disk_full(exc):
        return True
    if run_dir is None or not any(t in str(exc) for t in WRITE_FAILED):
        return False
    try:
        return shutil.disk_usage(run_dir).free < LOW_SPACE
    except OSError:
        return False


def explain_failure(exc: BaseException, run_dir: Path | None = None) -> tuple[str, str | None]:
    """A plain-language reason and, where we know one, advice."""
    text = str(exc).strip() or type(exc).__name__
    if _disk_full(exc, run_dir):
        where = Path(exc.filename).name if getattr(exc, "filename", None) else None
        what = f"no space left to write {where}" if where else "no space left to save the run"
        return f"{rundir.DISK_FULL}: {what}.", rundir.DISK_FULL_ADVICE
    oom = type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError)
    if oom or "out of memory" in text.lower():
        return "Out of memory while training.", OOM_ADVICE
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {exc.filename or text}", "Check the path of the data or model."
    if isinstance(exc, ValueError):  # our own checks and the loaders raise readable ValueErrors
        return text[:1000], None
    return f"{type(exc).__name__}: {text.splitlines()[0][:500]}", None


def check_data(cfg: RunConfig):
    """The data's validation report (training/data), counted with the model's own tokenizer:
    template errors and answers cut off by max_length are errors."""
    from training.data import validate_file
    from training.models.catalogue import load_tokenizer

    return validate_file(
        cfg.data,
        tokenizer=load_tokenizer(cfg.model, cfg.trust_remote_code),
        max_length=cfg.max_length,
        fmt=cfg.format,
        mapping=cfg.column_mapping or None,
        validation_file=cfg.validation_file,
        validation_split=cfg.validation_split,
        seed=cfg.seed,
    )


def load_data(cfg: RunConfig, run_dir: Path | None = None):
    """Validate, then load and split. Returns (Splits, None) or (None, reason). With
    cfg.skip_bad_rows, rows with errors are left out and listed in RUN_DIR/skipped_rows.jsonl
    (run_dir None: nothing written, as on ranks other than 0)."""
    from training.backends import Splits
    from training.data import SKIPPED_ROWS, load_splits, skipped_rows, write_skipped
    from training.data.choice import by_file

    report = check_data(cfg)
    skipped = skipped_rows(report) if cfg.skip_bad_rows and report.skippable else []
    if not report.ok and not skipped:
        # with skipping on, what still blocks is an error about a file as a whole
        blocking = [f for f in report.errors if f.row is None] if cfg.skip_bad_rows else []
        first = (blocking or report.errors)[0]
        where = f" (row {first.row})" if first.row else ""
        more = f", and {len(report.errors) - 1} more" if len(report.errors) > 1 else ""
        name = Path(cfg.validation_file if first.file == "validation" else cfg.data).name
        reason = f"The data in {name} has errors: {first.message}{where}{more}"
        return None, f"{reason.rstrip('.')}. {first.hint}".strip()
    if run_dir is not None:
        write_skipped(skipped, run_dir / SKIPPED_ROWS)  # a resume rewrites (or removes) it
    if skipped:
        print(f"Skipping {len(skipped):,} rows with errors (listed in {SKIPPED_ROWS}).", flush=True)
    return Splits(*load_splits(cfg, skip=by_file(skipped))), None


class _LogStream:
    """stdout/stderr that never raise: if whoever reads the log goes away (a closed pipe),
    training must go on and still reach status.json."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self):
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


# Library notices that tell someone fine-tuning nothing they can act on; the log keeps
# everything else. (message regex, category)
NOISE = (
    (r".*`is_gradient_checkpointing` is deprecated", FutureWarning),  # transformers' own call
    (r".*'pin_memory' argument is set as true but no accelerator", UserWarning),  # CPU runs
)


def quiet_library_noise() -> None:
    for message, category in NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    # bitsandbytes, imported by peft, logs a warning about optional CPU kernels on every run
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def main(argv: list[str], **in_process) -> int:
    """in_process: in_process, stop_at and step_note (see parse_args), set by
    training/jobs/in_process.py."""
    quiet_library_noise()
    args = parse_args(argv)
    for name, value in in_process.items():
        setattr(args, name, value)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _LogStream(sys.stdout), _LogStream(sys.stderr)
    try:
        return run(args)
    except OSError as exc:
        if not rundir.disk_full(exc):
            raise
        # Even status.json could not be written: the exit code tells the job runner.
        print(f"FAILED: {rundir.DISK_FULL}: {exc}", file=sys.stderr, flush=True)
        return EXIT_DISK_FULL
    finally:
        sys.stdout, sys.stderr = streams


def run(args) -> int:
    main_rank = _rank() == 0
    with contextlib.ExitStack() as held:
        try:
            if args.run_dir:  # first of all: a second trainer on this run leaves it alone
                held.enter_context(_hold(args.run_dir, main_rank))
            try:
                cfg = resolve_config(args)
            except (ValueError, OSError) as exc:
                print(f"Config error: {exc}", file=sys.stderr)
                if args.run_dir and main_rank:
                    rundir.write_status(args.run_dir, "failed", reason=f"Config error: {exc}")
                return 2
            use_cpu_when_distributed_without_gpu()
            run_dir = args.run_dir
            if run_dir is None:
                run_dir = new_run_dir(cfg)
                held.enter_context(_hold(run_dir, main_rank))
        except rundir.Busy as exc:
            print(f"{exc} Wait until it has finished, or stop it.", file=sys.stderr, flush=True)
            return EXIT_BUSY
        return run_training(args, cfg, run_dir, main_rank)


def _hold(run_dir: Path, main_rank: bool):
    """The run's lock, made with its directory; rank 0 holds it for all ranks."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return rundir.lock_training(run_dir) if main_rank else contextlib.nullcontext()


def run_training(args, cfg: RunConfig, run_dir: Path, main_rank: bool) -> int:
    pid, started = os.getpid(), time.time()

    def status(state, **extra):
        if main_rank:
            rundir.write_status(
                run_dir, state, pid=pid, started=started, backend=cfg.backend, **extra
            )

    if main_rank:
        cfg.to_yaml(run_dir / rundir.CONFIG)
        print(f"Run directory: {run_dir}", flush=True)
    status("running", resume=args.resume)
    if main_rank:
        rundir.note_phase(run_dir, "preparing data")

    received = []  # signals seen; the backend polls this between steps

    def on_signal(signum, frame):
        # A second Ctrl-C means "now", without saving. A repeated SIGTERM does not: under
        # accelerate the launcher forwards the job runner's SIGTERM to ranks that had it already.
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if received:
            return
        received.append(signum)
        # From now on SIGTERM is ignored at the OS level: Python restores the default action
        # for its own handlers while the interpreter shuts down, so a repeated SIGTERM landing
        # after "Cancelled." would otherwise kill the process and lose the exit code 143.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"Received {signal.Signals(signum).name}: stopping at the next step.", flush=True)

    # In the app's own process (ZeroGPU, training/jobs/in_process.py) no signal is meant for
    # the run: the job runner's cancel writes RUN_DIR/stop instead.
    if not args.in_process:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def out_of_time() -> bool:
        return args.stop_at is not None and time.time() >= args.stop_at

    def stop_file() -> bool:
        return args.in_process and rundir.stop_requested(run_dir)

    def stopping() -> bool:  # polled by the backend between steps
        return bool(received) or stop_file() or out_of_time()

    def cancel_code() -> int:  # 143 for SIGTERM, 130 for Ctrl-C, as shells report them
        return 128 + (received[0] if received else signal.SIGTERM)

    capped = None
    try:
        data, problem = load_data(cfg, run_dir if main_rank else None)
        if problem:
            print(f"FAILED: {problem}", file=sys.stderr, flush=True)
            status("failed", reason=problem, advice="Fix the data, then start again.")
            return 1
        print(f"Data: {len(data.train)} training / {len(data.val)} validation examples", flush=True)
        cfg, capped = cap_steps(cfg, len(data.train), args.step_limit, args.step_note)
        if capped:
            print(capped, flush=True)
            status("running", resume=args.resume, reason=capped, phase="preparing data")
        if stopping():
            status("cancelled", reason="Cancelled before training started.")
            return cancel_code()
        from training.backends import get_backend

        result = get_backend(cfg.backend).train(
            cfg, run_dir, data, resume=args.resume, should_stop=stopping
        )
    except KeyboardInterrupt:
        status("cancelled", reason="Stopped immediately (second signal); no adapter saved.")
        return cancel_code()
    except BaseException as exc:  # noqa: BLE001 - every failure must reach status.json
        reason, advice = explain_failure(exc, run_dir)
        traceback.print_exc()
        print(f"FAILED: {reason}" + (f" {advice}" if advice else ""), file=sys.stderr, flush=True)
        if main_rank:  # never resume from (or chat with) half a checkpoint
            rundir.drop_partial_saves(run_dir)
        status("failed", reason=reason, advice=advice)  # on a full disk this may fail too
        return EXIT_DISK_FULL if reason.startswith(rundir.DISK_FULL) else 1
    finally:
        _leave_process_group()
    metrics = result.get("metrics", {})
    if main_rank:
        rundir.write_json_atomic(run_dir / rundir.METRICS, metrics)
    if result["status"] == "cancelled":
        reason = result.get("reason") or "Cancelled; the adapter so far is saved."
        if out_of_time() and not received and not stop_file():
            reason = OUT_OF_TIME
        status("cancelled", reason=reason, metrics=metrics)
        print("Cancelled.", flush=True)
        return cancel_code()
    status("completed", metrics=metrics, reason=capped)
    if main_rank:
        print(f"Completed: adapter in {run_dir / rundir.ADAPTER}", flush=True)
    return 0


def _leave_process_group() -> None:
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
