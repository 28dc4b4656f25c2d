"""Who the visitor is, shared by every tab that shows or acts on the visitor's runs.

Anonymous visitors are a random id kept in the browser's localStorage (gr.BrowserState):
reopening the page brings the same runs back. Where the Space has sign-in (hf_oauth), a
visitor signed in with Hugging Face owns their runs by username, on every device, and keeps
the runs this browser made before (training/jobs/runs.py decides ownership).

The browser's value arrives from the client and an API caller can send any string, so it is
only ever used as a random id: anything else gets a new one. Handlers read the owner from
`Visitor.owner`, a gr.State the server fills on page load and no request can set.
"""

import re
import secrets
from dataclasses import dataclass

import gradio as gr

from training.jobs import runs
from training.models.access import training_refusal
from training.settings import Settings

BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{24}")  # secrets.token_urlsafe(18)


@dataclass
class Visitor:
    browser: gr.BrowserState  # the random id kept in this browser
    owner: gr.State  # who owns the runs this page starts and sees: set on page load
    refusal: gr.State  # why this visitor may not train here; "" when they may
    identify: object  # the page-load handler: (browser id, profile) -> the three values


def build_visitor(settings: Settings) -> Visitor:
    """The visitor's states, and a "Sign in with Hugging Face" button where the Space has
    sign-in. Call inside the Blocks; wire `identify` on page load (the Train tab does)."""
    if settings.sign_in:
        gr.LoginButton("Sign in with Hugging Face", size="sm", elem_id="ts-login")

    def identify(browser_id, profile: gr.OAuthProfile | None):
        browser_id = ensure_owner(browser_id)
        username = profile.username if profile is not None else None
        owner = runs.owner_of(browser_id, username)
        runs.adopt(browser_id, owner)
        return browser_id, owner, training_refusal(settings, username, org_names(profile))

    return Visitor(
        browser=gr.BrowserState(
            "", storage_key="tunesmith-owner", secret=settings.browser_secret()
        ),
        owner=gr.State(""),
        refusal=gr.State(training_refusal(settings, None)),
        identify=identify,
    )


def ensure_owner(owner) -> str:
    """The browser's id when it is one this app made; a new random id otherwise."""
    if isinstance(owner, str) and BROWSER_ID.fullmatch(owner):
        return owner
    return secrets.token_urlsafe(18)


def org_names(profile) -> list[str]:
    """The organisations of a signed-in visitor, as Hugging Face's userinfo lists them."""
    orgs = (profile or {}).get("orgs") or []
    names = []
    for org in orgs if isinstance(orgs, list) else []:
        if isinstance(org, dict):
            names += [org.get(k) for k in ("preferred_username", "name") if org.get(k)]
    return names
