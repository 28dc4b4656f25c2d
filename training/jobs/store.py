"""The job store: one SQLite table indexing the app's runs (owner, device, status, queue
order, worker pid) and what the run list shows (reason, last progress), so listing runs
never opens a run's files. Every SQL statement of the app lives here. A connection per
call, so threads and processes never share one; WAL, so the UI's polling reads never block
the scheduler's writes. Methods that change a job take an optional `then` callback, run
inside the same transaction: whoever sees the new row also sees the status file it wrote.
"""

import json
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
# Columns added since the first release: a store made before gets them on open.
ADDED = {"reason": "TEXT", "advice": "TEXT", "progress": "TEXT", "ran_s": "REAL"}
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
    *ADDED,
)
ACTIVE = "status IN ('queued', 'running')"
DAY_S = 24 * 3600  # the window of the per-visitor training minutes


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
    reason: str | None = None  # why it failed / stopped / waits
    advice: str | None = None  # what to change
    progress: dict | None = field(default_factory=dict)  # last logged step, loss, eta...
    ran_s: float | None = None  # seconds run before its last resume
    position: int | None = None  # queued only: 1 = starts next
    phase: str | None = None  # from status.json while running (AutoTrain's milestones)


def _job(row) -> Job:
    job = Job(**dict(zip(COLUMNS, row, strict=True)))
    job.progress = json.loads(job.progress) if job.progress else {}
    return job


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(SCHEMA)
            have = {row[1] for row in con.execute("PRAGMA table_info(jobs)")}
            for name, kind in ADDED.items():
                if name not in have:
                    con.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
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
        return [_job(row) for row in rows]

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

    def refusal(
        self, owner: str, per_owner: int | None, waiting: int | None, minutes: float | None = None
    ) -> str | None:
        """Why one more queued run is refused for this owner now, or None (see add)."""
        con = sqlite3.connect(self.path, timeout=30)
        try:
            return self._refusal(con, owner, per_owner, waiting, minutes)
        finally:
            con.close()

    def minutes_used(self, owner: str) -> float:
        """Training minutes this owner's runs took in the last 24 hours (running ones so far)."""
        con = sqlite3.connect(self.path, timeout=30)
        try:
            return self._minutes_used(con, owner)
        finally:
            con.close()

    def reassign(self, old: str, new: str) -> int:
        """Give every run of owner `old` to owner `new` (a visitor who signs in keeps the runs
        made before); the number of runs moved."""
        with self.transaction() as db:
            return db.execute("UPDATE jobs SET owner = ? WHERE owner = ?", (new, old)).rowcount

    # --- writes
    def add(
        self,
        job_id: str,
        run_dir: str,
        owner: str,
        device: str,
        model: str,
        per_owner: int | None = None,
        waiting: int | None = None,
        minutes: float | None = None,
    ) -> None:
        """Queue a new job at the end of the line. ValueError when the owner already has
        per_owner runs queued or running, `waiting` runs wait in all, or the owner used their
        training minutes for the day (None: no limit); checked in the same transaction, so
        requests racing in cannot all slip through."""
        with self.transaction() as db:
            if refused := self._refusal(db, owner, per_owner, waiting, minutes):
                raise ValueError(refused)
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            db.execute(
                "INSERT INTO jobs (id, run_dir, owner, device, model, status, seq, created) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (job_id, run_dir, owner, device, model, seq, time.time()),
            )

    def note(self, job_id: str, progress: dict) -> None:
        """The last progress of a running job, for the run list."""
        with self.transaction() as db:
            db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(progress), job_id))

    def cancel(self, job_id: str, then: Callable[[str], None] = lambda status: None) -> Job:
        """Queued: cancelled now. Running: marked with the time cancel was asked (the caller
        signals the worker). Returns the job as it was before; `then(old status)` runs inside
        the transaction. ValueError when it has already ended."""
        with self.transaction() as db:
            job = self._get(db, job_id)
            if job.status == "queued":
                db.execute(
                    "UPDATE jobs SET status = 'cancelled', finished = ?, reason = ? WHERE id = ?",
                    (time.time(), "Cancelled before it started.", job_id),
                )
            elif job.status == "running":
                db.execute("UPDATE jobs SET cancel_at = ? WHERE id = ?", (time.time(), job_id))
            else:
                raise ValueError(
                    f"Run {job_id} is already {job.status}; there is nothing to cancel."
                )
            then(job.status)
        return job

    def requeue(
        self,
        job_id: str,
        status: str,
        per_owner: int | None = None,
        waiting: int | None = None,
        minutes: float | None = None,
        then: Callable[[], None] = lambda: None,
    ) -> None:
        """Put a stopped job (still in `status`) at the end of the line to resume, within
        the same limits as add. The time it ran so far is kept in ran_s."""
        with self.transaction() as db:
            owner = self._get(db, job_id).owner
            if refused := self._refusal(db, owner, per_owner, waiting, minutes):
                raise ValueError(refused)
            db.execute(
                "UPDATE jobs SET status = 'queued', resume = 1, "
                "ran_s = COALESCE(ran_s, 0) + COALESCE(finished - started, 0), "
                "started = NULL, finished = NULL, "
                "pid = NULL, cancel_at = NULL, seq = (SELECT MAX(seq) + 1 FROM jobs), "
                "reason = 'Waiting to resume from the last checkpoint.', advice = NULL "
                "WHERE id = ? AND status = ?",
                (job_id, status),
            )
            then()

    def claim(self, job_id: str, device: str, start: Callable[[], int | str | None]) -> int | None:
        """Start a queued job if its device is free, in one transaction (no half-started
        job): `start()` spawns the worker and returns its pid, or None or the reason it
        could not start (the job is then failed, with that reason). Returns the pid, or None."""
        with self.transaction() as db:
            busy = db.execute(
                "SELECT 1 FROM jobs WHERE device = ? AND status = 'running'", (device,)
            ).fetchone()
            if busy or self._get(db, job_id).status != "queued":
                return None
            pid = start()
            if not isinstance(pid, int):
                db.execute(
                    "UPDATE jobs SET status = 'failed', finished = ?, reason = ? WHERE id = ?",
                    (time.time(), pid, job_id),
                )
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', started = ?, pid = ?, reason = NULL "
                "WHERE id = ?",
                (time.time(), pid, job_id),
            )
            return pid

    def finish(
        self,
        job_id: str,
        status: str,
        reason: str | None = None,
        advice: str | None = None,
        progress: dict | None = None,
        was: str = "running",
        then: Callable[[], None] = lambda: None,
    ) -> bool:
        """Record how a job ended (a running one, or a queued one that cannot start), why,
        and its last progress; False when another process recorded it first."""
        with self.transaction() as db:
            won = db.execute(
                "UPDATE jobs SET status = ?, finished = ?, reason = ?, advice = ?, "
                "progress = COALESCE(?, progress) WHERE id = ? AND status = ?",
                (
                    status,
                    time.time(),
                    reason,
                    advice,
                    None if progress is None else json.dumps(progress),
                    job_id,
                    was,
                ),
            ).rowcount
            if won:
                then()
        return bool(won)

    @staticmethod
    def _minutes_used(db, owner: str) -> float:
        """The app's own hardware only: a run on Hugging Face Jobs (device hf-jobs:...) is
        billed to the visitor's account."""
        now = time.time()
        seconds = db.execute(
            "SELECT COALESCE(SUM(COALESCE(ran_s, 0) + "
            "CASE WHEN started IS NULL THEN 0 ELSE COALESCE(finished, ?) - started END), 0) "
            "FROM jobs WHERE owner = ? AND COALESCE(finished, ?) >= ? "
            "AND device NOT LIKE 'hf-jobs:%'",
            (now, owner, now, now - DAY_S),
        ).fetchone()[0]
        return seconds / 60

    @classmethod
    def _refusal(
        cls, db, owner: str, per_owner: int | None, waiting: int | None, minutes=None
    ) -> str | None:
        if minutes and cls._minutes_used(db, owner) >= minutes:
            return (
                f"You have used your {minutes:g} training minutes for today on this app; "
                "come back tomorrow, or duplicate the Space to train on your own hardware."
            )
        if per_owner is not None:
            mine = db.execute(f"SELECT COUNT(*) FROM jobs WHERE owner = ? AND {ACTIVE}", (owner,))
            if mine.fetchone()[0] >= per_owner:
                return (
                    f"You already have {per_owner} runs queued or running; wait for one to "
                    "finish or cancel one."
                )
        if waiting is not None:
            queued = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
            if queued >= waiting:
                return (
                    f"The queue is full ({queued} runs are waiting); try again once some have "
                    "started."
                )
        return None

    @staticmethod
    def _get(db, job_id: str) -> Job:
        row = db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"There is no run {job_id!r}.")
        return _job(row)
