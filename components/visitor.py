"""Who the visitor is: a random id kept in the browser's localStorage (gr.BrowserState),
shared by every tab that shows or acts on the visitor's runs. Reopening the page brings the
same runs back; the id is encrypted with the app's browser secret (training/settings.py)."""

import secrets

import gradio as gr

from training.settings import Settings


def owner_state(settings: Settings) -> gr.BrowserState:
    """The visitor's id; empty until ensure_owner runs on the first page load."""
    return gr.BrowserState("", storage_key="tunesmith-owner", secret=settings.browser_secret())


def ensure_owner(owner: str | None) -> str:
    """A first-time visitor gets a new random id."""
    return owner or secrets.token_urlsafe(18)
