"""The model picker at the top of the app: one base model for every tab.

Choices come from `training.models.catalogue.list_models()`: the bundled offline default, local
folders, and Hub ids (shown as unavailable, with the reason, when the Hub cannot be
reached). Free entry of a Hub id or a local folder path is allowed. "Trust remote code"
stays off unless the user ticks it. Settings.default_model (TUNESMITH_DEFAULT_MODEL: a
catalogue key, a folder or a Hub id) sets the initially selected model.
"""

import logging
import os
from typing import NamedTuple

import gradio as gr

from training.models.catalogue import ModelEntry, default_model, list_models
from training.settings import Settings

log = logging.getLogger(__name__)


class ModelPicker(NamedTuple):
    model: gr.Dropdown  # value: catalogue key, folder path or Hub id (RunConfig.model)
    trust_remote_code: gr.Checkbox  # RunConfig.trust_remote_code
    note: gr.Markdown  # one line about the selected model


def choice_label(entry: ModelEntry) -> str:
    size = f", {entry.params}" if entry.params and entry.params != "?" else ""
    label = f"{entry.label}{size}"
    return label if entry.available else f"{label} (unavailable: {entry.reason})"


def catalogue(selected: str) -> list[ModelEntry]:
    """list_models(), plus the selected folder when it is not in the catalogue yet."""
    extra = [selected] if os.path.isdir(selected) else []
    return list_models(extra)


def model_note(name: str, entries: list[ModelEntry]) -> str:
    """Markdown line under the picker: why a model cannot be used, or what to expect."""
    entry = next((e for e in entries if e.key == name), None)
    if entry is None:
        return "Custom model: it is checked when the Data or Train tab first needs it."
    if not entry.available:
        return f"⚠️ **{entry.key}** cannot be used right now: {entry.reason}."
    note = f" {entry.reason[0].upper()}{entry.reason[1:]}." if entry.reason else ""
    template = "" if entry.chat else " It has no chat template: use plain text data."
    return f"{entry.label}.{note}{template}"


def on_model_change(name: str | None) -> str:
    """Handler: refresh the note; warn when an unavailable entry is picked."""
    try:
        entries = catalogue(name or "")
        note = model_note(name or "", entries)
    except Exception:
        log.exception("model catalogue failed")
        return "The model list could not be read; see the server log."
    if note.startswith("⚠️"):
        gr.Warning(note.replace("**", "").removeprefix("⚠️ "))
    return note


def build_model_picker(settings: Settings | None = None) -> ModelPicker:
    """Lay out the picker row; returns (model dropdown, trust-remote-code checkbox, note)."""
    selected = (settings or Settings()).default_model or default_model()
    entries = catalogue(selected)
    choices = [(choice_label(e), e.key) for e in entries]
    if selected not in {e.key for e in entries}:
        choices.insert(0, (selected, selected))
    with gr.Row(equal_height=True):
        model = gr.Dropdown(
            choices=choices,
            value=selected,
            label="Base model",
            info="Pick one, or type a Hub id (owner/name) or a local model folder.",
            allow_custom_value=True,
            filterable=True,
            scale=4,
        )
        trust = gr.Checkbox(
            value=False,
            label="Trust remote code",
            info="Lets the model run Python code it ships. Only for models you trust.",
            scale=1,
        )
    note = gr.Markdown(model_note(selected, entries), elem_classes=["ts-model-note"])
    model.change(on_model_change, model, note, api_visibility="private", show_progress="hidden")
    return ModelPicker(model, trust, note)
