"""The model picker at the top of the app: one base model for every tab.

Choices come from `training.models.catalogue.list_models()`: the bundled offline default, model
folders in the owner's TUNESMITH_MODEL_DIRS, and Hub ids (shown as unavailable, with the
reason, when the Hub cannot be reached). A typed Hub id or allowed folder is accepted; what is
allowed is decided in training/models/access.py, which every loading handler asks again.
"Trust remote code" stays off unless the user ticks it, and cannot be ticked where the owner
has not allowed it. Settings.default_model (TUNESMITH_DEFAULT_MODEL: a catalogue key, a folder
or a Hub id) sets the initially selected model.
"""

import logging
import os
from functools import partial
from typing import NamedTuple

import gradio as gr

from training.models.access import check_base_model, model_roots, remote_code_refusal
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


def catalogue(selected: str, settings: Settings | None = None) -> list[ModelEntry]:
    """list_models() with the owner's model folders, plus the selected folder when it is not
    in the catalogue yet. selected: a model check_base_model() allowed, or the owner's."""
    extra = [selected] if os.path.isdir(selected) else []
    return list_models(extra, model_roots(settings or Settings()))


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


def on_model_change(name: str | None, settings: Settings | None = None) -> str:
    """Handler: refresh the note; warn when an unavailable or refused entry is picked."""
    settings = settings or Settings()
    try:
        name, _ = check_base_model(name, False, settings)
        entries = catalogue(name, settings)
        note = model_note(name, entries)
    except ValueError as e:
        note = f"⚠️ {e}"
    except Exception:
        log.exception("model catalogue failed")
        return "The model list could not be read; see the server log."
    if note.startswith("⚠️"):
        gr.Warning(note.replace("**", "").removeprefix("⚠️ "))
    return note


def build_model_picker(settings: Settings | None = None) -> ModelPicker:
    """Lay out the picker row; returns (model dropdown, trust-remote-code checkbox, note)."""
    settings = settings or Settings()
    selected = settings.default_model or default_model()
    entries = catalogue(selected, settings)
    choices = [(choice_label(e), e.key) for e in entries]
    if selected not in {e.key for e in entries}:
        choices.insert(0, (selected, selected))
    with gr.Row(equal_height=True):
        model = gr.Dropdown(
            choices=choices,
            value=selected,
            label="Base model",
            info="Pick one, or type a Hub id (owner/name) or a folder the app's owner allows.",
            allow_custom_value=True,
            filterable=True,
            scale=4,
        )
        why_not = remote_code_refusal(settings)
        trust = gr.Checkbox(
            value=False,
            label="Trust remote code",
            info=why_not or "Lets the model run Python code it ships. Only for models you trust.",
            interactive=not why_not,
            scale=1,
        )
    note = gr.Markdown(model_note(selected, entries), elem_classes=["ts-model-note"])
    changed = partial(on_model_change, settings=settings)
    model.change(changed, model, note, api_visibility="private", show_progress="hidden")
    return ModelPicker(model, trust, note)
