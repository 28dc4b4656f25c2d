"""Tunesmith: fine-tune a small open LLM on your own data, no ML code.

    python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override)

`build_app()` lays out the page and wires it; importing this module launches nothing.
Start-up stays fast: torch and transformers are imported inside handlers, never here.
Settings (environment): TUNESMITH_MAX_UPLOAD_MB (upload cap, default 200),
TUNESMITH_CONCURRENCY (events run at once, default 2), TUNESMITH_DEFAULT_MODEL (the model
selected at start, e.g. a local folder), TUNESMITH_HOME (state root, see training/paths.py),
TUNESMITH_PUSH_WITH_SPACE_TOKEN=1 (a blank token box pushes with the Space's HF_TOKEN secret;
off by default, since on a public Space any visitor could then write to the owner's account).
"""

import os

# Before gradio / huggingface_hub are imported: both start network threads otherwise.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import logging  # noqa: E402

import gradio as gr  # noqa: E402

from components.data_tab import build_data_tab, max_bytes  # noqa: E402
from components.evaluate_tab import build_evaluate_tab  # noqa: E402
from components.export_tab import build_export_tab  # noqa: E402
from components.format import CSS  # noqa: E402
from components.model_picker import build_model_picker  # noqa: E402
from components.playground_tab import build_playground_tab  # noqa: E402
from components.train_tab import build_train_tab, owner_state  # noqa: E402


def build_app() -> gr.Blocks:
    with gr.Blocks(title="Tunesmith") as demo:
        gr.Markdown(
            "# Tunesmith\nFine-tune a small open model on your own data: "
            "check the data, train, compare with the base model, export.",
            elem_classes=["ts-header"],
        )
        picker = build_model_picker()
        owner = owner_state()  # one visitor id for every tab: runs are their owner's alone
        with gr.Tabs():
            # One line per tab; each build_*_tab() opens its own gr.Tab.
            dataset = build_data_tab(picker.model, picker.trust_remote_code)
            build_train_tab(picker.model, dataset, picker.trust_remote_code, owner=owner)
            build_playground_tab(picker.model, owner)
            build_evaluate_tab(owner)
            build_export_tab(owner)
    # Validation and training prep are CPU-bound: a few at once keeps a 2-vCPU Space
    # responsive; the rest wait in the queue and see their position.
    demo.queue(default_concurrency_limit=int(os.environ.get("TUNESMITH_CONCURRENCY", "2")))
    return demo


def launch_options() -> dict:
    """Everything launch() needs besides host and port (tests launch with the same)."""
    return {
        "theme": gr.themes.Soft(primary_hue="indigo"),
        "css": CSS,
        "max_file_size": max_bytes(),
        "show_error": False,  # plain messages come from the handlers, never tracebacks
    }


def server_name() -> str:
    # Inside a Space (SPACE_ID set) the proxy reaches the app on all interfaces.
    default = "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"
    return os.environ.get("GRADIO_SERVER_NAME") or default


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    build_app().launch(
        server_name=server_name(),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(),
    )
