"""Tunesmith: fine-tune a small open LLM on your own data, no ML code.

    python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override)

The composition root: `build_app()` reads the settings once (training/settings.py lists every
variable), builds the one chat engine and the one job runner (which frees the engine's models
before a job claims the device), and hands them to the tabs it lays out. Importing this module
launches nothing. Start-up stays fast: torch and transformers are imported inside handlers.
"""

import os

# Before gradio / huggingface_hub are imported: both start network threads otherwise.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import training.zerogpu  # noqa: E402, F401 - on ZeroGPU: imports `spaces` before torch touches CUDA
from training.paths import use_persistent_hf_home  # noqa: E402

use_persistent_hf_home()  # a Space's downloads go to /data and survive a restart

import logging  # noqa: E402

import gradio as gr  # noqa: E402

from components.api import build_api  # noqa: E402
from components.data_tab import build_data_tab  # noqa: E402
from components.evaluate_tab import build_evaluate_tab  # noqa: E402
from components.export_tab import build_export_tab  # noqa: E402
from components.format import CSS  # noqa: E402
from components.model_picker import build_model_picker  # noqa: E402
from components.playground_tab import build_playground_tab  # noqa: E402
from components.train_tab import build_train_tab, max_length_widget  # noqa: E402
from components.visitor import build_visitor  # noqa: E402
from training.backends.autotrain import start_background_install  # noqa: E402
from training.chat.engine import ChatEngine  # noqa: E402
from training.jobs import runs  # noqa: E402
from training.jobs.runner import JobRunner  # noqa: E402
from training.models.access import check_base_model  # noqa: E402
from training.settings import Settings  # noqa: E402


def start_runner(engine: ChatEngine, settings: Settings | None = None) -> JobRunner:
    """The app's one job runner: recovered after a restart, scheduling, emptying the chat
    engine's model cache before a worker claims the device, within the settings' limits."""
    settings = settings or Settings.from_env()
    runner = JobRunner(
        before_start=[engine.free],
        max_jobs_per_owner=settings.max_jobs_per_visitor,
        max_queued=settings.max_queued,
        max_steps=settings.max_steps,
        max_minutes=settings.minutes_per_visitor or None,
        admit=lambda cfg, owner: check_base_model(
            cfg.model, cfg.trust_remote_code, settings, signed_in=runs.signed_in(owner)
        ),
    )
    runner.recover()
    return runner.start()


def build_app(
    settings: Settings | None = None,
    runner: JobRunner | None = None,
    engine: ChatEngine | None = None,
) -> gr.Blocks:
    settings = settings or Settings.from_env()
    engine = engine or ChatEngine()
    runner = runner or start_runner(engine, settings)
    with gr.Blocks(title="Tunesmith") as demo:
        gr.Markdown(
            "# Tunesmith\nFine-tune a small open model on your own data: "
            "check the data, train, compare with the base model, export.",
            elem_classes=["ts-header"],
        )
        if settings.in_space:  # a public Space: visitors can train on their own hardware
            gr.DuplicateButton("Duplicate this Space to train privately on your own GPU")
        visitor = build_visitor(settings)  # who the visitor is, for every tab
        owner = visitor.owner
        picker = build_model_picker(settings)
        max_length = max_length_widget()  # shown on the Train tab, read by the Data tab too
        build_api(runner, engine, settings)  # the scripted journey (gradio_client): its names first
        with gr.Tabs() as tabs:
            # One line per tab; each build_*_tab() opens its own gr.Tab.
            choice = build_data_tab(picker.model, picker.trust_remote_code, max_length, settings)
            build_train_tab(
                picker.model,
                choice,
                runner,
                visitor,
                picker.trust_remote_code,
                settings,
                max_length,
            )
            build_playground_tab(engine, picker.model, owner, settings, tabs)
            build_evaluate_tab(engine, owner, settings)
            build_export_tab(owner, settings)
    # Validation and training prep are CPU-bound: a few at once keeps a 2-vCPU Space
    # responsive; the rest wait in the queue and see their position.
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    if settings.autotrain_on_start:  # AutoTrain's venv, built in the background (one build)
        start_background_install()
    return demo


def launch_options(settings: Settings | None = None) -> dict:
    """Everything launch() needs besides host and port (tests launch with the same)."""
    settings = settings or Settings.from_env()
    return {
        "theme": gr.themes.Soft(primary_hue="indigo"),
        "css": CSS,
        "max_file_size": settings.max_upload_bytes,
        "show_error": False,  # plain messages come from the handlers, never tracebacks
    }


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    build_app(settings).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME") or settings.server_name,
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(settings),
    )
