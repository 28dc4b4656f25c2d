"""Share links: a token grants chat with one run and nothing else, until its owner revokes
it; the table survives restarts (it is on disk)."""

import pytest

from tests.assets import make_run
from training.config import RunConfig
from training.jobs import runs, shares
from training.jobs.runner import JobRunner
from training.paths import runs_dir


@pytest.fixture
def alice_run(tiny_model_dir):
    runner = JobRunner()  # never started: the job only records its owner
    job = runner.submit(RunConfig(model=str(tiny_model_dir), data="data.jsonl"), "alice")
    run = make_run(runs_dir() / job.run_dir.split("/")[-1], tiny_model_dir)
    yield run
    runner.shutdown()


def test_a_link_lets_anyone_chat_with_that_run_until_revoked(alice_run, tiny_model_dir):
    other = make_run(runs_dir() / "cli-run", tiny_model_dir)
    share = shares.create(alice_run, "alice", "final", "Hello?")
    assert len(share.token) == 32 and shares.get(share.token) == share
    assert runs.owned(str(alice_run), "bob") is None  # bob alone cannot open it
    assert shares.chat_owner(share.token, str(alice_run), "bob") == "alice"
    assert runs.open(str(alice_run), "final", shares.chat_owner(share.token, str(alice_run), "bob"))
    # The token opens that run only: any other run keeps bob's own access.
    assert shares.chat_owner(share.token, str(other), "bob") == "bob"
    for junk in (None, "", "x" * 32, share.token[:-1], 42, ["a"], share.token + "a"):
        assert shares.chat_owner(junk, str(alice_run), "bob") == "bob"
    assert shares.of_run(alice_run, "alice") == [share]
    assert not shares.revoke(share.token, "bob")  # only the owner stops a link
    assert shares.revoke(share.token, "alice")
    assert shares.get(share.token) is None
    assert shares.chat_owner(share.token, str(alice_run), "bob") == "bob"
    assert shares.of_run(alice_run, "alice") == []


def test_revoke_run_stops_every_link_and_only_app_runs_can_be_shared(alice_run, tmp_path):
    tokens = [shares.create(alice_run, "alice").token for _ in range(3)]
    assert len(set(tokens)) == 3
    assert shares.revoke_run(alice_run, "bob") == 0
    assert shares.revoke_run(alice_run, "alice") == 3
    assert all(shares.get(t) is None for t in tokens)
    with pytest.raises(ValueError):
        shares.create(tmp_path, "alice")
