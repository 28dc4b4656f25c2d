"""The Train tab's AutoTrain pieces: the note and Install box under the Backend radio, and
"Export as AutoTrain config".

AutoTrain Advanced trains in its own venv, so it cannot be chosen until it is built; where
the app may install software (Settings.install_allowed: a Space, or TUNESMITH_ALLOW_INSTALL=1)
a button builds it here. Everything about AutoTrain itself is reached through the backend
protocol (training/backends/__init__.py). components/train_tab.py lays the panel out and
owns the export button.
"""

import tempfile
from functools import partial
from pathlib import Path

import gradio as gr

from components import train_format as tf
from training.backends import get_backend
from training.hardware import default_device

AUTOTRAIN = get_backend("autotrain")


def on_export(*config):
    """autotrain.yml for `autotrain --config` elsewhere (portable paths, never a token)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="tunesmith-export-"))
        path = AUTOTRAIN.export_config(tf.build_config(*config), folder / "autotrain.yml")
    except ValueError as e:
        return None, f"⚠️ {e}"
    return str(path), tf.export_note(str(path))


def on_backend(backend, install_allowed: bool = False):
    """The backend radio, its note and the install box, from AutoTrain's availability now.
    An AutoTrain that is not installed cannot be chosen: the radio falls back to LoRA."""
    ok, reason = AUTOTRAIN.available()
    note = tf.autotrain_note(ok, reason, install_allowed)
    refused = backend == "autotrain" and not ok
    if refused:
        gr.Warning("AutoTrain is not installed here: the note under the choice says how.")
    radio = gr.update(choices=tf.backend_choices(ok), **({"value": "lora"} if refused else {}))
    return radio, note, gr.update(visible=not ok and install_allowed)


def on_install(install_allowed: bool = False):
    """Build AutoTrain, streaming its output; then re-check it and select it. Yields (install
    log, backend radio, note, install button). The event runs one at a time
    (concurrency_limit=1) and the build is a quick no-op once done."""
    keep = (gr.skip(),) * 3
    if not install_allowed:
        yield f"Installing software is not allowed here: run `{tf.SETUP}` on the server.", *keep
        return
    lines, failure = [], None
    try:
        for line in AUTOTRAIN.install(gpu=default_device().startswith("cuda")):
            lines.append(line)
            yield "\n".join(lines), *keep
    except RuntimeError as e:
        failure = str(e)
    ok, reason = AUTOTRAIN.available()
    lines.append(tf.install_verdict(failure, ok, reason))
    radio = gr.update(choices=tf.backend_choices(ok), **({"value": "autotrain"} if ok else {}))
    yield "\n".join(lines), radio, tf.autotrain_note(ok, reason, True), gr.update(visible=not ok)


def build_autotrain_panel(backend: gr.Radio, install_allowed: bool) -> tuple:
    """The note and Install box under the Backend radio, wired to it. Returns on_backend's
    (handler, inputs, outputs), which the tab runs again on page load (another page may
    have installed AutoTrain since)."""
    ok, reason = AUTOTRAIN.available()
    backend_md = gr.Markdown(tf.autotrain_note(ok, reason, install_allowed))
    with gr.Column(visible=not ok and install_allowed) as install_box:
        install_btn = gr.Button("Install AutoTrain", size="sm")
        install_log = gr.Textbox(label="Install output", lines=4, max_lines=20, autoscroll=True)
    check = partial(on_backend, install_allowed=install_allowed)
    backend_io = (check, [backend], [backend, backend_md, install_box])
    backend.input(*backend_io, show_progress="hidden", api_visibility="private")
    # One install at a time; a second click waits, then finds it built (a quick no-op).
    install_btn.click(
        partial(on_install, install_allowed=install_allowed),
        None,
        [install_log, backend, backend_md, install_btn],
        concurrency_limit=1,
        api_visibility="private",
    )
    return backend_io
