"""The AutoTrain backend: Hugging Face AutoTrain Advanced 0.8.36, run from its own venv.

AutoTrain pins transformers 4.48 / peft 0.14 / trl 0.13, so it lives in its own venv
(scripts/setup_autotrain.sh; where: autotrain_config.venv_dir(); built in the background by
the app: `start_background_install()` / `install_state()`, autotrain_install.py) and runs as
`autotrain --config RUN_DIR/autotrain/autotrain.yml` in its own session. This module, inside
our worker, does what AutoTrain does not:

- the RunConfig becomes AutoTrain's YAML (the same file "Export as AutoTrain config"
  writes), the normalised data its folder layout (data/train.jsonl: `messages` + the
  tokenizer's chat template, or `text`), the base model a folder transformers 4.48 reads;
- its environment loses SPACE_ID / ENDPOINT_ID (it would pause the hosting Space) and every
  token; ALLOW_REMOTE_CODE follows trust_remote_code (AutoTrain trusts remote code by default);
- its output is parsed into progress.jsonl (training/backends/autotrain_log.py); success is judged from
  the log and the adapter files, never the exit code (it exits 0 when training failed);
- cancel stops the whole tree (guard -> autotrain -> accelerate -> trainer) by process
  group; a guard process kills the group if our worker dies without doing so;
- the adapter is copied into RUN_DIR/adapter/ with a tokenizer saved by our transformers and
  the chat template AutoTrain trained with, so playground, evaluation and export need no
  AutoTrain-specific code.

AutoTrain differences worth knowing: it packs examples into max_length blocks and puts loss
on every token (no assistant-only masking); it trains whole epochs (max_steps becomes an
epoch count); its CLI drops the validation split and keeps no checkpoints, so a resume
starts over and a cancelled run has no adapter.

Its length: AutoTrain's process lifecycle (environment, progress translation, cancel,
adapter hand-back) is one backend; its config and log parsing live in autotrain_config.py
and autotrain_log.py.
"""

import json
import os
import select
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

from training.backends.autotrain_config import (  # noqa: F401 (available, install, export_config: the protocol)
    autotrain_env,
    available,
    compat_model_dir,
    epochs_for,
    export_config,
    flavour,
    install,
    params_for,
    project_name,
    venv_dir,
    write_data,
    write_yaml,
)
from training.backends.autotrain_install import (  # noqa: F401 (the Train tab's API)
    InstallState,
    install_state,
    start_background_install,
)
from training.backends.autotrain_log import AutoTrainLog
from training.config import RunConfig
from training.jobs import rundir

STOP_GRACE_S = 5.0  # AutoTrain saves nothing on SIGTERM; the grace only lets it exit cleanly
# Group leader between us and AutoTrain: if our worker dies without stopping the tree
# (SIGKILL, OOM killer), its parent changes and it takes the whole group down.
GUARD = """\
import os, signal, subprocess, sys
parent = os.getppid()
child = subprocess.Popen(sys.argv[1:])
while True:
    try:
        sys.exit(child.wait(timeout=1))
    except subprocess.TimeoutExpired:
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)
"""
ADVICE = {  # AutoTrain message fragment -> what to do about it
    "Incorrect path_or_model_id": "Check the base model: a local model folder or a Hub id.",
    "does not recognize this architecture": (
        "AutoTrain 0.8.36 runs transformers 4.48, which predates this model: train it with "
        "the LoRA backend instead."
    ),
}  # (out-of-memory advice comes from the worker, which spots "out of memory" in any message)


def train(cfg: RunConfig, run_dir: Path, data, *, resume: bool, should_stop) -> dict:
    ok, why = available()
    if not ok:
        raise ValueError(why)
    if cfg.init_adapter:
        raise ValueError(
            "AutoTrain cannot continue training an existing adapter; use the LoRA backend."
        )
    run_dir = Path(run_dir)
    work = run_dir / "autotrain"
    shutil.rmtree(work, ignore_errors=True)  # no checkpoints to keep: every start is fresh
    work.mkdir(parents=True)
    if resume:
        rundir.keep_progress_until(run_dir, 0)
        print("[autotrain] AutoTrain keeps no checkpoints: training starts again.", flush=True)
    precision = _gpu_precision()
    if cfg.method == "qlora" and not precision:
        raise ValueError(
            "4-bit QLoRA needs an NVIDIA GPU and AutoTrain built with "
            "`bash scripts/setup_autotrain.sh --gpu`; choose method 'lora' to train here."
        )
    chat = write_data(data, work / "data")
    model_dir, base = prepare_model(cfg, work)
    epochs = epochs_for(cfg, data, base, chat)
    params = params_for(
        cfg,
        model=str(model_dir),
        data_dir=str(work / "data"),
        chat=chat,
        project=project_name(run_dir),
        epochs=epochs,
        precision=precision,
        has_val=bool(data.val),
    )
    config = write_yaml(params, work / "autotrain.yml")
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.max_length
    log = AutoTrainLog(cfg.logging_steps, tokens_per_step)
    status = _run(config, work, run_dir, cfg, log, should_stop)
    if status == "cancelled":
        return {
            "status": "cancelled",
            "metrics": _metrics(log, len(data.train)),
            "reason": "Cancelled. AutoTrain saves no partial adapter, so this run has none.",
        }
    project = work / params["project_name"]
    problem = log.failure() or _missing_adapter(project, log)
    if problem:
        advice = next((a for k, a in ADVICE.items() if k.lower() in problem.lower()), "")
        raise ValueError(f"AutoTrain failed: {problem} {advice}".strip())
    metrics = {
        **_metrics(log, len(data.train)),
        "device": f"cuda ({precision})" if precision else "cpu",
    }
    save_adapter(project, base, cfg, run_dir, metrics)
    return {"status": "completed", "metrics": metrics}


def _gpu_precision() -> str | None:
    """'bf16' / 'fp16' when AutoTrain will train on a GPU, None on CPU. A CPU-built
    AutoTrain venv trains on the CPU even where our own torch sees a GPU."""
    if flavour() != "gpu":
        return None
    from training.hardware import detect

    hw = detect()
    return hw.precision if hw.cuda and hw.precision != "fp32" else None


def prepare_model(cfg: RunConfig, work: Path) -> tuple[Path | str, Path | None]:
    """(what AutoTrain loads, our local base folder or None). A name we cannot resolve goes
    to AutoTrain unchanged, so the user sees AutoTrain's own error for it."""
    from training.models.catalogue import resolve_model

    try:
        target = resolve_model(cfg.model)
    except ValueError:
        return cfg.model, None
    if isinstance(target, str):  # a Hub id, Hub reachable: download with our token, not its
        from huggingface_hub import snapshot_download

        skip = ["*.onnx*", "onnx/*", "*.gguf", "*.h5", "*.msgpack", "*.ot", "*.tflite"]
        target = Path(snapshot_download(target, ignore_patterns=skip))
    return compat_model_dir(Path(target), work / "base-model"), Path(target)


def _run(config: Path, work: Path, run_dir: Path, cfg, log: AutoTrainLog, should_stop) -> str:
    """Run AutoTrain to its end ('completed', judged later) or until should_stop()
    ('cancelled'). Raw output goes to autotrain/autotrain.log; readable lines to our stdout,
    which the job runner sends to train.log (run by hand, we append to train.log ourselves)."""
    import codecs
    import subprocess

    venv = venv_dir()
    autotrain = [str(venv / "bin" / "autotrain"), "--config", str(config)]
    echo = None if _stdout_is(run_dir / rundir.LOG) else open(run_dir / rundir.LOG, "a")  # noqa: SIM115
    _say(f"[autotrain] $ {shlex.join(autotrain)}", echo)
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c", GUARD, *autotrain],
        cwd=work,
        env=autotrain_env(os.environ, cfg.trust_remote_code, work),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole, never half
    )
    _note_status(run_dir, autotrain_pgid=proc.pid)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # chunks split characters
    started = None  # when the training loop began: elapsed is ours, tqdm's has 1 s steps
    try:
        with open(work / "autotrain.log", "ab") as raw:
            while True:
                if should_stop():
                    _say("[autotrain] stopping AutoTrain (its whole process group)", echo)
                    stop_group(proc)
                    return "cancelled"
                ready, _, _ = select.select([proc.stdout], [], [], 0.5)
                chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
                raw.write(chunk)
                # Done at end of output, or when the guard exited and a straggler holds the pipe.
                done = not chunk and (bool(ready) or proc.poll() is not None)
                events = log.feed(decoder.decode(chunk, final=done))
                for kind, value in events + (log.flush() if done else []):
                    if kind == "phase":
                        started = started or (time.monotonic() if value == "training" else None)
                        _note_status(run_dir, phase=value)
                        continue
                    if kind == "progress":
                        if started:
                            value["elapsed"] = round(time.monotonic() - started, 2)
                        rundir.append_progress(run_dir, value)
                        shown = " ".join(f"{k}={v}" for k, v in value.items() if k != "total_steps")
                        value = f"[progress] {value['step']}/{value['total_steps']} {shown}"
                    _say(value, echo)
                if done:
                    _say(f"[autotrain] exited with code {proc.wait()}", echo)
                    # A cancel signals every process group under the worker, AutoTrain's too
                    # (training/jobs/runner.py): it may end before this loop sees the stop.
                    return "cancelled" if should_stop() else "completed"
    finally:
        stop_group(proc)  # stragglers; also on a second signal or an error in this loop
        if echo:
            echo.close()


def _say(line: str, echo) -> None:
    print(line, flush=True)
    if echo:
        echo.write(line + "\n")
        echo.flush()


def _stdout_is(path: Path) -> bool:
    try:
        a, b = os.fstat(sys.stdout.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _note_status(run_dir: Path, **fields) -> None:
    """Add fields to the worker's 'running' status (the job runner can find AutoTrain's
    process group there; the UI can show the phase)."""
    current = rundir.read_status(run_dir)
    if current.get("status") != "running":
        return
    keep = {k: v for k, v in current.items() if k not in ("status", "reason", "advice", "updated")}
    rundir.write_status(run_dir, "running", **{**keep, **fields})


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    if not Path("/proc/self").exists():  # not Linux: "is anyone left" is all we can ask
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def stop_group(proc, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM to AutoTrain's whole process group, SIGKILL to whatever is left after grace."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        proc.poll()  # reap the leader, so it does not count as alive
        if not group_members(proc.pid):
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not group_members(proc.pid):
                return
            time.sleep(0.1)


def _missing_adapter(project: Path, log: AutoTrainLog) -> str | None:
    if (project / "adapter_config.json").is_file() and (
        project / "adapter_model.safetensors"
    ).is_file():
        return None
    last = log.error or log.last_exception
    return "it finished without writing an adapter" + (f" (last error: {last})" if last else ".")


def _metrics(log: AutoTrainLog, examples: int) -> dict:
    summary, last = log.summary, log.last
    metrics = {
        "steps": last.get("step", 0),
        "total_steps": log.total_steps,
        "epoch": last.get("epoch"),
        "final_loss": last.get("loss"),
        "train_examples": examples,
        "backend": "autotrain",
    }
    if summary:
        metrics["train_loss"] = round(float(summary.get("train_loss", 0.0)), 6)
        metrics["train_runtime_s"] = summary.get("train_runtime")
    return metrics


def save_adapter(project: Path, base: Path | None, cfg: RunConfig, run_dir: Path, metrics: dict):
    """AutoTrain's adapter, normalised into RUN_DIR/adapter/ in one rename: weights as
    trained; adapter_config pointing at the real base model (not our compat view); the
    tokenizer saved by our transformers with the chat template AutoTrain trained with."""
    from transformers import AutoTokenizer

    staging = rundir.adapter_staging(run_dir)
    shutil.copy2(project / "adapter_model.safetensors", staging)
    adapter_config = json.loads((project / "adapter_config.json").read_text(encoding="utf-8"))
    if base is not None:
        adapter_config["base_model_name_or_path"] = str(base)
    (staging / "adapter_config.json").write_text(
        json.dumps(adapter_config, indent=2), encoding="utf-8"
    )
    tok = AutoTokenizer.from_pretrained(base or project, trust_remote_code=cfg.trust_remote_code)
    trained = json.loads((project / "tokenizer_config.json").read_text(encoding="utf-8"))
    jinja = project / "chat_template.jinja"
    template = trained.get("chat_template") or (jinja.is_file() and jinja.read_text("utf-8"))
    if template:
        tok.chat_template = template
    tok.save_pretrained(staging)
    for extra in ("training_params.json", "README.md"):
        if (project / extra).is_file():
            shutil.copy2(project / extra, staging / ("autotrain_" + extra.lower()))
    cfg.to_yaml(staging / rundir.CONFIG)
    rundir.write_json_atomic(staging / rundir.METRICS, metrics)
    return rundir.publish_adapter(run_dir)
