"""The run picker shared by the Playground, Evaluate and Export tabs: a visitor lists and
picks only their own runs (and runs made with the CLI). Which runs a visitor may see, and
the check of any run value a handler receives, are training/jobs/runs.py's (`visible`,
`owned`, `open`)."""

import gradio as gr

from training.jobs import runs, shares

NO_RUN = ""  # the Playground's run value for "chat with the base model only"
BASE_ONLY = ("(none: base model only)", NO_RUN)


def run_choices(owner: str = "", base_only: bool = False, share: str = "") -> list[tuple[str, str]]:
    """The visitor's own runs (and CLI runs); other visitors' runs are never listed, except
    the one a share link this page was opened with names (training/jobs/shares.py)."""
    mine = [(p.name, str(p)) for p in runs.visible(owner)]
    shared = shares.get(share) if share else None
    if shared is not None and str(shared.run_dir) not in {value for _, value in mine}:
        mine.insert(0, (shared_label(shared), str(shared.run_dir)))
    return [BASE_ONLY, *mine] if base_only else mine


def shared_label(share) -> str:
    return f"{share.run} (shared with you)"


def build_run_row(
    tab: gr.Tab, owner, base_only: bool = False, elem_id: str | None = None, share=None
) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Run and checkpoint dropdowns with a refresh button; the list refreshes on the tab's
    select too, so runs that finished while the page was open appear. base_only: offer
    "(none: base model only)" first, and start there. share: the Playground's share-link
    state (its run is listed too)."""
    share = share if share is not None else gr.State("")
    ids = {"run": f"{elem_id}-run", "checkpoint": f"{elem_id}-checkpoint"} if elem_id else {}
    with gr.Row(equal_height=True):
        # Custom values allowed: choices change per session; runs.open() guards them.
        run = gr.Dropdown(
            [BASE_ONLY] if base_only else [],
            value=NO_RUN if base_only else None,
            label="Run",
            scale=3,
            allow_custom_value=True,
            elem_id=ids.get("run"),
        )
        checkpoint = gr.Dropdown(
            [],
            label="Checkpoint",
            info="final = the finished adapter",
            scale=2,
            allow_custom_value=True,
            elem_id=ids.get("checkpoint"),
        )
        refresh = gr.Button("Refresh runs", size="sm", scale=1)
    for trigger in (refresh.click, tab.select):
        trigger(
            lambda o, token: gr.update(choices=run_choices(o, base_only, token)),
            [owner, share],
            run,
            api_visibility="private",
        )
    return run, checkpoint


def checkpoint_update(run, owner: str) -> tuple[dict, object]:
    """(checkpoint dropdown update, the run folder or None) for a newly picked run value."""
    path = runs.owned(run, owner)
    checkpoints = runs.checkpoints(path) if path else []
    first = checkpoints[0] if checkpoints else None
    return gr.update(choices=checkpoints, value=first), path
