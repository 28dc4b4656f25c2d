"""The journey a script runs with gradio_client, as named API endpoints (no page needed):

    /new_visitor()                                   -> an id for an anonymous script to keep
    /validate(file)                                  -> the validation report (JSON)
    /train(file, config, visitor, hf_token)          -> {"run", "status", "message"}
    /job_status(run, visitor, hf_token)              -> {"run", "status", "step", "loss", ...}
    /cancel(run, visitor, hf_token)                  -> the same, once asked to stop
    /evaluate(run, limit, visitor, hf_token)         -> the evaluation's figures and verdict
    /push(run, repo_id, kind, private, visitor, hf_token) -> the Hub repo's URL

Who a call is for: `hf_token` (a Hugging Face token; its owner is "hf:<username>", exactly as
signing in on the page, so the script sees that person's runs) or else `visitor` (an id from
/new_visitor, as a browser keeps one). The pages' rules apply unchanged: the owner's
TUNESMITH_WHO_MAY_TRAIN, per-visitor limits, the model access rule (remote code only where
the app allows it), and a run is seen, cancelled, evaluated or pushed only by its owner.
`config` (JSON) sets only the settings the Train tab shows (model, method, backend and its
hyperparameters): paths on the server (a validation file, an adapter to continue from) are
not the caller's to choose. Every failure is a plain message (gr.Error), never a traceback.
"""

import hashlib
import json
import logging
import time

import gradio as gr

from components import train_format as tf
from components.visitor import BROWSER_ID, ensure_owner
from training import tracking
from training.backends import get_backend
from training.data import DataChoice, validate_file
from training.export import export
from training.jobs import runs
from training.jobs.runner import JobRunner
from training.models.access import check_base_model, check_remote_code, training_refusal
from training.models.catalogue import default_model, load_tokenizer
from training.settings import Settings

log = logging.getLogger(__name__)

SETTABLE = ("model", "method", "backend", *tf.HYPER)  # what a script may set, as the page
WHO_TTL_S = 300  # a token's username is asked of the Hub again after this long
_who: dict[str, tuple[float, str, list[str]]] = {}  # sha256(token) -> (when, owner, orgs)


def who_is(visitor: str, hf_token: str) -> tuple[str, str | None, list[str]]:
    """(owner, username or None, organisations) for a call; gr.Error when neither is usable."""
    token = (hf_token or "").strip()
    if token:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = _who.get(key)
        if cached and time.monotonic() - cached[0] < WHO_TTL_S:
            return cached[1], cached[1].removeprefix(runs.SIGNED_IN), cached[2]
        try:
            from huggingface_hub import whoami

            info = whoami(token=token)
        except Exception:
            raise gr.Error(
                "The Hugging Face token was refused (or the Hub is unreachable)."
            ) from None
        name = info.get("name") or ""
        orgs = [o.get("name") for o in info.get("orgs") or [] if isinstance(o, dict)]
        owner = runs.owner_of("", name)
        _who[key] = (time.monotonic(), owner, [o for o in orgs if o])
        return owner, name, _who[key][2]
    if isinstance(visitor, str) and BROWSER_ID.fullmatch(visitor):
        return visitor, None, []
    raise gr.Error("Say who this is for: an hf_token, or a visitor id from /new_visitor.")


def new_visitor() -> str:
    """A new anonymous id: keep it, and pass it to every later call to see your runs."""
    return ensure_owner(None)


def api_validate(file, settings: Settings) -> dict:
    """The validation report of an uploaded file, as `python -m training validate --json`."""
    if not file:
        raise gr.Error("Send a data file.")
    report = validate_file(
        file, tokenizer=_tokenizer(settings), max_bytes=settings.max_upload_bytes
    )
    out = {"ok": report.ok, **report.to_json()}  # ok: trainable as it stands
    return json.loads(json.dumps(out, default=str))


def api_train(file, config, visitor, hf_token, runner: JobRunner, settings: Settings) -> dict:
    """Check the file, then queue a run on it with the page's defaults and these settings."""
    owner, username, orgs = who_is(visitor, hf_token)
    if refusal := training_refusal(settings, username, orgs):
        raise gr.Error(refusal)
    wanted = _settings(config)
    if not file:
        raise gr.Error("Send a data file.")
    report = validate_file(
        file, tokenizer=_tokenizer(settings), max_bytes=settings.max_upload_bytes
    )
    choice = DataChoice(path=str(file)).checked(report)
    if not choice.ok:
        problems = "; ".join(f.message for f in report.errors[:3])
        raise gr.Error(f"The data does not pass its check: {problems}")
    try:
        picked = wanted.get("model") or settings.default_model or default_model()  # the page's
        model, trust = check_base_model(picked, False, settings)
        defaults = _suggested(choice, model)
        values = [
            wanted.get(name, defaults.get(name, getattr(tf.DEFAULTS, name))) for name in tf.HYPER
        ]
        backend = wanted.get("backend", tf.DEFAULTS.backend)
        method = wanted.get("method", tf.DEFAULTS.method)
        cfg = tf.build_config(model, trust, choice, backend, method, *values)
        ok, reason = get_backend(cfg.backend).available()
        if not ok:
            raise ValueError(reason)
        if why := tracking.refusal(cfg.report_to, settings.in_space):
            raise ValueError(why)
        job = runner.submit(cfg, owner)
    except (ValueError, PermissionError) as e:
        raise gr.Error(str(e)) from None
    return {"run": job.id, "status": job.status, "message": f"Run {job.id} queued."}


def api_status(run, visitor, hf_token, runner: JobRunner) -> dict:
    owner, _, _ = who_is(visitor, hf_token)
    return _status(runner.live(_job(runner, run, owner)))


def api_cancel(run, visitor, hf_token, runner: JobRunner) -> dict:
    owner, _, _ = who_is(visitor, hf_token)
    try:
        return _status(runner.cancel(_job(runner, run, owner).id, owner))
    except (PermissionError, ValueError, LookupError) as e:
        raise gr.Error(str(e)) from None


def api_evaluate(run, limit, visitor, hf_token, runner, engine, settings: Settings) -> dict:
    """The before/after evaluation of a finished run (the Evaluate tab's, on its held-out rows)."""
    from training.evaluation import evaluate

    owner, _, _ = who_is(visitor, hf_token)
    path = _run_dir(runner, run, owner)
    try:
        check_remote_code(runs.run_config(path).trust_remote_code, settings)
        report = evaluate.evaluate_run(path, limit=int(limit or 20), engine=engine)
    except ValueError as e:
        raise gr.Error(str(e)) from None
    return json.loads(json.dumps(report, default=str))


def api_push(run, repo_id, kind, private, visitor, hf_token, runner, settings: Settings) -> str:
    """Push the run's adapter (or merged model) to the Hub with hf_token; the repo's URL."""
    owner, _, _ = who_is(visitor, hf_token)
    path = _run_dir(runner, run, owner)
    try:
        trust = runs.run_config(path).trust_remote_code
        check_remote_code(trust, settings)
        return export.publish(
            path,
            "final",
            kind or "adapter",
            repo_id,
            hf_token,
            bool(private),
            trust,
            env_fallback=False,
        )
    except (export.ExportError, ValueError) as e:
        raise gr.Error(str(e)) from None


def build_api(runner: JobRunner, engine, settings: Settings) -> None:
    """Register the endpoints (call inside the Blocks, outside the tabs; nothing shows). The
    two that take a file read it through a hidden gr.File, so only an uploaded file (in
    Gradio's upload folder) is ever read, never a path an API caller names."""
    gr.api(new_visitor, api_name="new_visitor")
    with gr.Column(visible=False):
        file = gr.File(type="filepath", label="file")
        texts = {n: gr.Textbox(label=n) for n in ("config", "visitor", "hf_token")}
        report = gr.JSON()
        validate_btn, train_btn = gr.Button("validate"), gr.Button("train")
    validate_btn.click(
        lambda f: _plain(api_validate, f, settings), file, report, api_name="validate"
    )
    train_btn.click(
        lambda f, c, v, t: _plain(api_train, f, c, v, t, runner, settings),
        [file, *texts.values()],
        report,
        api_name="train",
    )

    def job_status(run: str, visitor: str, hf_token: str) -> dict:
        return _plain(api_status, run, visitor, hf_token, runner)

    def cancel(run: str, visitor: str, hf_token: str) -> dict:
        return _plain(api_cancel, run, visitor, hf_token, runner)

    def evaluate(run: str, limit: int, visitor: str, hf_token: str) -> dict:
        return _plain(api_evaluate, run, limit, visitor, hf_token, runner, engine, settings)

    def push(run: str, repo_id: str, kind: str, private: bool, visitor: str, hf_token: str) -> str:
        args = (run, repo_id, kind, private, visitor, hf_token, runner, settings)
        return _plain(api_push, *args)

    for fn in (job_status, cancel, push):
        gr.api(fn, api_name=fn.__name__)
    gr.api(evaluate, api_name="evaluate", concurrency_id="chat-engine", concurrency_limit=1)


# --- helpers ---------------------------------------------------------------------------


def _plain(fn, *args):
    """Run an endpoint: its gr.Error as it is, anything else a plain message (details logged)."""
    try:
        return fn(*args)
    except gr.Error:
        raise
    except Exception:
        log.exception("API call %s failed", fn.__name__)
        raise gr.Error(
            "Something went wrong on our side; the details are in the server log."
        ) from None


def _settings(config) -> dict:
    try:
        wanted = (
            json.loads(config) if isinstance(config, str) and config.strip() else (config or {})
        )
    except json.JSONDecodeError as e:
        raise gr.Error(f"config is not valid JSON: {e.msg} (line {e.lineno}).") from None
    if not isinstance(wanted, dict):
        raise gr.Error("config must be a JSON object of settings.")
    unknown = sorted(set(wanted) - set(SETTABLE))
    if unknown:
        raise gr.Error(f"These settings cannot be set here: {', '.join(unknown)}.")
    return wanted


def _suggested(choice: DataChoice, model: str) -> dict:
    """The Train tab's suggestion for this model and data (learning rate, passes)."""
    from training.data.stats import validation_count
    from training.recipe import model_params, recipe

    examples = int(tf.report_stats(choice).get("examples") or 0)
    examples -= validation_count(examples, tf.DEFAULTS.validation_split)
    r = recipe(model_params(model), examples, tf.DEFAULTS.batch_size, tf.DEFAULTS.grad_accum)
    return {"learning_rate": r.learning_rate, "epochs": r.epochs}


def _tokenizer(settings: Settings):
    try:
        picked = settings.default_model or default_model()
        model, trust = check_base_model(picked, False, settings)
        return load_tokenizer(model, trust_remote_code=trust)
    except Exception:
        log.info("API validation without the default model's tokenizer", exc_info=True)
        return None


def _job(runner: JobRunner, run, owner: str):
    try:
        job = runner.get(str(run))
    except (LookupError, ValueError, TypeError):
        job = None
    if job is None or job.owner != owner:
        raise gr.Error("No such run of yours: pass the id /train returned.")
    return job


def _run_dir(runner: JobRunner, run, owner: str):
    job = _job(runner, run, owner)
    try:
        return runs.open(job.run_dir, "final", owner)
    except ValueError:
        raise gr.Error(
            "That run has no finished adapter yet: wait until it is completed."
        ) from None


def _status(job) -> dict:
    progress = job.progress or {}
    return {
        "run": job.id,
        "status": job.status,
        "step": progress.get("step"),
        "max_steps": progress.get("max_steps"),
        "loss": progress.get("loss"),
        "position": job.position,
        "reason": job.reason,
        "advice": job.advice,
    }
