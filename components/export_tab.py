"""Export tab: take a run away: its adapter as a .zip, a merged model (built, or downloaded as a
.zip), or a push to the Hugging Face Hub, each with the model card
(training/export/model_card.py) previewed here first. Messages never name a server path.

Every handler re-checks that the run is the visitor's (API callers pick values freely), and
that neither the run's model nor the "trust remote code" box runs a model's own code where
the app's owner has not allowed it (training/models/access.py).
The token box is a password field whose value goes to the Hub client only: no handler
returns it, and failures are logged with it scrubbed out (training/export/export.py).
"""

import logging
import re
import shutil
import tempfile
from functools import partial
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from components.format import message_html
from components.run_picker import build_run_row, checkpoint_update
from training.export import demo_space, export
from training.jobs import runs
from training.models.access import check_remote_code, remote_code_refusal
from training.settings import Settings

log = logging.getLogger(__name__)

KINDS = [
    ("LoRA adapter (small; needs the base model)", "adapter"),
    ("Merged model (standalone; as large as the base model)", "merged"),
]
PICK = "Pick one of your runs with a finished adapter."


def preview_markdown(card: str) -> str:
    """The card for gr.Markdown: its front matter as a YAML block, then the body. The card
    already escapes every user string (training/model_card.md)."""
    match = re.match(r"---\n(.*?)\n---\n", card, re.DOTALL)
    if not match:
        return card
    return f"```yaml\n{match.group(1)}\n```\n{card[match.end() :]}"


def _failed(action: str, exc: Exception) -> str:
    if isinstance(exc, export.ExportError | ValueError):  # already a plain message
        log.info("%s refused: %s", action, exc)
        return message_html(f"{action} failed: {exc}", "error")
    log.exception("%s failed", action)  # the detail stays in the server log
    return message_html(f"{action} failed; the server log has the details.", "error")


def card_preview(run: str, checkpoint: str, kind: str = "adapter", owner: str = "") -> str:
    try:
        path = runs.open(run, checkpoint, owner)
        return preview_markdown(export.model_card(path, checkpoint, kind or "adapter"))
    except Exception:
        log.info("no card preview for %s", run, exc_info=True)
        return PICK


def on_run(run: str, kind: str = "adapter", owner: str = ""):
    pick, path = checkpoint_update(run, owner)
    first = pick.get("value")
    return pick, card_preview(str(path) if path else "", first, kind, owner)


def checked_trust(path, trust, settings: Settings | None) -> bool:
    """The visitor's trust_remote_code, allowed; the run's own (its tokenizer loads with it)
    must be allowed too. ValueError with a plain message otherwise."""
    settings = settings or Settings()
    check_remote_code(runs.run_config(path).trust_remote_code, settings)
    return check_remote_code(trust, settings)


def download_zip(run: str, checkpoint: str, owner: str = "", settings: Settings | None = None):
    """(zip path for gr.File, status). The zip is copied to a temp folder: Gradio serves
    files only from there, the working directory or allowed_paths."""
    try:
        path = runs.open(run, checkpoint, owner)
        checked_trust(path, False, settings)
        out = tempfile.mkdtemp(prefix="tunesmith-export-")
        archive = export.adapter_zip(path, checkpoint, out_dir=out)
    except Exception as exc:
        return None, _failed("Export", exc)
    return str(archive), message_html(f"Adapter zip ready: {archive.name}", "ok")


def build_merged(
    run,
    checkpoint,
    trust_remote_code=False,
    owner="",
    progress=gr.Progress(),  # noqa: B008
    settings: Settings | None = None,
):
    try:
        path = runs.open(run, checkpoint, owner)
        folder = export.merge(
            path,
            checkpoint,
            trust_remote_code=checked_trust(path, trust_remote_code, settings),
            progress=lambda message: progress(None, desc=message),
        )
    except Exception as exc:
        return _failed("Merging", exc)
    log.info("merged model of %s in %s", run, folder)
    return message_html(
        "Merged model built: download it as a .zip, or push it to the Hub below.", "ok"
    )


def download_merged(
    run,
    checkpoint,
    trust_remote_code=False,
    owner="",
    progress=gr.Progress(),  # noqa: B008
    settings: Settings | None = None,
):
    """(zip path for gr.File, status): the merged model, built first if needed. The zip is
    written straight into Gradio's cache folder, which serves it without copying it again (it
    is as large as the base model); it replaces the previous zip of this run and checkpoint."""
    cache = Path(get_upload_folder())
    cache.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="tunesmith-merged-", dir=cache))
    try:
        path = runs.open(run, checkpoint, owner)
        archive = export.merged_zip(
            path,
            checkpoint,
            out,
            trust_remote_code=checked_trust(path, trust_remote_code, settings),
            progress=lambda message: progress(None, desc=message),
        )
    except Exception as exc:
        shutil.rmtree(out, ignore_errors=True)
        return None, _failed("Download", exc)
    for old in cache.glob(f"tunesmith-merged-*/{archive.name}"):
        if old != archive:
            shutil.rmtree(old.parent, ignore_errors=True)
    ready = f"Merged model zip ready: {archive.name} ({archive.stat().st_size / 1e9:.2f} GB)"
    return str(archive), message_html(ready, "ok")


def push_to_hub(
    run,
    checkpoint,
    kind,
    repo_id,
    private,
    token,
    trust_remote_code=False,
    owner="",
    progress=gr.Progress(),  # noqa: B008
    space_token: bool = False,
    settings: Settings | None = None,
    space_id: str = "",
):
    """token: the visitor's (pasted, or their sign-in's); blank: the Space's HF_TOKEN secret,
    only when space_token (its owner's TUNESMITH_PUSH_WITH_SPACE_TOKEN=1: on a public Space
    every visitor could otherwise write to the owner's account). Never returned or stored.
    space_id: also publish a demo Space that chats with the pushed model
    (training/export/demo_space.py), checked before anything is pushed."""
    action = "Publishing the demo" if space_id else "Push"
    try:
        path = runs.open(run, checkpoint, owner)
        kind = kind or "adapter"
        if space_id:
            export.check_repo_id(space_id)
            demo_space.check_publishable(path, kind)
        say = lambda message: progress(None, desc=message)  # noqa: E731
        url = export.publish(
            path,
            checkpoint,
            kind,
            repo_id,
            token or None,
            bool(private),
            checked_trust(path, trust_remote_code, settings),
            progress=say,
            env_fallback=space_token,
        )
        if space_id:
            say("Publishing the demo Space...")
            args = (path, space_id, repo_id, token or None, bool(private), kind)
            demo = demo_space.publish_demo_space(*args, env_fallback=space_token)
    except Exception as exc:
        return _failed(action, exc)
    if space_id:
        text = f"Model pushed to {url}; demo Space at {demo} (it builds in a few minutes)."
        return message_html(text, "ok")
    return message_html(f"Pushed to {url}", "ok")


def push_handler(space_token: bool, settings: Settings):
    """push_to_hub with the signed-in visitor's OAuth token (gradio injects it by type) used
    when the token box is blank: a visitor who signed in never pastes one. space_id: blank
    for "Push to the Hub", the Space's id for "Publish a demo"."""

    def push(
        run,
        checkpoint,
        kind,
        repo_id,
        space_id,
        private,
        token,
        trust,
        owner,
        oauth: gr.OAuthToken | None,
        progress=gr.Progress(),  # noqa: B008
    ):
        token = token or (oauth.token if oauth is not None else "")
        args = (run, checkpoint, kind, repo_id, private, token, trust, owner, progress)
        return push_to_hub(*args, space_token=space_token, settings=settings, space_id=space_id)

    return push


def your_repo(profile: gr.OAuthProfile | None):
    """The repository box starts at "username/" for a signed-in visitor."""
    return gr.update(value=f"{profile.username}/") if profile is not None else gr.skip()


def build_export_tab(owner=None, settings: Settings | None = None) -> None:
    """owner: the visitor (components/visitor.py's Visitor.owner); without one only CLI runs show.
    settings: whether a blank token box may push with the Space's own token."""
    owner = owner if owner is not None else gr.State("")
    settings = settings or Settings()
    space_token = settings.push_with_space_token
    why_not = remote_code_refusal(settings)
    with gr.Tab("Export") as tab:
        gr.Markdown(
            "Take a fine-tune away: download the LoRA adapter, merge it into the base model, "
            "or push either to the Hugging Face Hub. Each comes with the model card below."
        )
        run, checkpoint = build_run_row(tab, owner)
        kind = gr.Radio(KINDS, value="adapter", label="What to export or push")
        with gr.Row():
            with gr.Column():
                zip_button = gr.Button("Download adapter (.zip)")
                zip_file = gr.File(label="Adapter zip", interactive=False)
            with gr.Column():
                with gr.Row():
                    merge_button = gr.Button("Build merged model")
                    merged_zip_button = gr.Button("Download merged model (.zip)")
                merged_file = gr.File(label="Merged model zip", interactive=False)
                trust = gr.Checkbox(
                    False,
                    label="Trust remote code",
                    info=why_not
                    or "Only for a base model that ships its own code, and only if you trust it.",
                    interactive=not why_not,
                )
        with gr.Group():
            repo_id = gr.Textbox(label="Hub repository", placeholder="your-name/my-model")
            private = gr.Checkbox(True, label="Private repository")
            blank = " Blank: the Space's HF_TOKEN secret." if space_token else ""
            signed = " Blank: your Hugging Face sign-in." if settings.sign_in else ""
            token = gr.Textbox(
                label="Hugging Face token (write)",
                type="password",
                info="Used for this push only: never stored, logged or shown." + signed + blank,
            )
            push_button = gr.Button("Push to the Hub", variant="primary")
            with gr.Row():
                space_id = gr.Textbox(
                    label="Demo Space",
                    placeholder="your-name/my-model-demo",
                    info="A chat page anyone with access can try: pushes the model above, then "
                    "a small Gradio Space for it (private with the box above ticked).",
                    scale=3,
                )
                demo_button = gr.Button("Publish a demo", scale=1)
            no_space = gr.State("")  # "Push to the Hub": no demo Space
        status = gr.HTML()
        card = gr.Markdown(PICK, label="Model card (README.md)")
    private_api = {"api_visibility": "private"}
    one_at_a_time = {"concurrency_id": "export", "concurrency_limit": 1, **private_api}
    run.change(on_run, [run, kind, owner], [checkpoint, card], **private_api)
    for trigger in (checkpoint.change, kind.change):
        trigger(card_preview, [run, checkpoint, kind, owner], card, **private_api)
    zip_inputs = [run, checkpoint, owner]
    zip_button.click(
        partial(download_zip, settings=settings), zip_inputs, [zip_file, status], **private_api
    )
    merge_inputs = [run, checkpoint, trust, owner]
    merge_button.click(
        partial(build_merged, settings=settings), merge_inputs, status, **one_at_a_time
    )
    merged_zip_button.click(
        partial(download_merged, settings=settings),
        merge_inputs,
        [merged_file, status],
        **one_at_a_time,
    )
    push = push_handler(space_token, settings)
    for button, space in ((push_button, no_space), (demo_button, space_id)):
        button.click(
            push,
            [run, checkpoint, kind, repo_id, space, private, token, trust, owner],
            status,
            **one_at_a_time,
        )
    if settings.sign_in:
        gr.on(None, your_repo, None, repo_id, **private_api)
