"""The job store: queue order, the one-running-job-per-device claim, cancel and finish
races, the `then` callbacks that run inside the same transaction, the queue limits, and what
the run list shows."""

import contextlib
import sqlite3
import threading

import pytest

from training.jobs.store import SCHEMA, JobStore


@pytest.fixture
def store(tmp_path):
    return JobStore(tmp_path / "jobs.sqlite3")


def add(store, job_id, owner="alice", device="cpu"):
    store.add(job_id, f"/runs/{job_id}", owner, device, "tiny")


def test_jobs_queue_in_order_per_device(store):
    for job_id, device in (("a", "cpu"), ("b", "cuda:0"), ("c", "cpu")):
        add(store, job_id, device=device)
    assert [j.id for j in store.queued("cpu")] == ["a", "c"]
    assert [j.id for j in store.queued("cuda:0")] == ["b"]
    assert store.get("a").status == "queued" and store.get("a").seq < store.get("c").seq


def test_a_device_runs_one_job_at_a_time(store):
    add(store, "a")
    add(store, "b")
    assert store.claim("a", "cpu", lambda: 101) == 101
    started = []
    assert store.claim("b", "cpu", lambda: started.append(1) or 102) is None
    assert started == []  # the second worker was never spawned
    assert [j.id for j in store.running("cpu")] == ["a"] and store.get("a").pid == 101


def test_a_worker_that_cannot_start_fails_its_job(store):
    add(store, "a")
    assert store.claim("a", "cpu", lambda: None) is None
    assert store.get("a").status == "failed" and store.running() == []


def test_concurrent_claims_start_exactly_one_worker(store):
    for job_id in ("a", "b", "c", "d"):
        add(store, job_id)
    spawned, barrier = [], threading.Barrier(4)

    def claim(job_id):
        barrier.wait()
        store.claim(job_id, "cpu", lambda: spawned.append(job_id) or 7)

    threads = [threading.Thread(target=claim, args=(j,)) for j in ("a", "b", "c", "d")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spawned) == 1 and len(store.running("cpu")) == 1


def test_cancel_queued_running_and_ended(store):
    add(store, "q")
    add(store, "r")
    store.claim("r", "cpu", lambda: 5)
    seen = []
    assert store.cancel("q", then=seen.append).status == "queued"
    assert store.get("q").status == "cancelled" and seen == ["queued"]
    store.cancel("r")
    running = store.get("r")
    assert running.status == "running" and running.cancel_at is not None  # the runner signals
    with pytest.raises(ValueError, match="already cancelled"):
        store.cancel("q")
    with pytest.raises(LookupError, match="no run 'nope'"):
        store.cancel("nope")


def test_finish_is_won_once_and_then_runs_only_for_the_winner(store):
    add(store, "a")
    store.claim("a", "cpu", lambda: 5)
    calls = []
    assert store.finish("a", "completed", then=lambda: calls.append("first"))
    assert not store.finish("a", "failed", then=lambda: calls.append("second"))
    assert store.get("a").status == "completed" and calls == ["first"]


def test_requeue_puts_a_stopped_job_last_to_resume(store):
    add(store, "a")
    add(store, "b")
    store.claim("a", "cpu", lambda: 5)
    store.finish("a", "interrupted")
    store.requeue("a", "interrupted")
    job = store.get("a")
    assert job.status == "queued" and job.resume and job.pid is None and job.started is None
    assert [j.id for j in store.queued("cpu")] == ["b", "a"]


def test_a_failing_callback_rolls_the_change_back(store):
    add(store, "a")

    def boom(status):
        raise OSError("disk full")

    with pytest.raises(OSError):
        store.cancel("a", then=boom)
    assert store.get("a").status == "queued"


def test_owners_and_of_owner(store):
    add(store, "a", owner="alice")
    add(store, "b", owner="bob")
    assert sorted(store.owners()) == [("/runs/a", "alice"), ("/runs/b", "bob")]
    assert [j.id for j in store.of_owner("bob")] == ["b"]


def test_limits_per_owner_and_for_the_whole_queue(store):
    for job_id in ("a1", "a2", "a3"):
        store.add(job_id, f"/runs/{job_id}", "alice", "cpu", "tiny", per_owner=3, waiting=5)
    with pytest.raises(ValueError, match="You already have 3 runs queued or running"):
        store.add("a4", "/runs/a4", "alice", "cpu", "tiny", per_owner=3, waiting=5)
    store.claim("a1", "cpu", lambda: 5)
    store.finish("a1", "failed")  # an ended run no longer counts
    store.add("a4", "/runs/a4", "alice", "cpu", "tiny", per_owner=3, waiting=5)
    store.add("b1", "/runs/b1", "bob", "cpu", "tiny", per_owner=3, waiting=5)
    assert store.refusal("carol", 3, 5) is None
    store.add("c1", "/runs/c1", "carol", "cpu", "tiny", per_owner=3, waiting=5)
    assert "The queue is full (5 runs are waiting)" in store.refusal("dave", 3, 5)
    with pytest.raises(ValueError, match="The queue is full"):
        store.add("d1", "/runs/d1", "dave", "cpu", "tiny", per_owner=3, waiting=5)
    with pytest.raises(ValueError, match="You already have 3"):  # a resume counts too
        store.requeue("a1", "failed", per_owner=3, waiting=None)
    assert store.get("a1").status == "failed" and len(store.queued("cpu")) == 5


def test_concurrent_adds_never_pass_the_limits(store):
    barrier = threading.Barrier(12)

    def add(i):
        barrier.wait()
        with contextlib.suppress(ValueError):  # refused: the limit was reached
            store.add(f"j{i}", f"/runs/j{i}", "alice", "cpu", "tiny", per_owner=3)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.of_owner("alice")) == 3


def test_the_run_list_fields_live_in_the_store(store):
    add(store, "a")
    store.claim("a", "cpu", lambda: 5)
    store.note("a", {"step": 3, "total_steps": 10, "eta": 42.0})
    assert store.get("a").progress == {"step": 3, "total_steps": 10, "eta": 42.0}
    store.finish("a", "failed", "The disk is full: x.", "Free some space.")
    job = store.get("a")
    assert (job.reason, job.advice, job.progress["step"]) == (
        "The disk is full: x.",
        "Free some space.",
        3,
    )
    add(store, "b")
    assert store.claim("b", "cpu", lambda: "The worker could not start: no python") is None
    assert store.get("b").reason == "The worker could not start: no python"
    add(store, "c")
    store.cancel("c")
    assert store.get("c").reason == "Cancelled before it started."
    assert store.finish("c", "interrupted", was="queued") is False  # already ended


def test_a_store_made_before_the_list_columns_gets_them(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as con:
        con.execute(SCHEMA)
        con.execute(
            "INSERT INTO jobs (id, run_dir, owner, device, status, seq, created) "
            "VALUES ('old', '/runs/old', 'alice', 'cpu', 'completed', 1, 0)"
        )
    con.close()
    store = JobStore(path)
    [job] = store.of_owner("alice")
    assert (job.id, job.reason, job.progress) == ("old", None, {})
    add(store, "new")
    store.claim("new", "cpu", lambda: 5)
    store.finish("new", "failed", "The disk is full: x.", progress={"step": 7})
    assert (store.get("new").reason, store.get("new").progress) == (
        "The disk is full: x.",
        {"step": 7},
    )
