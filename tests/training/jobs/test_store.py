"""The job store: queue order, the one-running-job-per-device claim, cancel and finish
races, and the `then` callbacks that run inside the same transaction."""

import threading

import pytest

from training.jobs.store import JobStore


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
