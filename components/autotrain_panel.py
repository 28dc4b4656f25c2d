"""The Train tab's AutoTrain pieces: the note and Install box under the Backend radio, and
"Export as AutoTrain config".

AutoTrain Advanced trains in its own venv, so it cannot be chosen until
scripts/setup_autotrain.sh has built it; where the app may install software (a Space, or
TUNESMITH_ALLOW_INSTALL=1) a button builds it here. The export writes an autotrain.yml to
run elsewhere. components/train_tab.py lays the panel out and owns the export button.
"""

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import gradio as gr

from components import train_format as tf
from training.backends import autotrain_config as autotrain
from training.jobs.runner import default_device
from training.paths import REPO_ROOT


def install_allowed() -> bool:
    """Inside a Space (SPACE_ID) the app owns its machine; elsewhere only when told so."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("TUNESMITH_ALLOW_INSTALL") == "1"


def on_export(*config):
    """autotrain.yml for `autotrain --config` elsewhere (portable paths, never a token)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="tunesmith-export-"))
        path = autotrain.export_autotrain_config(tf.build_config(*config), folder / "autotrain.yml")
    except ValueError as e:
        return None, f"⚠️ {e}"
    return str(path), tf.export_note(str(path))


def on_backend(backend):
    """The backend radio, its note and the install box, from AutoTrain's availability now.
    An AutoTrain that is not installed cannot be chosen: the radio falls back to LoRA."""
    ok, reason = autotrain.available()
    note = tf.autotrain_note(ok, reason, install_allowed())
    refused = backend == "autotrain" and not ok
    if refused:
        gr.Warning("AutoTrain is not installed here: the note under the choice says how.")
    radio = gr.update(choices=tf.backend_choices(ok), **({"value": "lora"} if refused else {}))
    return radio, note, gr.update(visible=not ok and install_allowed())


def on_install():
    """Run the setup script, streaming its output; then re-check AutoTrain and select it.
    Yields (install log, backend radio, note, install button). The event runs one at a
    time (concurrency_limit=1) and the script is a quick no-op once built."""
    keep = (gr.skip(),) * 3
    if not install_allowed():
        yield f"Installing software is not allowed here: run `{tf.SETUP}` on the server.", *keep
        return
    lines, code = [], None
    env = {k: v for k, v in os.environ.items() if not autotrain.SECRET.search(k)}  # pip: no token
    cmd = autotrain.setup_command(gpu=default_device().startswith("cuda"))
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, text=True, errors="replace",
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            yield "\n".join(lines), *keep
        code = proc.wait()
    finally:
        if proc.poll() is None:  # the page went away mid-install: stop (a rerun resumes)
            os.killpg(proc.pid, signal.SIGTERM)
    ok, reason = autotrain.available()
    lines.append(tf.install_verdict(code, ok, reason))
    radio = gr.update(choices=tf.backend_choices(ok), **({"value": "autotrain"} if ok else {}))
    yield "\n".join(lines), radio, tf.autotrain_note(ok, reason, True), gr.update(visible=not ok)


def build_autotrain_panel(backend: gr.Radio, ok: bool, reason: str) -> tuple[list, list]:
    """The note and Install box under the Backend radio, wired to it. ok, reason: AutoTrain's
    availability when the tab is built. Returns on_backend's (inputs, outputs), which the
    tab runs again on page load (another page may have installed AutoTrain since)."""
    backend_md = gr.Markdown(tf.autotrain_note(ok, reason, install_allowed()))
    with gr.Column(visible=not ok and install_allowed()) as install_box:
        install_btn = gr.Button("Install AutoTrain", size="sm")
        install_log = gr.Textbox(label="Install output", lines=4, max_lines=20, autoscroll=True)
    backend_io = ([backend], [backend, backend_md, install_box])
    backend.input(on_backend, *backend_io, show_progress="hidden", api_visibility="private")
    # One install at a time; a second click waits, then finds it built (a quick no-op).
    install_btn.click(on_install, None, [install_log, backend, backend_md, install_btn],
                      concurrency_limit=1, api_visibility="private")  # fmt: skip
    return backend_io
