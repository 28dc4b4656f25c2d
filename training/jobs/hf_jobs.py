"""Runs sent to Hugging Face Jobs: the same worker on a rented GPU, followed from here.

    run = RemoteRun(run_dir, "a10g-small", token)   # a thread; the job runner treats it as a
    run.poll()                                      # worker: None while it runs, then the code

In order, each step written to the run directory as a local worker writes it:
1. A private dataset repo of the token's owner, USER/tunesmith-RUN_ID, gets the run: its
   data normalised (data/train.jsonl, data/validation.jsonl), config.yaml naming them, and
   Tunesmith's training package with requirements.txt (the app's pinned versions).
2. `run_job` starts it on the flavour, in uv's image: download the repo, install the pinned
   requirements, `python -m training.jobs.hf_entry` (the worker, under accelerate launch on a
   flavour with several GPUs). The token reaches the job only as its HF_TOKEN secret.
3. `fetch_job_logs` streams the job's output into train.log; its `[progress]` lines become
   progress.jsonl records and its `[phase]` lines the status phase, so the Train tab's chart
   and status follow it as they follow a local run. `inspect_job` says when it has ended.
4. The job uploads its run directory's results to the repo (output/); they come back here:
   adapter/ (so the Playground, Evaluate and Export work unchanged), progress.jsonl,
   metrics.json and the worker's own final status. A failed job's reason is the worker's
   FAILED line, else the last error in its log, else what the Hub says.
Cancel: RUN_DIR/stop (the job runner's cancel of a run without a process) -> `cancel_job`.

The token lives in this object only: never in a file, the log, a config or the job's
command. After an app restart nothing follows the job any more (status.json keeps its URL).

Its length: the flavours with their prices, the upload, the job and following it to its
results are one conversation with the Hub and read best in one place; the job's own side is
hf_entry.py, the command line submit.py.
"""

import json
import logging
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from training.config import DEFAULT_MODEL, RunConfig
from training.hardware import Hardware
from training.jobs import rundir
from training.paths import REPO_ROOT

log = logging.getLogger(__name__)

DEVICE = "hf-jobs:"  # a remote run's device in the job store: hf-jobs:FLAVOR:RUN_ID
IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"  # huggingface_hub's image for uv jobs
PYTHON = "3.11"  # the app's own Python; uv fetches it in the job
UI_ONLY = ("gradio", "spaces")  # requirements the worker never imports
OUTPUT = "output"  # where the job puts its results in the repo
RESULTS = ["adapter/*", "status.json", "progress.jsonl", "metrics.json", "skipped_rows.jsonl"]
INSTALL_S = 180.0  # uv installing the pinned requirements in the job (torch with CUDA: GBs),
# billed like training; assumed, not measured (no Jobs account here)
POLL_S = 5.0  # the job's stage, asked every 0.25, 0.5, 1... s, then every POLL_S
JOB_SCRIPT = """set -eu
uvx --python {python} --from huggingface_hub=={hub} hf download "$TUNESMITH_REPO" \\
    --repo-type dataset --local-dir /tunesmith
cd /tunesmith
exec uv run --no-project --python {python} --with-requirements requirements.txt \\
    python -m training.jobs.hf_entry
"""
STAGES = {  # the Hub's job stage -> (our status, reason, the worker's exit code)
    "COMPLETED": ("completed", None, 0),
    "ERROR": ("failed", "The job failed on Hugging Face.", 1),
    "CANCELED": ("cancelled", "Cancelled: the job on Hugging Face was stopped.", 143),
    "DELETED": ("failed", "The job was deleted on Hugging Face.", 1),
}


@dataclass(frozen=True)
class Flavor:
    name: str  # run_job's flavor
    gpu: str  # as torch names it, for the pre-flight's speed table
    count: int  # GPUs
    gpu_gb: float  # memory of one GPU, GB as sold
    usd_per_hour: float
    precision: str  # bf16 on Ampere and newer, fp16 on a T4

    def hardware(self) -> Hardware:
        return Hardware("cuda", self.gpu, self.gpu_gb * 1e9 / 2**30, self.precision, self.count)

    def label(self) -> str:
        gpus = f"{self.count}x " if self.count > 1 else ""
        return f"{self.name} ({gpus}{self.gpu}, {self.gpu_gb:.0f} GB, ${self.usd_per_hour:.2f}/h)"


# GPU flavours and prices from https://huggingface.co/docs/hub/jobs-pricing (read 2026-12-02;
# billed by the minute while the job starts and runs; `hf jobs hardware` lists today's).
PRICES_SOURCE = "huggingface.co/docs/hub/jobs-pricing, read 2026-12-02"
FLAVORS = {
    f.name: f
    for f in (
        Flavor("t4-small", "NVIDIA T4", 1, 16, 0.40, "fp16"),
        Flavor("t4-medium", "NVIDIA T4", 1, 16, 0.60, "fp16"),
        Flavor("l4x1", "NVIDIA L4", 1, 24, 0.80, "bf16"),
        Flavor("a10g-small", "NVIDIA A10G", 1, 24, 1.00, "bf16"),
        Flavor("a10g-large", "NVIDIA A10G", 1, 24, 1.50, "bf16"),
        Flavor("l40sx1", "NVIDIA L40S", 1, 48, 1.80, "bf16"),
        Flavor("a100-large", "NVIDIA A100", 1, 80, 2.50, "bf16"),
        Flavor("h200", "NVIDIA H200", 1, 141, 5.00, "bf16"),
        Flavor("a10g-largex2", "NVIDIA A10G", 2, 24, 3.00, "bf16"),
        Flavor("l4x4", "NVIDIA L4", 4, 24, 3.80, "bf16"),
        Flavor("l40sx4", "NVIDIA L40S", 4, 48, 8.30, "bf16"),
        Flavor("a100x4", "NVIDIA A100", 4, 80, 10.00, "bf16"),
        Flavor("h200x2", "NVIDIA H200", 2, 141, 10.00, "bf16"),
        Flavor("a100x8", "NVIDIA A100", 8, 80, 20.00, "bf16"),
        Flavor("h200x8", "NVIDIA H200", 8, 141, 40.00, "bf16"),
    )
}


@dataclass
class Suggestion:
    flavor: Flavor | None
    line: str  # the pre-flight's sentence about it
    seconds: float | None = None  # the run on it, start to finish


def suggest(cfg: RunConfig, stats: dict | None, model_config: dict | None = None) -> Suggestion:
    """The flavour where this run costs least: the one-GPU flavours whose GPU holds the run
    (pre-flight peak under 85 %), by price x estimated time; when none does, the cheapest
    flavour whose GPUs hold it sharded with FSDP (weights and optimizer split N ways)."""
    from training.backends.preflight import FITS, estimate

    costs = []
    for f in FLAVORS.values():
        pf = estimate(cfg, stats, hardware=f.hardware(), model_config=model_config)
        if pf.peak_gb is None:
            return Suggestion(None, pf.lines[-1])
        usable = FITS * pf.device_gb
        shared = pf.memory_gb["weights"] + pf.memory_gb["adapter + optimizer"]
        if f.count == 1 and pf.peak_gb <= usable:
            hours = ((pf.seconds or 3600) + INSTALL_S) / 3600
            costs.append((hours * f.usd_per_hour, 0, f, pf.seconds))
        elif f.count > 1 and pf.peak_gb - shared * (1 - 1 / f.count) <= usable:
            costs.append((f.usd_per_hour, 1, f, None))  # only when no single GPU holds it
    if not costs:
        return Suggestion(None, "No Hugging Face Jobs flavour holds this run: see the tips above.")
    cost, sharded, flavor, seconds = min(costs, key=lambda c: (c[1], c[0]))
    how = f"its {flavor.count} GPUs with FSDP" if sharded else "one GPU"
    money = f"${flavor.usd_per_hour:.2f}/h"
    if seconds:
        price = f"about ${cost:.2f}" if cost >= 0.01 else "under $0.01"
        minutes = round((seconds + INSTALL_S) / 60)
        money += f", {price} for the run (~{minutes} min with installing)"
    line = (
        f"On Hugging Face Jobs: **{flavor.name}** ({flavor.gpu}, {flavor.gpu_gb:.0f} GB) holds it "
        f"on {how}: {money} (prices: {PRICES_SOURCE})."
    )
    return Suggestion(flavor, line, seconds)


def remote_config(cfg: RunConfig) -> RunConfig:
    """The config as the job runs it: the model by Hub id, data paths inside the repo. A
    ValueError (plain words) for what a job cannot load from here."""
    from training.models.access import is_hub_id
    from training.models.bundled import BUNDLED_HUB_ID

    model = BUNDLED_HUB_ID if cfg.model == DEFAULT_MODEL else cfg.model
    if not is_hub_id(model):
        raise ValueError(
            "A job on Hugging Face loads its model from the Hub: choose a Hub model "
            "(owner/name), not a folder on this machine."
        )
    if cfg.init_adapter:
        raise ValueError("Continuing from an adapter is not possible on Hugging Face Jobs yet.")
    if cfg.backend != "lora":
        raise ValueError("Hugging Face Jobs train with the LoRA backend (TRL + PEFT).")
    return replace(cfg, model=model, column_mapping={}, format=None)


def prepare(cfg: RunConfig, folder: Path) -> RunConfig:
    """Write what the job needs into folder (see the module docstring); the config it runs."""
    from training.data.choice import load_splits

    remote = remote_config(cfg)
    train, val = load_splits(cfg)
    if not train:
        raise ValueError("No training rows could be read from the data.")
    (folder / "data").mkdir(parents=True)
    for name, rows in (("train", train), ("validation", val)):
        if rows:
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            (folder / "data" / f"{name}.jsonl").write_text(text, encoding="utf-8")
    remote = replace(
        remote,
        data="data/train.jsonl",
        validation_file="data/validation.jsonl" if val else None,
        validation_split=0.0,
    )
    remote.to_yaml(folder / rundir.CONFIG)
    shutil.copytree(
        REPO_ROOT / "training", folder / "training", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO_ROOT / "configs" / "accelerate", folder / "configs" / "accelerate")
    (folder / "requirements.txt").write_text("\n".join(job_requirements()) + "\n")
    return remote


def job_requirements() -> list[str]:
    """requirements.txt's pinned lines the worker needs (the UI's left out)."""
    lines = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [line for line in wanted if re.split(r"[\[=<>; ]", line)[0] not in UI_ONLY]


def job_command() -> list[str]:
    from importlib.metadata import version

    return ["bash", "-c", JOB_SCRIPT.format(python=PYTHON, hub=version("huggingface_hub"))]


def rough_size(jsonl: bytes, max_length: int) -> dict:
    """Normalised rows' size as the pre-flight reads a report's statistics, counted roughly
    (~4 bytes of JSON a token; no tokenizer here): enough for a time limit or a price."""
    examples = jsonl.count(b"\n")
    tokens = min(len(jsonl) // 4, examples * max_length)
    return {"examples": examples, "total_training_tokens": tokens, "max_length": max_length}


def timeout_for(seconds: float | None) -> str:
    """The job's time limit: three times the estimate plus half an hour for installing, at
    least an hour (the Hub's default, 30 minutes, would stop most runs half way)."""
    return f"{max(60, round(3 * (seconds or 3600) / 60 + 30))}m"


_PROGRESS = re.compile(r"\[progress\] \d+/(\d+) (.*)")
_PHASE = re.compile(r"\[phase\] (.+?)(?: \(at [^)]*\))?$")


def progress_record(line: str) -> dict | None:
    """A `[progress] 3/30 step=3 loss=1.2 ...` line (training/backends/callbacks.py) as its
    progress.jsonl record; None for any other line."""
    found = _PROGRESS.search(line)
    if not found:
        return None
    record = {"total_steps": int(found.group(1))}
    for pair in found.group(2).split():
        key, _, text = pair.partition("=")
        value = None if text == "None" else text
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        record[key] = value
    return record if "step" in record else None


class RemoteRun:
    """What the job runner needs of a worker process (pid, poll, wait, returncode), for a
    run on Hugging Face Jobs. api: an HfApi (tests point it at a stand-in)."""

    pid = 0  # no process here: the runner's cancel writes RUN_DIR/stop, which this watches

    def __init__(self, run_dir, flavor: str, token: str, api=None):
        from huggingface_hub import HfApi

        if flavor not in FLAVORS:
            raise ValueError(f"Unknown Hugging Face Jobs flavour {flavor!r}.")
        self.run_dir, self.flavor = Path(run_dir), FLAVORS[flavor]
        self._api = api or HfApi(token=token)
        self._token = token
        self.job: dict | None = None  # id, url, repo, flavor once the Hub has the job
        self.returncode: int | None = None
        self._thread = threading.Thread(target=self._run, name="hf-job", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:  # never the token
        return f"RemoteRun({self.run_dir.name}, {self.flavor.name})"

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._thread.join(timeout)
        return self.poll()

    def _run(self) -> None:
        try:
            self.returncode = self._train()
        except Exception as exc:  # the Hub refused, or the network went: a plain status
            log.warning("remote run %s failed: %s", self.run_dir.name, type(exc).__name__)
            reason = f"Hugging Face Jobs: {_plain(exc)}"
            self._log(f"FAILED: {reason}")
            if rundir.read_status(self.run_dir).get("status") not in rundir.FINAL:
                rundir.write_status(self.run_dir, "failed", reason, **self._facts())
            self.returncode = 1
        finally:
            self._token = self._api = None  # the HfApi holds the token too

    def _facts(self) -> dict:
        return {"hf_job": self.job}

    def _log(self, line: str) -> None:
        with open(self.run_dir / rundir.LOG, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")

    def _status(self, phase: str) -> None:
        where = f"On Hugging Face Jobs, {self.flavor.label()}"
        if self.job:
            where += f": {self.job['url']}"
        rundir.write_status(self.run_dir, "running", where, phase=phase, **self._facts())
        self._log(f"[phase] {phase}")

    def _train(self) -> int:
        api, run_dir = self._api, self.run_dir
        cfg = RunConfig.from_yaml(run_dir / rundir.CONFIG)
        self._status("uploading the data to a private dataset repo")
        user = api.whoami()["name"]
        repo = f"{user}/tunesmith-{run_dir.name}"
        with tempfile.TemporaryDirectory(prefix="tunesmith-job-") as tmp:
            remote = prepare(cfg, Path(tmp))
            train = (Path(tmp) / "data" / "train.jsonl").read_bytes()
            size = rough_size(train, remote.max_length)
            api.create_repo(repo, repo_type="dataset", private=True, exist_ok=True)
            api.upload_folder(
                repo_id=repo,
                repo_type="dataset",
                folder_path=tmp,
                commit_message=f"Tunesmith run {run_dir.name}",
            )
        if rundir.stop_requested(run_dir):
            rundir.write_status(run_dir, "cancelled", "Cancelled before the job started.")
            return 143
        from training.backends.preflight import estimate

        info = api.run_job(
            image=IMAGE,
            command=job_command(),
            env={"TUNESMITH_REPO": repo, "PYTHONUNBUFFERED": "1"},
            secrets={"HF_TOKEN": self._token},
            flavor=self.flavor.name,
            timeout=timeout_for(estimate(remote, size, hardware=self.flavor.hardware()).seconds),
            labels={"tunesmith": run_dir.name},
            namespace=user,
        )
        self.job = {"id": info.id, "url": info.url, "repo": repo, "flavor": self.flavor.name}
        self._log(f"=== {time.ctime()}: Hugging Face job {info.id} on {self.flavor.name}")
        self._status(f"waiting for a {self.flavor.name} machine")
        logs = threading.Thread(target=self._follow_logs, args=(user,), daemon=True)
        logs.start()
        stage = self._wait_for_the_end(user)
        logs.join(timeout=30)
        return self._finish(stage, repo)

    def _wait_for_the_end(self, user: str) -> str:
        cancelled, asked = False, 0
        while True:
            if rundir.stop_requested(self.run_dir) and not cancelled:
                self._log("Cancelling the job on Hugging Face.")
                self._api.cancel_job(job_id=self.job["id"], namespace=user)
                cancelled = True
            stage = str(self._api.inspect_job(job_id=self.job["id"], namespace=user).status.stage)
            stage = stage.rsplit(".", 1)[-1]  # an enum's str on older Pythons
            if stage in STAGES:
                return stage
            if stage == "RUNNING" and rundir.read_status(self.run_dir).get("phase", "").startswith(
                "waiting for"
            ):
                self._status("installing Tunesmith in the job")
            asked += 1
            time.sleep(min(POLL_S, 0.25 * 2 ** min(asked - 1, 8)))

    def _follow_logs(self, user: str) -> None:
        """The job's log lines into train.log, its progress and phases into the run's files."""
        try:
            for line in self._api.fetch_job_logs(
                job_id=self.job["id"], namespace=user, follow=True
            ):
                self._log(line)
                if record := progress_record(line):
                    rundir.append_progress(self.run_dir, record)
                elif found := _PHASE.search(line):
                    rundir.note_status(self.run_dir, phase=found.group(1))
        except Exception as exc:  # the stage loop still ends the run
            self._log(f"(the job's log stopped streaming: {_plain(exc)})")

    def _finish(self, stage: str, repo: str) -> int:
        status, reason, code = STAGES[stage]
        worker = self._fetch_results(repo)
        advice = None
        if worker.get("status") in rundir.FINAL:  # the worker's own word wins
            status, reason, advice = worker["status"], worker.get("reason"), worker.get("advice")
        elif status == "failed":
            reason = f"{reason} {_last_error(self.run_dir)}".strip()
        if status == "completed" and not rundir.adapter_complete(self.run_dir):
            status, reason, code = "failed", "The job ended without an adapter.", 1
        extra = {k: worker[k] for k in ("metrics",) if k in worker}
        rundir.write_status(self.run_dir, status, reason, advice, **extra, **self._facts())
        return code if status != "completed" else 0

    def _fetch_results(self, repo: str) -> dict:
        """The job's results into the run directory; the worker's final status (or {})."""
        with tempfile.TemporaryDirectory(prefix="tunesmith-results-") as tmp:
            try:
                self._api.snapshot_download(
                    repo_id=repo,
                    repo_type="dataset",
                    local_dir=tmp,
                    allow_patterns=[f"{OUTPUT}/{pattern}" for pattern in RESULTS],
                )
            except Exception as exc:  # a job that failed early uploaded nothing
                self._log(f"(no results came back from the job: {_plain(exc)})")
                return {}
            out = Path(tmp) / OUTPUT
            if rundir.adapter_ready(out / rundir.ADAPTER):
                staging = rundir.adapter_staging(self.run_dir)
                shutil.copytree(out / rundir.ADAPTER, staging, dirs_exist_ok=True)
                rundir.publish_adapter(self.run_dir)
            for name in (rundir.PROGRESS, rundir.METRICS, "skipped_rows.jsonl"):
                if (out / name).is_file():
                    shutil.copy2(out / name, self.run_dir / name)
            try:
                return json.loads((out / rundir.STATUS).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}


def _last_error(run_dir: Path) -> str:
    """The worker's FAILED line, else the last line naming an error, from the job's log."""
    lines = [line.strip() for line in rundir.tail_log(run_dir, 20_000).splitlines()]
    failed = [line.removeprefix("FAILED: ") for line in lines if line.startswith("FAILED: ")]
    errors = [line for line in lines if "Error" in line or "error:" in line]
    return ((failed or errors or [""])[-1])[:500]


REFUSALS = {  # the Hub's answer -> what to do about it
    401: "The Hub refused the token: sign in again, or paste a token with write access.",
    402: "Your Hugging Face account has no credit for Jobs: add some in its billing settings.",
    403: "The token may not do this: it needs write access (repositories and Jobs).",
}


def _plain(exc: Exception) -> str:
    """An error in one line: what to do about a refusal, else its first line (the Hub's
    errors never hold the token, but one line is all the status needs)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return REFUSALS.get(status) or (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def lost_reason(run_dir: str) -> str:
    """Why a remote run shows as interrupted after an app restart."""
    job = rundir.read_status(run_dir).get("hf_job") or {}
    where = f" It may still be running: {job['url']}" if job.get("url") else ""
    return (
        "The app restarted and no longer follows this Hugging Face job (it keeps no token)." + where
    )
