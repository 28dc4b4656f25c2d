"""The job store: one SQLite table indexing the app's runs (owner, device, status, queue
order, worker pid). A connection per call, so threads and processes never share one; WAL,
so the UI's polling reads never block the scheduler's writes.
"""

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DB_NAME = "jobs.sqlite3"
SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, run_dir TEXT NOT NULL, owner TEXT NOT NULL, device TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, seq INTEGER NOT NULL,
    created REAL NOT NULL, started REAL, finished REAL, pid INTEGER,
    resume INTEGER NOT NULL DEFAULT 0, cancel_at REAL)"""
COLUMNS = ("id", "run_dir", "owner", "device", "model", "status", "seq", "created", "started",
           "finished", "pid", "resume", "cancel_at")  # fmt: skip


@dataclass
class Job:
    id: str
    run_dir: str
    owner: str
    device: str
    model: str
    status: str  # one of rundir.STATUSES
    seq: int  # queue order: lower starts first
    created: float
    started: float | None = None
    finished: float | None = None
    pid: int | None = None  # worker pid, also its process group id (new session)
    resume: bool = False  # next start passes --resume
    cancel_at: float | None = None  # when SIGTERM was sent
    position: int | None = None  # queued only: 1 = starts next
    reason: str | None = None  # from status.json: why it failed / stopped
    advice: str | None = None  # from status.json: what to change
    progress: dict = field(default_factory=dict)  # last logged step, loss, eta...


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(SCHEMA)
        finally:
            con.close()

    @contextmanager
    def transaction(self):
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")  # writers queue up instead of failing mid-way
            yield con
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def rows(self, where: str = "1", args: tuple = ()) -> list[Job]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            rows = con.execute(
                f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE {where} ORDER BY seq", args
            ).fetchall()
        finally:
            con.close()
        return [Job(**dict(zip(COLUMNS, row, strict=True))) for row in rows]

    def get(self, job_id: str) -> Job:
        jobs = self.rows("id = ?", (job_id,))
        if not jobs:
            raise LookupError(f"There is no run {job_id!r}.")
        return jobs[0]

    def owners(self) -> list[tuple[str, str]]:
        """(run_dir, owner) of every run in the store."""
        return [(j.run_dir, j.owner) for j in self.rows()]
