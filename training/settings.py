"""The app's settings, read once from the environment when the app starts.

    settings = Settings.from_env()      # app.py does this and hands it to every tab

Every variable the app reads lives here, with its default and what it is for; nothing below
app.py reads the environment for an app setting. (Library switches such as HF_HUB_OFFLINE
and the state root TUNESMITH_HOME, which the CLI honours too, are read where they act:
training/paths.py.)
"""

import os
import secrets
from dataclasses import dataclass, field, fields

from training.paths import home


@dataclass(frozen=True)
class Settings:
    max_upload_mb: float = field(
        default=200.0,
        metadata={"env": "TUNESMITH_MAX_UPLOAD_MB", "help": "Largest upload accepted, in MB."},
    )
    concurrency: int = field(
        default=2,
        metadata={"env": "TUNESMITH_CONCURRENCY", "help": "Events run at once; others queue."},
    )
    default_model: str = field(
        default="",
        metadata={
            "env": "TUNESMITH_DEFAULT_MODEL",
            "help": "Model selected at start (catalogue key, folder or Hub id); empty = catalogue default.",
        },
    )
    push_with_space_token: bool = field(
        default=False,
        metadata={
            "env": "TUNESMITH_PUSH_WITH_SPACE_TOKEN",
            "help": "1 = a blank token box pushes with the Space's HF_TOKEN secret. Off by "
            "default: on a public Space any visitor could then write to the owner's account.",
        },
    )
    allow_install: bool = field(
        default=False,
        metadata={
            "env": "TUNESMITH_ALLOW_INSTALL",
            "help": "1 = the app may install AutoTrain from the Train tab (always on in a Space).",
        },
    )
    allow_remote_code: bool = field(
        default=False,
        metadata={
            "env": "TUNESMITH_ALLOW_REMOTE_CODE",
            "help": "1 = a model's own Python code (trust_remote_code) may run when the visitor "
            "ticks it. Off by default; never for anonymous visitors of a public Space.",
        },
    )
    model_dirs: str = field(
        default="",
        metadata={
            "env": "TUNESMITH_MODEL_DIRS",
            "help": "Folders (separated by ':') whose model subfolders may be chosen as a base "
            "model; any other server path is refused.",
        },
    )
    max_jobs_per_visitor: int = field(
        default=3,
        metadata={
            "env": "TUNESMITH_MAX_JOBS_PER_VISITOR",
            "help": "Runs one visitor may have queued or running at once.",
        },
    )
    max_queued: int = field(
        default=20,
        metadata={"env": "TUNESMITH_MAX_QUEUED", "help": "Runs waiting, all visitors together."},
    )
    max_steps: int = field(
        default=10000,
        metadata={
            "env": "TUNESMITH_MAX_STEPS",
            "help": "Most optimizer steps one run may take (epoch-based runs included).",
        },
    )
    queue_size: int = field(
        default=64,
        metadata={
            "env": "TUNESMITH_QUEUE_SIZE",
            "help": "Requests waiting in the app's queue at most; more are turned away at once.",
        },
    )
    who_may_train: str = field(
        default="anyone",
        metadata={
            "env": "TUNESMITH_WHO_MAY_TRAIN",
            "help": "anyone, signed-in (visitors signed in with Hugging Face), or organisation "
            "names separated by ',' (signed-in members of one of them).",
        },
    )
    minutes_per_visitor: float = field(
        default=0.0,
        metadata={
            "env": "TUNESMITH_MINUTES_PER_VISITOR",
            "help": "Training minutes one visitor may use per day (all their runs); 0 = no limit.",
        },
    )
    autotrain_on_start: bool = field(
        default=False,
        metadata={
            "env": "TUNESMITH_AUTOTRAIN",
            "help": "1 = build AutoTrain's environment in the background when the app starts "
            "(into persistent storage on a Space, so a restart keeps it).",
        },
    )
    zero_gpu: bool = field(
        default=False,
        metadata={
            "env": "SPACES_ZERO_GPU",
            "help": "Set by Hugging Face on ZeroGPU hardware: GPU work runs under @spaces.GPU.",
        },
    )
    space_id: str = field(
        default="", metadata={"env": "SPACE_ID", "help": "Set by Hugging Face inside a Space."}
    )
    oauth_client_id: str = field(
        default="",
        metadata={
            "env": "OAUTH_CLIENT_ID",
            "help": "Set by Hugging Face in a Space with hf_oauth: true: visitors may sign in "
            "with Hugging Face (their runs then follow them to any device).",
        },
    )
    browser_secret_env: str = field(
        default="",
        metadata={
            "env": "TUNESMITH_BROWSER_SECRET",
            "help": "Key of the visitor id kept in the browser; empty = one generated under "
            "TUNESMITH_HOME and kept across restarts.",
        },
        repr=False,
    )

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        """Each field from its variable (metadata "env"); unset or blank keeps the default.
        A value that does not parse stops the app at start with the variable's name."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"], "").strip()
            if not raw:
                continue
            if f.type is bool:
                values[f.name] = raw.lower() in ("1", "true", "yes")
                continue
            try:
                values[f.name] = f.type(raw)
            except ValueError:
                kind = f.type.__name__
                raise ValueError(f"{f.metadata['env']}={raw!r} is not a valid {kind}.") from None
        return cls(**values)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def in_space(self) -> bool:
        return bool(self.space_id)

    @property
    def sign_in(self) -> bool:
        """Visitors can sign in with Hugging Face (the Space's OAuth app is set up)."""
        return bool(self.oauth_client_id)

    @property
    def install_allowed(self) -> bool:
        """Inside a Space the app owns its machine; elsewhere only when told so (building
        AutoTrain at start counts: a failed build may then be retried from the page)."""
        return self.in_space or self.allow_install or self.autotrain_on_start

    @property
    def server_name(self) -> str:
        # Inside a Space the proxy reaches the app on all interfaces.
        return "0.0.0.0" if self.in_space else "127.0.0.1"

    def browser_secret(self) -> str:
        """Fixed across restarts, so the browser's stored visitor id still decrypts after one."""
        if self.browser_secret_env:
            return self.browser_secret_env
        path = home() / "browser_secret"
        if not path.is_file():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def server_key(self) -> bytes:
        """A key that never leaves the server (browser_secret is sent to every page, since the
        browser encrypts with it): signs what the app keeps in a visitor's browser, so a value
        sent back, by the page or by an API caller, is accepted only if this app wrote it."""
        path = home() / "server_key"
        if not path.is_file():
            tmp = path.with_name(f".server_key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
            os.replace(tmp, path)  # two processes at once: both keys are whole, one wins
        return path.read_bytes().strip()
