"""The Data tab's Hugging Face Hub source: a dataset id, then its configuration, split and
revision picked from the dataset's own metadata, and the token private or gated datasets need.

The token is the visitor's: the one pasted in the password box, else their Hugging Face
sign-in's (gradio injects gr.OAuthToken into the handlers build_data_tab wires). It goes to
huggingface_hub for this request only: no handler returns, stores or logs it, and without
one no credentials are sent at all, never the Space's own HF_TOKEN. Who may read what is
decided in training/data/hub.py.
"""

import logging
from typing import NamedTuple

import gradio as gr

from components.format import message_html
from training.data.codes import DataError, make_finding
from training.data.hub import HubRef, as_ref, describe, revisions
from training.settings import Settings

log = logging.getLogger(__name__)

HUB_URL = "https://huggingface.co/datasets/"
FAILED = "Something went wrong on our side while looking the dataset up; the server log has it."


class HubPicker(NamedTuple):
    name: gr.Textbox  # OWNER/NAME (or a hub: reference, or the dataset's address)
    look_up: gr.Button
    config: gr.Dropdown
    split: gr.Dropdown
    revision: gr.Dropdown  # branches and tags; a commit's sha may be typed
    token: gr.Textbox  # password box: the visitor's read token, never stored
    load: gr.Button
    status: gr.HTML
    splits: gr.State  # {config: [split, ...]} of the dataset looked up


def visitor_token(pasted, oauth) -> str | bool:
    """The token a Hub request sends: pasted, else the sign-in's; False: none at all."""
    return (pasted or "").strip() or (oauth.token if oauth is not None else "") or False


def hub_ref(name, config=None, split=None, revision=None) -> HubRef:
    """The reference the pickers stand for (DataError when the name is not OWNER/NAME)."""
    text = (name or "").strip().removeprefix(HUB_URL).strip("/")
    text = text if text.startswith("hub:") else "hub:" + text
    ref = as_ref(text)
    return HubRef(ref.repo, config or ref.config, revision or ref.revision, split or ref.split)


def _picked(choices: list, wanted, fallback=None):
    return wanted if wanted in choices else (fallback if fallback in choices else choices[0])


def on_lookup(name, revision, token, config=None, split=None) -> tuple:
    """The pickers filled from the dataset's metadata at a revision: (config, split,
    revision, the splits by config, a status line). A refusal says why in the status."""
    empty = gr.update(choices=[], value=None)
    try:
        ref = hub_ref(name, revision=revision)
        meta = describe(ref.repo, ref.revision, token or False)
        revs = revisions(ref.repo, token or False)
    except DataError as e:
        said = make_finding(e.code, None, **e.details)
        return empty, empty, gr.update(), {}, message_html(f"{said.message} {said.hint}", "error")
    splits = {c: list(s) for c, s in meta.configs.items() if s}
    if not splits:
        return (
            empty,
            empty,
            gr.update(),
            {},
            message_html(str(DataError("hub_no_data", path=f"hub:{ref.repo}")), "error"),
        )
    config = _picked(list(splits), config or ref.config)
    split = _picked(splits[config], split or ref.split, "train")
    revision = ref.revision or "main"
    revs = revs if revision in revs else [*revs, revision]
    counts = f"{len(splits)} configuration{'s' * (len(splits) != 1)}"
    status = f"{ref.repo} at commit {meta.sha[:7]}: {counts}. Pick a split, then load it."
    return (
        gr.update(choices=list(splits), value=config),
        gr.update(choices=splits[config], value=split),
        gr.update(choices=revs, value=revision),
        splits,
        message_html(status, "ok"),
    )


def on_config(config, splits: dict) -> dict:
    """Another configuration: its splits (known since the look-up; no request)."""
    choices = (splits or {}).get(config) or []
    return gr.update(choices=choices, value=_picked(choices, "train") if choices else None)


def build_hub_picker(settings: Settings) -> HubPicker:
    """Lay out the Hub source (inside the Data tab) and wire its look-ups; build_data_tab
    wires "Load this split" into the tab's views."""
    signed = " Blank: your Hugging Face sign-in." if settings.sign_in else ""
    with gr.Accordion("…or a Hugging Face Hub dataset", open=False):
        with gr.Row(equal_height=True):
            name = gr.Textbox(
                label="Dataset", placeholder="owner/name", scale=3, elem_id="ts-hub-name"
            )
            look_up = gr.Button("Look up", scale=1)
        with gr.Row():
            config = gr.Dropdown([], label="Configuration", interactive=True)
            split = gr.Dropdown([], label="Split", interactive=True)
            revision = gr.Dropdown(
                ["main"],
                value="main",
                label="Revision",
                info="A branch or tag; or paste a commit's sha.",
                allow_custom_value=True,
                interactive=True,
            )
        token = gr.Textbox(
            label="Hugging Face token (read), for private or gated datasets",
            type="password",
            info="Used for this request only: never stored, logged or shown." + signed,
        )
        load = gr.Button("Load this split", variant="primary")
        status = gr.HTML(elem_id="ts-hub-status")
    hub = HubPicker(name, look_up, config, split, revision, token, load, status, gr.State({}))
    _wire(hub)
    return hub


def _wire(hub: HubPicker) -> None:
    pickers = [hub.config, hub.split, hub.revision, hub.splits, hub.status]
    private = {"api_visibility": "private", "trigger_mode": "always_last"}

    def safely(*args) -> tuple:
        try:
            return on_lookup(*args)
        except Exception:
            log.exception("Data tab: looking up a Hub dataset failed")
            return (*(gr.update(),) * 4, message_html(FAILED, "error"))

    def look_up(name, pasted, oauth: gr.OAuthToken | None):
        return safely(name, None, visitor_token(pasted, oauth))

    def pick_revision(name, revision, config, split, pasted, oauth: gr.OAuthToken | None):
        return safely(name, revision, visitor_token(pasted, oauth), config, split)

    gr.on([hub.look_up.click, hub.name.submit], look_up, [hub.name, hub.token], pickers, **private)
    inputs = [hub.name, hub.revision, hub.config, hub.split, hub.token]
    gr.on([hub.revision.input], pick_revision, inputs, pickers, **private)
    hub.config.input(on_config, [hub.config, hub.splits], hub.split, api_visibility="private")
