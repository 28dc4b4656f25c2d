"""The Train tab's AutoTrain pieces: the note and install box under the Backend radio, and
"Export as AutoTrain config".

AutoTrain Advanced trains in its own venv, so it cannot be chosen until it is built. The
build runs in the background (training/backends/autotrain_install.py): at app start when the
owner sets TUNESMITH_AUTOTRAIN=1, or from the Install button where the app may install
software (Settings.install_allowed: a Space, or TUNESMITH_ALLOW_INSTALL=1). The box shows
the build's state (not built / building with its last lines / ready / failed with why and a
Retry button); a timer of its own polls it while a build runs, and the radio offers
AutoTrain once it is ready. components/train_tab.py lays the panel out and owns the export
button.
"""

import tempfile
from functools import partial
from pathlib import Path

import gradio as gr

from components import train_format as tf
from components.format import esc, message_html
from training.backends import get_backend
from training.backends.autotrain import InstallState, install_state, start_background_install

AUTOTRAIN = get_backend("autotrain")
POLL_S = 2.0
HEADLINES = {  # state -> (headline, panel level)
    "not built": ("AutoTrain's environment is not built yet.", "info"),
    "building": (
        "⏳ Building AutoTrain's environment (about 2 minutes; the app works meanwhile). "
        "Its last lines:",
        "info",
    ),
    "ready": ("✅ AutoTrain is ready: {reason}", "ok"),
    "failed": ("⛔ Building AutoTrain's environment failed: {reason}", "error"),
}


def install_html(state: InstallState) -> str:
    """The build's state, with the log's last lines while building or after a failure."""
    headline, level = HEADLINES[state.state]
    html = message_html(headline.format(reason=state.reason), level)
    if state.log_tail and state.state in ("building", "failed"):
        html += f'<pre class="ts-rendered">{esc(state.log_tail)}</pre>'
    return html


def button_props(state: InstallState, install_allowed: bool) -> dict:
    """Install when not built, Retry after a failure; hidden while building, once ready, and
    where the app may not install."""
    return {
        "value": "Retry the install" if state.state == "failed" else "Install AutoTrain",
        "visible": install_allowed and state.state in ("not built", "failed"),
    }


def box_visible(ok: bool, state: InstallState, install_allowed: bool) -> bool:
    """The box shows where the app may install, and wherever a build runs or failed."""
    return not ok and (install_allowed or state.state in ("building", "failed"))


def note(ok: bool, reason: str, state: InstallState, install_allowed: bool) -> str:
    building = state.state == "building"
    return tf.autotrain_note(ok, reason, install_allowed and not building, building)


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
    state = install_state()
    refused = backend == "autotrain" and not ok
    if refused:
        gr.Warning("AutoTrain is not installed here: the note under the choice says how.")
    radio = gr.update(choices=tf.backend_choices(ok), **({"value": "lora"} if refused else {}))
    box = gr.update(visible=box_visible(ok, state, install_allowed))
    return radio, note(ok, reason, state, install_allowed), box


def on_install(install_allowed: bool = False):
    """Start the background build (or find it running or done); the timer follows it.
    Returns (install status, install button, timer)."""
    if not install_allowed:
        refusal = f"Installing software is not allowed here: run `{tf.SETUP}` on the server."
        return message_html(refusal, "error"), gr.skip(), gr.skip()
    state = start_background_install()
    return install_html(state), gr.update(**button_props(state, True)), gr.Timer(active=True)


def on_install_tick(shown: str, install_allowed: bool = False):
    """Timer tick: the build's state, re-sent only when it changed; the timer stops once no
    build runs. Returns (install status, install button, install box, backend radio, note,
    shown, timer)."""
    state = install_state()
    timer = gr.Timer(active=state.state == "building")
    key = f"{state.state}\n{state.log_tail}"
    if key == shown:
        return (*(gr.skip(),) * 6, timer)
    ok, reason = AUTOTRAIN.available()
    return (
        install_html(state),
        gr.update(**button_props(state, install_allowed)),
        gr.update(visible=box_visible(ok, state, install_allowed)),
        gr.update(choices=tf.backend_choices(ok)),
        note(ok, reason, state, install_allowed),
        key,
        timer,
    )


def build_autotrain_panel(backend: gr.Radio, install_allowed: bool) -> tuple:
    """The note and install box under the Backend radio, wired to it. Returns on_backend's
    (handler, inputs, outputs), which the tab runs again on page load (another page may
    have installed AutoTrain since)."""
    ok, reason = AUTOTRAIN.available()
    state = install_state()
    backend_md = gr.Markdown(note(ok, reason, state, install_allowed))
    with gr.Column(visible=box_visible(ok, state, install_allowed)) as install_box:
        install_status = gr.HTML(install_html(state))
        install_btn = gr.Button(**button_props(state, install_allowed), size="sm")
    shown = gr.State("")  # the state last rendered: the first tick renders the current one
    timer = gr.Timer(POLL_S)  # each page ticks at least once; it goes quiet when no build runs
    quiet = {"show_progress": "hidden", "api_visibility": "private"}
    check = partial(on_backend, install_allowed=install_allowed)
    backend_io = (check, [backend], [backend, backend_md, install_box])
    backend.input(*backend_io, **quiet)
    install_btn.click(
        partial(on_install, install_allowed=install_allowed),
        None,
        [install_status, install_btn, timer],
        **quiet,
    )
    timer.tick(
        partial(on_install_tick, install_allowed=install_allowed),
        shown,
        [install_status, install_btn, install_box, backend, backend_md, shown, timer],
        concurrency_limit=None,  # file reads only: never wait in line
        **quiet,
    )
    return backend_io
