"""The run picker shared by the Playground, Evaluate and Export tabs: a visitor lists and
uses only their own runs (and runs made with the CLI), and every handler re-checks the
values it receives, since an API caller can send any string."""

from pathlib import Path

import gradio as gr

from training.jobs import runs
from training.jobs.runner import may_see
from training.paths import runs_dir

NO_RUN = ""  # the Playground's run value for "chat with the base model only"


def run_choices(owner: str = "") -> list[tuple[str, str]]:
    """The visitor's own runs (and CLI runs); other visitors' runs are never listed."""
    mine = [(p.name, str(p)) for p in runs.list_runs() if may_see(p, owner)]
    return [("(none: base model only)", NO_RUN), *mine]


def owned_run(run: str, owner: str) -> str:
    """The run if the visitor may use it, else "" (a typed-in path or another visitor's run)."""
    if run and Path(run).resolve().parent == runs_dir().resolve() and may_see(run, owner):
        return run
    return ""


def checked_run(run: str, checkpoint: str | None = "final", owner: str = "") -> Path:
    """Only the visitor's runs under the runs folder and their own checkpoints: API callers
    pick values freely, so the lists alone guard nothing."""
    path = Path(run).resolve()
    if path.parent != runs_dir().resolve() or checkpoint not in runs.checkpoints(path):
        raise ValueError("Pick a run and one of its checkpoints from the lists.")
    if not may_see(path, owner):
        raise ValueError("Pick a run and one of its checkpoints from the lists.")
    return path


def build_run_row(tab: gr.Tab, owner) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Run and checkpoint dropdowns with a refresh button; the list refreshes on the tab's
    select too, so runs that finished while the page was open appear."""
    with gr.Row(equal_height=True):
        # Custom values allowed: choices change per session; checked_run() guards them.
        run = gr.Dropdown([], value=None, label="Run", scale=3, allow_custom_value=True)
        checkpoint = gr.Dropdown([], label="Checkpoint", scale=2, allow_custom_value=True)
        refresh = gr.Button("Refresh runs", size="sm", scale=1)
    for trigger in (refresh.click, tab.select):
        trigger(
            lambda o: gr.update(choices=run_choices(o)[1:]), owner, run, api_visibility="private"
        )
    return run, checkpoint
