"""The Train tab: settings, pre-flight estimate, Start / Cancel / Resume, live progress.

Widgets take their initial values and help text from RunConfig; "Show config" prints the
exact YAML the worker receives. Training runs in a worker process owned by the app's
JobRunner (training/jobs/runner.py); this tab only submits and polls (gr.Timer), so
closing the tab loses nothing. The visitor's identity comes from components/visitor.py; the runner,
the settings and the visitor state are handed in by app.py.

Two backends train (RunConfig.backend): LoRA with TRL + PEFT, or AutoTrain Advanced in its
own venv; AutoTrain's note, Install button and config export live in
components/autotrain_panel.py. Pure helpers and formatters live in components/train_format.py.
"Where to train" (Advanced) sends the run to Hugging Face Jobs instead (training/jobs/
hf_jobs.py) with the visitor's token, pasted or their sign-in's: passed to the job runner for
this run only, never kept in the page, a file or a log. The pre-flight names the flavour
that holds the run for least and its price.

Its length: the tab's layout and wiring are long by nature (about thirty widgets); its
handlers stay short and its formatters live in train_format.py.
"""

import contextlib
import logging
import math
import os
from functools import partial
from pathlib import Path

import gradio as gr

from components import train_format as tf
from components.autotrain_panel import build_autotrain_panel, on_export
from components.format import message_html
from components.visitor import Visitor
from training import tracking, zerogpu
from training.backends import get_backend
from training.backends.preflight import estimate, load_model_config, local_hardware
from training.config import SCHEDULERS, RunConfig, help_text
from training.data import DataChoice
from training.data.labels import explain_choice
from training.data.stats import validation_count
from training.hardware import defaults_for, suggested_preset
from training.jobs import hf_jobs, rundir
from training.jobs.runner import JobRunner
from training.jobs.store import Job
from training.models.access import check_base_model
from training.models.catalogue import chat_tokenizer
from training.paths import REPO_ROOT
from training.recipe import model_params, recipe
from training.settings import Settings

log = logging.getLogger(__name__)
PRESETS_DIR = REPO_ROOT / "configs"
POLL_S = 2.0
OUR_FAULT = "Something went wrong on our side; the details are in the server log."
SLIDERS = {  # name: (minimum, maximum, step)
    "batch_size": (1, 64, 1),
    "grad_accum": (1, 64, 1),
    "max_length": (16, 8192, 16),
    "lora_r": (1, 256, 1),
    "lora_alpha": (1, 512, 1),
    "lora_dropout": (0.0, 0.5, 0.01),
    "warmup_ratio": (0.0, 0.5, 0.01),
    "validation_split": (0.0, 0.45, 0.01),
}
METHODS = [("LoRA", "lora"), ("QLoRA (4-bit base, GPU only)", "qlora")]
PRESET_INFO = "Load tested settings for a machine size (configs/*.yaml)."
HARDWARE_FIELDS = ("batch_size", "grad_accum", "max_length")  # prefilled for the GPU on load
LENGTHS = [("Quick", "quick"), ("Standard", "standard"), ("Thorough", "thorough")]
PLAN_FIELDS = ("learning_rate", "epochs")  # what on_plan fills in (max steps stays)
WHERE = [("This machine", "")] + [(f.label(), f.name) for f in hf_jobs.FLAVORS.values()]
WHERE_INFO = (
    "A flavour runs the same training on Hugging Face Jobs, billed to your Hugging Face "
    f"account by the minute (prices: {hf_jobs.PRICES_SOURCE}). Your data goes to a private "
    "dataset repo of yours; the adapter comes back here."
)


def widget(name: str, render: bool = True):
    """A numeric widget (or dropdown / textbox) for one RunConfig field."""
    value = getattr(tf.DEFAULTS, name)
    kw = {"value": value, "label": tf.label(name), "info": help_text(name), "render": render}
    if name == "lr_scheduler":
        return gr.Dropdown(list(SCHEDULERS), **kw)
    if name == "report_to":  # off unless chosen; only trackers installed here
        choices = [
            (tracking.LABELS[t], t) for t in tracking.available(bool(os.environ.get("SPACE_ID")))
        ]
        return gr.Dropdown(choices, **kw)
    if isinstance(value, str):
        return gr.Textbox(**kw)
    precision = 0 if isinstance(value, int) else None
    if name in SLIDERS:
        lo, hi, step = SLIDERS[name]
        return gr.Slider(lo, hi, step=step, precision=precision, **kw)
    return gr.Number(precision=precision, **kw)


# --- helpers -----------------------------------------------------------------------


def preset_choices() -> list[tuple[str, str]]:
    return [(p.stem, str(p)) for p in sorted(PRESETS_DIR.glob("*.yaml"))]


def max_length_widget() -> gr.Slider:
    """The one max length widget, made before the tabs (unrendered): the Data tab's report
    counts tokens at its value, and the Train tab shows it among the settings."""
    return widget("max_length", render=False)


# --- event handlers: unpack widget values, call training, format --------------------


def on_estimate(*config, settings: Settings | None = None) -> str:
    """config: model, trust, dataset, backend, method, then the HYPER values."""
    try:
        model, trust = check_base_model(config[0], config[1], settings or Settings())
        cfg = tf.build_config(model, trust, *config[2:])
        stats = tf.report_stats(config[2])
        pf = estimate(cfg, stats)
        text = tf.preflight_markdown(pf)
        if pf.total_params and cfg.backend == "lora":  # where a job would cost least
            with contextlib.suppress(ValueError, OSError):  # a bonus line, never the verdict
                text += f"\n- {hf_jobs.suggest(cfg, stats, load_model_config(cfg.model)).line}"
        if zerogpu.active():  # a run is one GPU call: how much of it fits, or why none does
            plan = zerogpu.plan_training(cfg, stats)
            text += f"\n\n{'⛔' if plan.refusal else 'ℹ️'} {plan.note}"
        return text
    except ValueError as e:
        return f"⚠️ {e}"
    except Exception:
        log.exception("pre-flight estimate failed")
        return f"⚠️ {OUR_FAULT}"


def on_hardware():
    """Page load: defaults for this machine (training/hardware.py): batch size, accumulation
    and max length for its GPU's memory, QLoRA offered only on CUDA, the preset for its size."""
    try:
        hw = local_hardware()
    except Exception:
        log.exception("hardware detection failed")
        return (gr.skip(),) * (2 + len(HARDWARE_FIELDS))
    values = defaults_for(hw)
    info = f"{PRESET_INFO} For this {hw.name}: {suggested_preset(hw)}."
    return (
        gr.Radio(choices=METHODS if hw.supports_4bit else METHODS[:1]),
        gr.Dropdown(info=info),
        *(values.get(name, gr.skip()) for name in HARDWARE_FIELDS),
    )


def on_plan(model, trust, choice, length, batch_size, grad_accum, validation_split, settings=None):
    """The suggested learning rate and passes for this model, this data and how long to train
    (training/recipe.py), and why in words; max steps stays as the visitor set it."""
    try:
        name, _ = check_base_model(model, trust, settings or Settings())
        params = model_params(name)
    except ValueError:
        params = None
    stats = tf.report_stats(choice) or {}
    examples = int(stats.get("examples") or 0)
    if examples and not (choice and choice.validation_file):
        examples -= validation_count(examples, float(validation_split or 0))
    try:
        r = recipe(params, examples, int(batch_size), int(grad_accum), length or "standard")
    except (TypeError, ValueError):  # a blank or odd value in the advanced settings
        return gr.skip(), gr.skip(), ""
    return r.learning_rate, r.epochs, tf.plan_markdown(r, bool(examples))


KEPT = ("length", "backend", "method", *tf.HYPER)  # the settings a reload brings back


def remember(*values) -> dict:
    return dict(zip(KEPT, values, strict=True))


def restore(saved) -> list:
    """The settings kept in the browser, each checked like a typed-in value: one that does
    not fit its widget (an old version's, or anything an API caller sends) is left as is."""
    saved = saved if isinstance(saved, dict) else {}
    allowed = {
        "length": {v for _, v in LENGTHS},
        "backend": {"lora", "autotrain"},
        "method": {v for _, v in METHODS},
        "lr_scheduler": set(SCHEDULERS),
        "report_to": set(tracking.TRACKERS),
    }
    out = []
    for name in KEPT:
        value, default = saved.get(name), getattr(tf.DEFAULTS, name, None)
        if name in allowed:
            ok = value in allowed[name]
        elif isinstance(default, bool) or default is None:
            ok = False
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        else:
            ok = isinstance(value, str) and len(value) <= 200
        out.append(value if ok else gr.skip())
    return out


def on_show_config(*config, settings: Settings | None = None):
    try:
        model, trust = check_base_model(config[0], config[1], settings or Settings())
        return tf.config_text(tf.build_config(model, trust, *config[2:]))
    except ValueError as e:
        return f"# {e}", ""


def on_preset(path: str | None):
    """Preset YAML -> model, method and every hyperparameter widget (data stays as is)."""
    if not path:
        return [gr.skip()] * (2 + len(tf.HYPER))
    try:
        cfg = RunConfig.from_yaml(Path(path))
    except (OSError, ValueError) as e:
        gr.Warning(f"Preset {Path(path).stem} could not be read: {e}")
        return [gr.skip()] * (2 + len(tf.HYPER))
    return [cfg.model, cfg.method, *(getattr(cfg, name) for name in tf.HYPER)]


def on_start(
    runner: JobRunner,
    owner,
    refusal,
    *config,
    settings: Settings | None = None,
    hf_job: tuple[str, str] | None = None,
):
    """Queue a run; returns (message, selected run id). refusal: why this visitor may not
    train here (the owner's TUNESMITH_WHO_MAY_TRAIN), '' when they may. hf_job: (flavour,
    token) to run it on Hugging Face Jobs."""
    if not owner:
        return "⚠️ The page is still loading; press Start again.", gr.skip()
    if refusal:
        return f"⚠️ {refusal}", gr.skip()
    if not (config[2] and config[2].ok):
        return "⚠️ Check a dataset on the Data tab first (it must pass without errors).", gr.skip()
    try:
        model, trust = check_base_model(config[0], config[1], settings or Settings())
        cfg = tf.build_config(model, trust, *config[2:])
        ok, reason = get_backend(cfg.backend).available()
        if not ok:
            return f"⚠️ {reason}", gr.skip()
        if why := tracking.refusal(cfg.report_to, (settings or Settings()).in_space):
            return f"⚠️ {why}", gr.skip()
        here = zerogpu.active() and not hf_job
        plan = zerogpu.plan_training(cfg, tf.report_stats(config[2])) if here else None
        if plan and plan.refusal:
            return f"⚠️ {plan.refusal}", gr.skip()
        job = runner.submit(cfg, owner, hf_job=hf_job)
    except ValueError as e:
        return f"⚠️ {e}", gr.skip()
    except Exception:
        log.exception("submitting a run failed")
        return f"⚠️ {OUR_FAULT}", gr.skip()
    if hf_job:
        return (
            f"Run **{job.id}** is going to Hugging Face Jobs ({hf_job[0]}): your data to a private "
            "dataset repo of yours, then the job starts, billed to your account by the minute. "
            "You can close this page: it keeps going.",
            job.id,
        )
    where = "starting now" if job.position in (None, 1) else f"#{job.position} in line"
    note = f" {plan.note}" if plan else ""
    return (
        f"Run **{job.id}** queued ({where}). You can close this page: it keeps going.{note}",
        job.id,
    )


def start_handler(runner: JobRunner, settings: Settings):
    """on_start, here or on Hugging Face Jobs: the flavour chosen under Advanced, with the
    token pasted there, else the signed-in visitor's (gradio injects it by type)."""

    def start(owner, refusal, where, token, oauth: gr.OAuthToken | None, *config):
        token = token or (oauth.token if oauth is not None else "")
        hf_job = (where, token) if where else None
        return on_start(runner, owner, refusal, *config, settings=settings, hf_job=hf_job)

    return start


def on_job_action(
    runner: JobRunner, action: str, owner, selected, choice: DataChoice | None = None
) -> str:
    """Cancel, Resume or Continue the selected run, with a plain message either way."""
    if not selected:
        return "⚠️ Select one of your runs in the list first."
    try:
        if action == "cancel":
            job = runner.cancel(selected, owner)
            return f"Stopping run {job.id}: it saves the adapter it has, then stops."
        if action == "resume":
            return f"Run {runner.resume(selected, owner).id} is queued to resume."
        if not (choice and choice.ok):
            return "⚠️ Check the new data on the Data tab first."
        job = runner.continue_from(selected, owner, choice.run_fields())
        return f"Run **{job.id}** queued: continues from {selected}'s adapter on the current data."
    except (PermissionError, ValueError, LookupError) as e:
        return f"⚠️ {e}"
    except Exception:
        log.exception("%s of run %s failed", action, selected)
        return f"⚠️ {OUR_FAULT}"


def poll(runner: JobRunner, owner, selected, shown):
    """Timer tick: the visitor's runs (from the job store), and the selected one's status,
    chart and log (its files, the only run's files read). Chart and log are only re-sent
    when the run changed (no flicker, zoom kept)."""
    try:
        jobs = runner.jobs_for(owner)
        job = next((j for j in jobs if j.id == selected), jobs[0] if jobs else None)
        if job is not None:
            job = runner.live(job)
            jobs = [job if j.id == job.id else j for j in jobs]
    except Exception:  # e.g. a locked database: keep what the page shows, try next tick
        log.exception("reading the job list failed")
        return (gr.skip(),) * 6
    if job is None:
        return tf.jobs_table([]), None, tf.job_markdown(None), gr.skip(), "", shown
    # AutoTrain's milestones (status.json "phase"): it logs no step for its first 10-30 s.
    head = (tf.jobs_table(jobs), job.id, tf.job_markdown(job, job.phase))
    key = _fingerprint(job)
    if key == shown:
        return *head, gr.skip(), gr.skip(), shown
    return *head, tf.loss_frame(job.run_dir), tf.log_text(job.run_dir), key


def _fingerprint(job: Job) -> str:
    stamps = []
    for name in (rundir.PROGRESS, rundir.LOG):
        try:
            stamps.append(os.stat(Path(job.run_dir, name)).st_mtime_ns)
        except OSError:
            stamps.append(0)
    return f"{job.id}:{job.status}:{stamps}"


def pick_job(evt: gr.SelectData) -> str:
    return evt.row_value[0]


def on_learn(
    model, trust, choice: DataChoice | None, max_length, number, settings: Settings | None = None
) -> str:
    """One example rendered with the chat template, trained tokens highlighted."""
    if not (choice and choice.path):
        return message_html("Check a dataset on the Data tab first.", "info")
    try:
        model, trust = check_base_model(model, trust, settings or Settings())
        tokenizer = chat_tokenizer(model, trust)
        return tf.learned_html(explain_choice(tokenizer, choice, number, int(max_length)))
    except (ValueError, OSError) as e:
        return message_html(str(e), "error")
    except Exception:
        log.exception("example view failed")
        return message_html(OUR_FAULT, "error")


# --- layout and wiring ---------------------------------------------------------------


def build_train_tab(
    model,
    choice_state,
    runner: JobRunner,
    visitor: Visitor,
    trust_remote_code=None,
    settings: Settings | None = None,
    max_length: gr.Slider | None = None,
) -> None:
    """The Train tab. model: the shared base-model dropdown; choice_state: the Data tab's
    gr.State (a DataChoice); runner: the app's JobRunner; visitor: who the visitor is (the
    Train tab identifies them on page load, before anything else);
    trust_remote_code: the picker's checkbox; max_length: max_length_widget(), shared with
    the Data tab (a new one when not given)."""
    settings = settings or Settings()
    owner = visitor.owner
    trust = trust_remote_code if trust_remote_code is not None else gr.State(False)
    ok, _ = get_backend("autotrain").available()
    with gr.Tab("Train"):
        # The run being followed is kept in the browser: a reload reopens it (poll() only
        # ever shows one of the visitor's own runs, whatever id the page sends).
        selected = gr.BrowserState(None, storage_key="tunesmith-run")
        saved = gr.BrowserState({}, storage_key="tunesmith-train-settings")  # settings kept
        shown = gr.State("")
        length = gr.Radio(
            LENGTHS,
            value="standard",
            label="How long to train",
            info="Quick: a first look. Standard: what your data needs. Thorough: twice as "
            "long, for harder tasks (watch the held-out loss for over-fitting).",
            elem_id="ts-length",
        )
        plan_md = gr.Markdown(elem_id="ts-plan")
        with gr.Row():
            estimate_btn = gr.Button("Estimate time and memory")
            start_btn = gr.Button("Start training", variant="primary")
        estimate_md = gr.Markdown()
        with gr.Accordion("Advanced settings", open=False):
            with gr.Row():
                backend = gr.Radio(
                    tf.backend_choices(ok),
                    value=tf.DEFAULTS.backend,
                    label="Backend",
                    info=help_text("backend"),
                )
                method = gr.Radio(
                    METHODS,
                    value=tf.DEFAULTS.method,
                    label="Method (either backend)",
                    info=help_text("method"),
                )
                preset = gr.Dropdown(
                    preset_choices(),
                    value=None,
                    label="Preset",
                    info=PRESET_INFO,
                )
            backend_io = build_autotrain_panel(backend, settings.install_allowed)
            max_length = max_length if max_length is not None else max_length_widget()

            def make(name):
                return max_length.render() if name == "max_length" else widget(name)

            widgets = {}
            with gr.Group():
                with gr.Row():
                    widgets.update({n: make(n) for n in tf.MAIN[:3]})
                with gr.Row():
                    widgets.update({n: make(n) for n in tf.MAIN[3:]})
                with gr.Row():
                    widgets.update({n: make(n) for n in tf.ADAPTER})
            with gr.Accordion("More", open=False):
                for i in range(0, len(tf.ADVANCED), 3):
                    with gr.Row():
                        widgets.update({n: make(n) for n in tf.ADVANCED[i : i + 3]})
            values = [widgets[n] for n in tf.HYPER]
            with gr.Row():
                config_btn = gr.Button("Show config")
                export_btn = gr.Button("Export as AutoTrain config")
            with gr.Accordion("Config: the exact YAML and command", open=False) as config_box:
                yaml_code = gr.Code(language="yaml", label="config.yaml")
                shell_code = gr.Code(language="shell", label="Same run from the command line")
                export_file = gr.File(label="autotrain.yml", interactive=False)
                export_md = gr.Markdown()
            with gr.Row():
                where = gr.Dropdown(WHERE, value="", label="Where to train", info=WHERE_INFO)
                hf_token = gr.Textbox(
                    label="Hugging Face token (for Jobs)",
                    type="password",
                    info="Blank: your sign-in's. Needs write access; used for this run only, "
                    "never stored.",
                )
            with gr.Accordion("What the model learns", open=False):
                with gr.Row():
                    example_no = gr.Number(1, precision=0, label="Example number", minimum=1)
                    learn_btn = gr.Button("Show this example")
                learn_html = gr.HTML()
        notice = gr.Markdown(elem_id="ts-notice")
        gr.Markdown("### Your runs")
        jobs = gr.Dataframe(
            tf.jobs_table([]),
            interactive=False,
            label="Click a run to follow it",
            elem_id="ts-jobs",
        )
        status_md = gr.Markdown(elem_id="ts-run-status")
        with gr.Row():
            cancel_btn = gr.Button("Cancel run", variant="stop")
            resume_btn = gr.Button("Resume run")
            continue_btn = gr.Button("Continue training on the current data")
        chart = gr.LinePlot(
            tf.loss_frame(None),
            x="step",
            y="loss",
            color="series",
            height=280,
            title="Loss per step (blue: training, orange: validation)",
            color_map={"train": "#4f46e5", "eval": "#f97316"},
        )
        log_box = gr.Textbox(
            label="Log (last lines)", lines=10, max_lines=tf.LOG_LINES, autoscroll=True
        )
        timer = gr.Timer(POLL_S)

    config_inputs = [model, trust, choice_state, backend, method, *values]
    plan = partial(on_plan, settings=settings)
    plan_inputs = [model, trust, choice_state, length]
    plan_inputs += [widgets[n] for n in ("batch_size", "grad_accum", "validation_split")]
    plan_io = (plan_inputs, [*(widgets[n] for n in PLAN_FIELDS), plan_md])
    quiet = {"show_progress": "hidden", "api_visibility": "private"}
    gr.on([choice_state.change, model.change, length.input], plan, *plan_io, **quiet)
    # The visitor's settings are kept in the browser and come back after a reload.
    kept = [length, backend, method, *values]
    gr.on([w.input for w in kept], remember, kept, saved, **quiet)
    changes = [estimate_btn.click, backend.change, method.change, model.change]
    changes += [choice_state.change] + [w.change for w in values]
    estimate_now = partial(on_estimate, settings=settings)
    gr.on(changes, estimate_now, config_inputs, estimate_md, **quiet)
    open_config = {"fn": lambda: gr.Accordion(open=True), "outputs": config_box, **quiet}
    show_config = partial(on_show_config, settings=settings)
    config_btn.click(show_config, config_inputs, [yaml_code, shell_code], **quiet).then(
        **open_config
    )
    export_btn.click(on_export, config_inputs, [export_file, export_md], **quiet).then(
        **open_config
    )
    preset.change(on_preset, preset, [model, method, *values], **quiet)
    learn_inputs = [model, trust, choice_state, max_length, example_no]
    learn = partial(on_learn, settings=settings)
    learn_btn.click(learn, learn_inputs, learn_html, api_visibility="private")
    poll_io = ([owner, selected, shown], [jobs, selected, status_md, chart, log_box, shown])
    ticking = {"concurrency_limit": None, **quiet}  # file reads only: never wait in line
    refresh = partial(poll, runner)
    start_btn.click(
        start_handler(runner, settings),
        [owner, visitor.refusal, where, hf_token, *config_inputs],
        [notice, selected],
        **quiet,
    ).then(refresh, *poll_io, **ticking)
    for btn, action in ((cancel_btn, "cancel"), (resume_btn, "resume"), (continue_btn, "continue")):
        btn.click(
            partial(on_job_action, runner, action),
            [owner, selected, choice_state],
            notice,
            **quiet,
        ).then(refresh, *poll_io, **ticking)
    jobs.select(pick_job, None, selected, **quiet).then(refresh, *poll_io, **ticking)
    timer.tick(refresh, *poll_io, **ticking)
    # On page load: who the visitor is (a new id for a first-time visitor, kept in
    # localStorage; their Hugging Face username once signed in), their runs, AutoTrain's
    # availability now (another page may have installed it) and the estimate.
    who = [visitor.browser, visitor.owner, visitor.refusal]
    hardware_io = [method, preset, *(widgets[name] for name in HARDWARE_FIELDS)]
    gr.on(None, visitor.identify, visitor.browser, who, **quiet).then(
        refresh, *poll_io, **ticking
    ).then(*backend_io, **quiet).then(on_hardware, None, hardware_io, **quiet).then(
        plan, *plan_io, **quiet
    ).then(restore, saved, kept, **quiet).then(estimate_now, config_inputs, estimate_md, **quiet)
