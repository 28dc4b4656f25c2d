"""Share links: anyone with the link may chat with one run in the Playground; nothing else.

    share = create(run_dir, owner, "final", "What is 12 km in miles?")   # the owner's run
    link = f"{app_url}?share={share.token}"
    chat_owner(token, run, visitor)   # whose run access a Playground request gets
    revoke(token, owner)              # the link stops working at once

A link carries an unguessable token (`secrets.token_urlsafe(24)`: 192 random bits). The
table lives in the state root (SQLite, so links survive restarts). A token grants exactly one
thing: `chat_owner` lets the Playground open that run and checkpoint as its owner would. The
Train, Evaluate and Export tabs never look at shares, so a link cannot cancel, evaluate,
export or list anything; every request checks the token again, so a revoked link stops
working for pages already open.
"""

import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from training.paths import home, runs_dir

DB_NAME = "shares.sqlite3"
TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Share:
    token: str
    run: str  # the run folder's name under runs_dir()
    checkpoint: str
    owner: str
    prompt: str  # preloaded in the Playground
    created: float

    @property
    def run_dir(self) -> Path:
        return runs_dir() / self.run


def _db() -> sqlite3.Connection:
    con = sqlite3.connect(home() / DB_NAME, timeout=30, isolation_level=None)
    con.execute(
        "CREATE TABLE IF NOT EXISTS shares (token TEXT PRIMARY KEY, run TEXT NOT NULL, "
        "checkpoint TEXT NOT NULL, owner TEXT NOT NULL, prompt TEXT NOT NULL, "
        "created REAL NOT NULL, revoked REAL)"
    )
    return con


def create(run_dir: Path, owner: str, checkpoint: str = "final", prompt: str = "") -> Share:
    """A new link to a run the caller has already checked belongs to `owner` (runs.open)."""
    run_dir = Path(run_dir).resolve()
    if run_dir.parent != runs_dir().resolve():
        raise ValueError("Only runs of this app can be shared.")
    share = Share(
        secrets.token_urlsafe(24), run_dir.name, checkpoint, owner, prompt[:2000], time.time()
    )
    con = _db()
    try:
        con.execute(
            "INSERT INTO shares VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (share.token, share.run, share.checkpoint, share.owner, share.prompt, share.created),
        )
    finally:
        con.close()
    return share


def get(token) -> Share | None:
    """The live share this token stands for; None for anything else (revoked, unknown,
    malformed: an API caller can send any value)."""
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        return None
    con = _db()
    try:
        row = con.execute(
            "SELECT token, run, checkpoint, owner, prompt, created FROM shares "
            "WHERE token = ? AND revoked IS NULL",
            (token,),
        ).fetchone()
    finally:
        con.close()
    return Share(*row) if row else None


def chat_owner(token, run, visitor: str) -> str:
    """The owner whose access a Playground request on `run` gets: the sharer's, when the
    token is a live link to exactly that run; the visitor's own otherwise."""
    share = get(token)
    if share is None or not run:
        return visitor
    try:
        same = Path(run).resolve() == share.run_dir.resolve()
    except (OSError, ValueError, TypeError):
        return visitor
    return share.owner if same else visitor


def of_run(run_dir: Path, owner: str) -> list[Share]:
    """The owner's live links to this run, newest first."""
    con = _db()
    try:
        rows = con.execute(
            "SELECT token, run, checkpoint, owner, prompt, created FROM shares "
            "WHERE run = ? AND owner = ? AND revoked IS NULL ORDER BY created DESC",
            (Path(run_dir).name, owner),
        ).fetchall()
    finally:
        con.close()
    return [Share(*row) for row in rows]


def revoke(token: str, owner: str) -> bool:
    """Stop one link; only its owner can (False when it is not theirs or already off)."""
    con = _db()
    try:
        cur = con.execute(
            "UPDATE shares SET revoked = ? WHERE token = ? AND owner = ? AND revoked IS NULL",
            (time.time(), token, owner),
        )
    finally:
        con.close()
    return cur.rowcount == 1


def revoke_run(run_dir: Path, owner: str) -> int:
    """Stop every link the owner made to this run; how many were live."""
    con = _db()
    try:
        cur = con.execute(
            "UPDATE shares SET revoked = ? WHERE run = ? AND owner = ? AND revoked IS NULL",
            (time.time(), Path(run_dir).name, owner),
        )
    finally:
        con.close()
    return cur.rowcount
