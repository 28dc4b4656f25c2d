"""Which base models the app's visitors may load, and whether a model's own code may run.

    model, trust = check_base_model(model, trust, settings)   # every handler, before loading
    training_refusal(settings, username, orgs)                # may this visitor train here?

The app is public, so it loads only: the bundled default and the owner's default model
(Settings.default_model), Hugging Face Hub ids (owner/name), and model folders inside the
app's models folder or the owner's TUNESMITH_MODEL_DIRS (real paths: no '..' or symlink
leads out). Any other server path is refused with one message that does not say whether it
exists. A model's own Python code (trust_remote_code) runs in the app's process, next to
every visitor's runs and the Space's secrets: only when the owner allows it
(TUNESMITH_ALLOW_REMOTE_CODE) and never for an anonymous visitor of a Space. The CLI is the
machine owner's tool and does not ask.

Who may train is the owner's TUNESMITH_WHO_MAY_TRAIN: anyone, visitors signed in with
Hugging Face, or signed-in members of named organisations.
"""

import os
from pathlib import Path

from training.config import DEFAULT_MODEL
from training.models.catalogue import HUB_ID
from training.paths import models_dir
from training.settings import Settings

REFUSED = (
    "Only models from the list, Hugging Face Hub ids (owner/name) or folders the app's owner "
    "allows can be used here."
)


def model_roots(settings: Settings) -> list[Path]:
    """Folders whose model subfolders visitors may pick: the app's own models folder (the
    bundled model lives there) and the owner's TUNESMITH_MODEL_DIRS."""
    extra = [Path(p).expanduser() for p in settings.model_dirs.split(":") if p.strip()]
    return [models_dir(), *extra]


def allowed_folder(name: str, settings: Settings) -> str | None:
    """The real path of `name` when it lies strictly inside one of model_roots(), else None."""
    try:
        real = os.path.realpath(os.path.expanduser(name))
        for root in model_roots(settings):
            root = os.path.realpath(root)
            if real != root and os.path.commonpath([real, root]) == root:
                return real
    except (OSError, ValueError):  # a NUL byte, a path too long
        return None
    return None


def remote_code_refusal(settings: Settings, signed_in: bool = False) -> str:
    """Why a model's own code may not run for this visitor; '' when it may."""
    if not settings.allow_remote_code:
        return (
            "Models that run their own code are off: the app's owner has not allowed them "
            "(TUNESMITH_ALLOW_REMOTE_CODE)."
        )
    if settings.in_space and not signed_in:
        return "Models that run their own code are off on a public Space."
    return ""


def check_remote_code(trust, settings: Settings, signed_in: bool = False) -> bool:
    """The trust_remote_code to load with: True only when asked for (a real True, not a
    truthy value from an API call) and allowed; ValueError when asked for and not allowed."""
    if trust is not True:
        return False
    if why := remote_code_refusal(settings, signed_in):
        raise ValueError(why)
    return True


def check_base_model(model, trust, settings: Settings, signed_in: bool = False) -> tuple[str, bool]:
    """(model, trust_remote_code) a visitor may load, or ValueError with a plain message.
    A folder comes back as its real path, so the loader opens exactly what was checked."""
    name = (model or "").strip() if isinstance(model, str | None) else None
    if name is None:
        raise ValueError(REFUSED)
    if name in ("", DEFAULT_MODEL, settings.default_model):
        name = name or DEFAULT_MODEL
    elif is_hub_id(name):
        pass
    elif folder := allowed_folder(name, settings):
        name = folder
    else:
        raise ValueError(REFUSED)
    return name, check_remote_code(trust, settings, signed_in)


def is_hub_id(name: str) -> bool:
    """owner/name, and not also a folder the loader would open instead (it tries paths first)."""
    if not HUB_ID.fullmatch(name) or {".", ".."} & set(name.split("/")):
        return False
    return not os.path.lexists(name)


def training_refusal(settings: Settings, username: str | None, orgs=()) -> str:
    """Why this visitor may not start a run here; '' when they may. username: the Hugging
    Face username of a signed-in visitor (None when anonymous); orgs: their organisations."""
    who = settings.who_may_train.strip().lower()
    if who in ("", "anyone"):
        return ""
    allowed = sorted({o.strip() for o in who.split(",") if o.strip()} - {"signed-in"})
    members = f"members of {', '.join(allowed)} on Hugging Face" if allowed else ""
    if not username:
        if not settings.sign_in:
            return (
                "Training is not open to visitors of this app (its owner has not set up sign-in)."
            )
        return (
            f"Sign in with Hugging Face to train here{' (for ' + members + ')' if members else ''}."
        )
    if not allowed or {o.lower() for o in orgs} & set(allowed):
        return ""
    return (
        f"Training here is for {members}, and {username} is not one. Duplicate the Space to "
        "train on your own hardware."
    )
