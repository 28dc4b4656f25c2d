"""The job store: one SQLite table indexing the app's runs (owner, device, status, queue
order, worker pid). Every SQL statement of the app lives here. A connection per call, so
threads and processes never share one; WAL, so the UI's polling reads never block the
scheduler's writes. Methods that change a job take an optional `then` callback, run inside
the same transaction: whoever sees the new row also sees the status file it wrote.
"""

import sqlite3
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DB_NAME = "jobs.sqlite3"
SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, run_dir TEXT NOT NULL, owner TEXT NOT NULL, device TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, seq INTEGER NOT NULL,
    created REAL NOT NULL, started REAL, finished REAL, pid INTEGER,
    resume INTEGER NOT NULL DEFAULT 0, cancel_at REAL)"""
COLUMNS = (
    "id",
    "run_dir",
    "owner",
    "device",
    "model",
    "status",
    "seq",
    "created",
    "started",
    "finished",
    "pid",
    "resume",
    "cancel_at",
)


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

    # --- reads
    def owners(self) -> list[tuple[str, str]]:
        """(run_dir, owner) of every run in the store."""
        return [(j.run_dir, j.owner) for j in self.rows()]

    def of_owner(self, owner: str) -> list[Job]:
        return self.rows("owner = ?", (owner,))

    def queued(self, device: str) -> list[Job]:
        """The device's queue, first to start first."""
        return self.rows("status = 'queued' AND device = ?", (device,))

    def running(self, device: str | None = None) -> list[Job]:
        """Running jobs (on one device, or on any)."""
        if device is None:
            return self.rows("status = 'running'")
        return self.rows("status = 'running' AND device = ?", (device,))

    # --- writes
    def add(self, job_id: str, run_dir: str, owner: str, device: str, model: str) -> None:
        """Queue a new job at the end of the line."""
        with self.transaction() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            db.execute(
                "INSERT INTO jobs (id, run_dir, owner, device, model, status, seq, created) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (job_id, run_dir, owner, device, model, seq, time.time()),
            )

    def cancel(self, job_id: str, then: Callable[[str], None] = lambda status: None) -> Job:
        """Queued: cancelled now. Running: marked with the time cancel was asked (the caller
        signals the worker). Returns the job as it was before; `then(old status)` runs inside
        the transaction. ValueError when it has already ended."""
        with self.transaction() as db:
            job = self._get(db, job_id)
            if job.status == "queued":
                db.execute(
                    "UPDATE jobs SET status = 'cancelled', finished = ? WHERE id = ?",
                    (time.time(), job_id),
                )
            elif job.status == "running":
                db.execute("UPDATE jobs SET cancel_at = ? WHERE id = ?", (time.time(), job_id))
            else:
                raise ValueError(
                    f"Run {job_id} is already {job.status}; there is nothing to cancel."
                )
            then(job.status)
        return job

    def requeue(self, job_id: str, status: str, then: Callable[[], None] = lambda: None) -> None:
        """Put a stopped job (still in `status`) at the end of the line to resume."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'queued', resume = 1, started = NULL, finished = NULL, "
                "pid = NULL, cancel_at = NULL, seq = (SELECT MAX(seq) + 1 FROM jobs) "
                "WHERE id = ? AND status = ?",
                (job_id, status),
            )
            then()

    def claim(self, job_id: str, device: str, start: Callable[[], int | None]) -> int | None:
        """Start a queued job if its device is free, in one transaction (no half-started
        job): `start()` spawns the worker and returns its pid, or None when it could not
        start (the job is then failed). Returns the pid, or None."""
        with self.transaction() as db:
            busy = db.execute(
                "SELECT 1 FROM jobs WHERE device = ? AND status = 'running'", (device,)
            ).fetchone()
            if busy or self._get(db, job_id).status != "queued":
                return None
            pid = start()
            if pid is None:
                db.execute(
                    "UPDATE jobs SET status = 'failed', finished = ? WHERE id = ?",
                    (time.time(), job_id),
                )
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', started = ?, pid = ? WHERE id = ?",
                (time.time(), pid, job_id),
            )
            return pid

    def finish(self, job_id: str, status: str, then: Callable[[], None] = lambda: None) -> bool:
        """Record how a running job ended; False when another process recorded it first."""
        with self.transaction() as db:
            won = db.execute(
                "UPDATE jobs SET status = ?, finished = ? WHERE id = ? AND status = 'running'",
                (status, time.time(), job_id),
            ).rowcount
            if won:
                then()
        return bool(won)

    @staticmethod
    def _get(db, job_id: str) -> Job:
        row = db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"There is no run {job_id!r}.")
        return Job(**dict(zip(COLUMNS, row, strict=True)))
