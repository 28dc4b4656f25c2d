"""Export a run: its adapter as a folder and a .zip, a merged model, a push to the Hub, each
with a model card (README.md) built from the run's config, metrics and evaluation.

    python -m training export RUN_DIR                      # adapter zip (the default)
    python -m training export RUN_DIR --merged --json      # + merged model folder
    python -m training export RUN_DIR --merged-zip         # merged model as one .zip
    HF_TOKEN=hf_... python -m training export RUN_DIR --push me/my-model [--merged] [--public]
    HF_TOKEN=hf_... python -m training export RUN_DIR --demo-space me/my-demo   # + a chat Space

Everything lands in RUN_DIR/export/ (adapter-CKPT/, CKPT zip, merged/, merged zip), each built
in a temp sibling and renamed into place. A zip is streamed to disk file by file (weights
stored as they are: they hardly compress), never held in memory, and refused up front when
the disk has no room for it. Messages name no server path: the app shows them to visitors.
The Hub token is only ever passed to HfApi: never written to disk, a log or a message
(failures are logged with it scrubbed out).

On ZeroGPU (training/zerogpu.py) the merge runs in one `@spaces.GPU` call when it fits in
one (its duration from the model's size), else on the CPU as everywhere else.

Its length: adapter zip, merged model and Hub push share the run lookup and the folder
publishing; the model card lives in model_card.py.
"""

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from training import zerogpu
from training.export import model_card as card
from training.jobs import rundir
from training.jobs.runs import adapter_path, run_config, tokenizer_dir
from training.models.catalogue import chat_tokenizer, hub_id

log = logging.getLogger(__name__)

EXPORT = "export"
_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
REPO_ID = re.compile(rf"{_PART}/{_PART}", re.ASCII)
# What an exported adapter folder holds; checkpoints also carry optimizer state we leave out.
KEEP = ("adapter_config.json", "adapter_model.*", rundir.CONFIG, rundir.METRICS)
STORED = (".safetensors", ".bin", ".pt")  # weights hardly compress: deflate would only cost CPU
DISK_MARGIN = 256 * 1024**2  # room left free after a zip is written, so the app keeps working


class ExportError(Exception):
    """A plain message for the user: nothing exported, and why."""


def check_repo_id(repo_id: str | None) -> str:
    repo_id = (repo_id or "").strip()
    if len(repo_id) > 96 or not REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id:
        raise ExportError(
            "The repository id must look like owner/model-name: letters, digits, '-', '_' "
            "and '.', at most 96 characters."
        )
    return repo_id


def _source(run_dir, checkpoint: str | None) -> tuple[Path, Path, object]:
    run_dir = Path(run_dir)
    if checkpoint not in (None, "", "final") and not re.fullmatch(r"checkpoint-\d+", checkpoint):
        raise ExportError(f"{checkpoint!r} is not a checkpoint: use 'final' or checkpoint-N.")
    if not (run_dir / rundir.CONFIG).is_file():
        raise ExportError(f"This is not a run directory (it has no {rundir.CONFIG}).")
    source = adapter_path(run_dir, checkpoint)
    if not rundir.adapter_ready(source):
        raise ExportError(
            f"The run has no adapter for {checkpoint or 'final'} yet: nothing to export "
            "(wait for training to finish, or pick a checkpoint)."
        )
    return run_dir, source, run_config(run_dir)


def model_card(run_dir, checkpoint="final", kind="adapter", repo_id=None) -> str:
    """README.md for the exported adapter or merged model (training/export/model_card.py)."""
    run_dir, source, cfg = _source(run_dir, checkpoint)
    repo = check_repo_id(repo_id) if repo_id else None
    return card.render(run_dir, source, cfg, checkpoint, kind, repo)


def _staging(target: Path) -> Path:
    """A fresh hidden sibling to build target in (unique: two exports may run at once)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))


def _name(checkpoint: str | None) -> str:
    return "" if checkpoint in (None, "", "final") else f"-{checkpoint}"


def adapter_folder(run_dir, checkpoint="final", repo_id=None) -> Path:
    """RUN_DIR/export/adapter[-checkpoint-N]/: adapter weights and config, tokenizer with
    chat template, run config and metrics, README.md."""
    run_dir, source, cfg = _source(run_dir, checkpoint)
    target = run_dir / EXPORT / f"adapter{_name(checkpoint)}"
    tmp = _staging(target)
    try:
        for pattern in KEEP:
            for file in source.glob(pattern):
                shutil.copy2(file, tmp / file.name)
        if base := hub_id(cfg.model):  # loads from the Hub, not from a path on this machine
            config = json.loads((tmp / "adapter_config.json").read_text(encoding="utf-8"))
            config["base_model_name_or_path"] = base
            (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2), "utf-8")
        chat_tokenizer(
            cfg.model, cfg.trust_remote_code, saved=tokenizer_dir(run_dir, checkpoint)
        ).save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(run_dir, checkpoint, "adapter", repo_id), "utf-8")
        return rundir.replace_folder(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _zip_path(run_dir, checkpoint, out_dir, what: str) -> Path:
    out = Path(out_dir) if out_dir else Path(run_dir) / EXPORT
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]", "_", Path(run_dir).resolve().name)
    return out / f"{stem}{_name(checkpoint)}-{what}.zip"


def _zip(folder: Path, target: Path) -> Path:
    """folder's files (top level) into target, streamed to disk: memory stays flat whatever
    the size. ExportError, before writing, when the disk cannot hold it."""
    files = sorted(f for f in folder.iterdir() if f.is_file())
    size = sum(f.stat().st_size for f in files)
    free = shutil.disk_usage(target.parent).free
    if size + DISK_MARGIN > free:
        raise ExportError(
            f"Not enough disk space on the server for this zip: it needs about {size / 1e9:.1f} GB "
            f"and {free / 1e9:.1f} GB is free. Push it to the Hub instead, or free some space."
        )
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                stored = file.suffix in STORED
                archive.write(file, file.name, zipfile.ZIP_STORED if stored else None)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a download like any other
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def adapter_zip(run_dir, checkpoint="final", out_dir=None) -> Path:
    """The exported adapter folder as one .zip (files at the top level)."""
    folder = adapter_folder(run_dir, checkpoint)
    return _zip(folder, _zip_path(run_dir, checkpoint, out_dir, "adapter"))


def merged_path(run_dir, checkpoint="final") -> Path:
    return Path(run_dir) / EXPORT / f"merged{_name(checkpoint)}"


def fresh(merged: Path, adapter: Path, dtype: str | None = None) -> bool:
    """A merged folder built after the adapter's weights were last written (and, when dtype
    is given, saved in that dtype)."""
    weights = [f.stat().st_mtime for f in adapter.glob("adapter_model.*")]
    config = merged / "config.json"
    if not (bool(weights) and config.is_file() and config.stat().st_mtime >= max(weights)):
        return False
    saved = json.loads(config.read_text(encoding="utf-8"))
    return dtype is None or (saved.get("dtype") or saved.get("torch_dtype")) == dtype


def merged_zip(
    run_dir, checkpoint="final", out_dir=None, trust_remote_code=False, progress=None, fp32=False
) -> Path:
    """The merged model (built first unless fresh) as one .zip, files at the top level. A zip
    already in out_dir and newer than the merged model is handed out again as it is."""
    run_dir, source, cfg = _source(run_dir, checkpoint)
    folder = merged_path(run_dir, checkpoint)
    if not fresh(folder, source, saved_dtype(cfg.model, fp32)):
        merge(
            run_dir, checkpoint, trust_remote_code=trust_remote_code, progress=progress, fp32=fp32
        )
    target = _zip_path(run_dir, checkpoint, out_dir, "merged")
    if target.is_file() and target.stat().st_mtime >= (folder / "config.json").stat().st_mtime:
        return target
    (progress or (lambda message: None))("Zipping the merged model...")
    return _zip(folder, target)


def merge(
    run_dir, checkpoint="final", out_dir=None, trust_remote_code=False, progress=None, fp32=False
) -> Path:
    """Base + adapter merged into plain weights (safetensors, on CPU; on ZeroGPU in one GPU
    call when it fits) with the run's tokenizer and chat template: loads with
    AutoModelForCausalLM alone, no peft needed. Merged in fp32, saved in the base model's
    own dtype (bf16 where the base is bf16: half the size, what its users expect) unless
    fp32."""
    run_dir, _, cfg = _source(run_dir, checkpoint)  # refuse before importing torch
    say = progress or (lambda message: None)
    if zerogpu.active() and zerogpu.merge_seconds(cfg.model) <= zerogpu.MAX_SECONDS:
        say("Merging on a ZeroGPU GPU...")  # the call's progress stays in its process
        out = str(out_dir) if out_dir else None
        return _merge_on_gpu(str(run_dir), checkpoint, out, trust_remote_code, fp32)
    return _merge(run_dir, checkpoint, out_dir, trust_remote_code, say, "cpu", fp32)


def saved_dtype(model: str, fp32: bool = False) -> str:
    """The dtype a merged model is saved in: the base model's ("float32", "bfloat16",
    "float16"; float32 when unknown), or float32 when asked."""
    from training.backends.preflight import load_model_config
    from training.config import DEFAULT_MODEL
    from training.models.bundled import BUNDLED_DTYPE

    if fp32:
        return "float32"
    if model == DEFAULT_MODEL:
        return BUNDLED_DTYPE  # the original's; the offline conversion itself is float32
    try:
        config = load_model_config(model)
    except Exception:
        return "float32"
    dtype = config.get("dtype") or config.get("torch_dtype")
    return dtype if dtype in ("float32", "bfloat16", "float16") else "float32"


def _merge(run_dir, checkpoint, out_dir, trust_remote_code, say, device: str, fp32=False) -> Path:
    run_dir, source, cfg = _source(run_dir, checkpoint)
    import torch
    from peft import PeftModel

    from training.models.catalogue import load_model

    target = Path(out_dir) if out_dir else merged_path(run_dir, checkpoint)
    say(f"Loading the base model {hub_id(cfg.model) or Path(cfg.model).name}...")
    try:
        base = load_model(cfg.model, torch.float32, device, trust_remote_code, progress=say)
    except ValueError as exc:  # remote code refused, model missing: already a plain message
        raise ExportError(str(exc)) from exc
    say("Merging the adapter into the weights...")
    model = PeftModel.from_pretrained(base, source).merge_and_unload()
    model = model.to(getattr(torch, saved_dtype(cfg.model, fp32)))
    tmp = _staging(target)
    try:
        say("Saving the merged model...")
        model.save_pretrained(tmp)
        chat_tokenizer(
            cfg.model, cfg.trust_remote_code, saved=tokenizer_dir(run_dir, checkpoint)
        ).save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(run_dir, checkpoint, "merged"), "utf-8")
        return rundir.replace_folder(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge_in_worker(run_dir, checkpoint, out_dir, trust_remote_code, fp32=False) -> Path:
    """Inside the GPU call: the merge on the GPU it lends."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    say = lambda message: None  # noqa: E731
    return _merge(run_dir, checkpoint, out_dir, trust_remote_code, say, device, fp32)


def _merge_seconds(run_dir, checkpoint, out_dir, trust_remote_code, fp32=False) -> float:
    return zerogpu.merge_seconds(run_config(Path(run_dir)).model)


_merge_on_gpu = zerogpu.gpu(_merge_in_worker, duration=_merge_seconds)


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _hub_error(exc: Exception, repo_id: str) -> str:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "Offline mode is on (HF_HUB_OFFLINE), so nothing can be pushed to the Hub."
    if isinstance(exc, HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        if status == 401:
            return (
                "The Hugging Face token was refused (401): check it is valid and has write access."
            )
        if status == 403:
            return (
                f"This token may not write to {repo_id.split('/')[0]} (403): use a token with "
                "write access to that account or organisation."
            )
        return f"The Hub refused the upload (HTTP {status}); the server log has the details."
    if isinstance(exc, ConnectionError | TimeoutError | httpx2.TransportError):
        return "Could not reach the Hugging Face Hub from this machine: check the network."
    if isinstance(exc, HFValidationError):
        return "The Hub does not accept this repository id: use owner/model-name."
    return "Pushing to the Hub failed; the server log has the details."


def hub_token(token: str | None, env_fallback: bool = True) -> str:
    """The token to push with: the one given, else (env_fallback) HF_TOKEN."""
    token = (token or "").strip()
    if not token and env_fallback:
        token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise ExportError(
            "No Hugging Face token: paste a write token (huggingface.co/settings/tokens)."
            if not env_fallback
            else "No Hugging Face token: give a write token (or set HF_TOKEN)."
        )
    return token


def push(
    folder,
    repo_id,
    token=None,
    private=True,
    commit_message="Upload from Tunesmith",
    env_fallback=True,
) -> str:
    """Create the model repo (if needed) and upload folder to it; return the repo URL.
    token: the argument, else (env_fallback) HF_TOKEN from the environment."""
    repo_id, token = check_repo_id(repo_id), hub_token(token, env_fallback)
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError("Nothing to push: the export folder is missing.")
    from huggingface_hub import HfApi

    try:
        api = HfApi(token=token)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            commit_message=commit_message,
        )
    except Exception as exc:
        log.warning("push to %s failed: %s", repo_id, _scrub(f"{type(exc).__name__}: {exc}", token))
        raise ExportError(_scrub(_hub_error(exc, repo_id), token)) from None  # no token in a chain
    return str(url or f"https://huggingface.co/{repo_id}")


def publish(
    run_dir,
    checkpoint="final",
    kind="adapter",
    repo_id=None,
    token=None,
    private=True,
    trust_remote_code=False,
    progress=None,
    env_fallback=True,
    fp32=False,
) -> str:
    """Export (adapter folder, or merged model) with a card naming the repo, then push it."""
    repo_id = check_repo_id(repo_id)
    hub_token(token, env_fallback)  # refuse before a long merge, not after
    if kind == "merged":
        folder = merged_path(run_dir, checkpoint)
        want = saved_dtype(run_config(Path(run_dir)).model, fp32)
        if not fresh(folder, adapter_path(run_dir, checkpoint), want):
            merge(run_dir, checkpoint, None, trust_remote_code, progress, fp32)
        (folder / "README.md").write_text(model_card(run_dir, checkpoint, kind, repo_id), "utf-8")
    else:
        folder = adapter_folder(run_dir, checkpoint, repo_id)
    message = f"Tunesmith: {'merged model' if kind == 'merged' else 'LoRA adapter'} ({checkpoint})"
    return push(folder, repo_id, token, private, message, env_fallback)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, help="a run directory (holds config.yaml and adapter/)")
    p.add_argument("--checkpoint", default="final", help="'final' or checkpoint-N")
    p.add_argument("--zip", action="store_true", help="write the adapter .zip (default action)")
    p.add_argument("--merged", action="store_true", help="build the merged model folder")
    p.add_argument(
        "--merged-zip", action="store_true", help="build the merged model and write it as a .zip"
    )
    p.add_argument(
        "--push",
        metavar="OWNER/NAME",
        help="push to this Hub repo (the merged model with --merged, else the adapter); "
        "the token is read from the HF_TOKEN environment variable only",
    )
    p.add_argument(
        "--demo-space",
        metavar="OWNER/NAME",
        help="publish a demo Space (a chat page) for the pushed model; without --push the "
        "model is pushed first to the model repo of the same name",
    )
    p.add_argument(
        "--public", action="store_true", help="make new Hub repos public (default private)"
    )
    p.add_argument(
        "--fp32",
        action="store_true",
        help="save the merged model in fp32 (default: the base model's dtype, e.g. bf16)",
    )
    p.add_argument("--trust-remote-code", action="store_true", help="run the base model's own code")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = p.parse_args(argv)
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    result = {
        "run_dir": str(args.run_dir),
        "checkpoint": args.checkpoint,
        "zip": None,
        "merged": None,
        "merged_zip": None,
        "pushed": None,
        "repo_id": args.push,
        "private": not args.public,
        "demo_space": None,
    }
    try:
        if args.demo_space:
            from training.export.demo_space import check_publishable, publish_demo_space

            check_repo_id(args.demo_space)
            check_publishable(args.run_dir, "merged" if args.merged else "adapter")  # before a push
            args.push = args.push or args.demo_space  # model and Space repos may share a name
            result["repo_id"] = args.push
        if args.push:
            check_repo_id(args.push)
        if args.zip or not (args.merged or args.merged_zip or args.push):
            result["zip"] = str(adapter_zip(args.run_dir, args.checkpoint))
        if args.merged and not args.push:  # with --push, publish builds it (once)
            merge(args.run_dir, args.checkpoint, None, args.trust_remote_code, say, args.fp32)
        if args.merged_zip:
            zipped = merged_zip(
                args.run_dir, args.checkpoint, None, args.trust_remote_code, say, args.fp32
            )
            result["merged_zip"] = str(zipped)
        if args.merged or args.merged_zip:
            result["merged"] = str(merged_path(args.run_dir, args.checkpoint))
        if args.push:
            kind = "merged" if args.merged else "adapter"
            result["pushed"] = publish(
                args.run_dir,
                args.checkpoint,
                kind,
                args.push,
                None,
                not args.public,
                args.trust_remote_code,
                say,
                fp32=args.fp32,
            )
        if args.demo_space:
            kind = "merged" if args.merged else "adapter"
            result["demo_space"] = publish_demo_space(
                args.run_dir, args.demo_space, args.push, None, not args.public, kind
            )
    except (ExportError, ValueError, OSError) as exc:  # a plain message, never a traceback
        print(
            json.dumps({"error": str(exc)}) if args.json else f"error: {exc}",
            file=sys.stdout if args.json else sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("zip", "merged", "merged_zip", "pushed", "demo_space"):
            if result[key]:
                print(f"{key}: {result[key]}")
    return 0
