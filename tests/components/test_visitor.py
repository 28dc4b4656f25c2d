"""Who the visitor is: a random browser id, or their Hugging Face username once signed in
(the same runs on every device, the browser's earlier runs adopted), and who may train."""

import gradio as gr
import pytest

from components.visitor import build_visitor, ensure_owner, org_names
from training.config import RunConfig
from training.jobs.runner import JobRunner
from training.settings import Settings


def profile(username: str, *orgs: str) -> gr.OAuthProfile:
    """What Gradio injects for a signed-in visitor (Hugging Face's userinfo)."""
    return gr.OAuthProfile(
        {
            "preferred_username": username,
            "name": username.title(),
            "picture": "",
            "profile": f"https://huggingface.co/{username}",
            "orgs": [{"preferred_username": o, "name": o.title()} for o in orgs],
        }
    )


def identify(settings: Settings = Settings()):  # noqa: B008
    with gr.Blocks():
        return build_visitor(settings).identify


@pytest.fixture(autouse=True)
def local_sign_in(monkeypatch):
    """Outside a Space Gradio mocks sign-in with the machine's own Hub login; offline here."""
    import gradio.oauth

    monkeypatch.setattr(gradio.oauth, "_get_mocked_oauth_info", lambda: {})


@pytest.fixture
def runner():
    runner = JobRunner()  # never started: submitted jobs stay queued with their owner
    yield runner
    runner.shutdown()


def test_the_browser_id_is_only_ever_a_random_id():
    token = ensure_owner(None)
    assert len(token) == 24 and ensure_owner(token) == token
    # An API caller can send any value as the browser's: none of these is kept.
    for sent in ("", "hf:alice", "alice", token + "x", 42, ["hf:alice"], {"id": token}):
        fresh = ensure_owner(sent)
        assert fresh != sent and len(fresh) == 24 and ":" not in fresh


def test_the_browser_state_keeps_its_key_across_restarts(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    settings = Settings()
    with gr.Blocks():
        first, second = build_visitor(settings), build_visitor(settings)
    assert first.browser.storage_key == "tunesmith-owner"
    assert first.browser.secret == second.browser.secret == settings.browser_secret()


def test_anonymous_visitors_own_runs_by_browser_id():
    browser = ensure_owner(None)
    assert identify()(browser, None) == (browser, browser, "")


def test_signing_in_adopts_the_browsers_runs_and_follows_the_user(runner):
    laptop, phone = ensure_owner(None), ensure_owner(None)
    job = runner.submit(RunConfig(model="a/m", data="d.jsonl"), laptop)
    who = identify()
    assert who(laptop, profile("alice")) == (laptop, "hf:alice", "")
    assert [j.id for j in runner.jobs_for("hf:alice")] == [job.id]
    assert runner.jobs_for(laptop) == []
    # another device, signed in as alice: the same runs; bob sees none of them
    assert who(phone, profile("alice"))[1] == "hf:alice"
    assert who(ensure_owner(None), profile("bob"))[1] == "hf:bob"
    assert runner.jobs_for("hf:bob") == []
    # a page that sends alice's owner string as its browser id gets a fresh id instead
    _, owner, _ = who("hf:alice", None)
    assert owner != "hf:alice" and runner.jobs_for(owner) == []


def test_who_may_train_anyone_signed_in_or_organisations():
    anyone = identify(Settings())
    assert anyone(ensure_owner(None), None)[2] == ""
    signed = identify(Settings(who_may_train="signed-in", oauth_client_id="x"))
    assert "Sign in with Hugging Face to train here" in signed(ensure_owner(None), None)[2]
    assert signed(ensure_owner(None), profile("alice"))[2] == ""
    orgs = identify(Settings(who_may_train="acme, BigCo", oauth_client_id="x"))
    assert "for members of acme, bigco" in orgs(ensure_owner(None), None)[2]
    assert orgs(ensure_owner(None), profile("alice", "bigco"))[2] == ""
    refused = orgs(ensure_owner(None), profile("bob", "other"))[2]
    assert "bob is not one" in refused and "Duplicate the Space" in refused
    # no sign-in set up: nobody can be signed in, and the message says why
    closed = identify(Settings(who_may_train="signed-in"))
    assert "has not set up sign-in" in closed(ensure_owner(None), None)[2]


def test_a_page_that_never_identified_may_not_train():
    settings = Settings(who_may_train="signed-in", oauth_client_id="x")
    with gr.Blocks():
        visitor = build_visitor(settings)
    assert visitor.owner.value == "" and "Sign in" in visitor.refusal.value


def test_org_names_tolerate_odd_userinfo():
    assert org_names(None) == [] and org_names({"orgs": "acme"}) == []
    assert org_names({"orgs": [{"name": "Acme"}, "x", {"preferred_username": "acme"}]}) == [
        "Acme",
        "acme",
    ]


def test_the_login_button_shows_only_where_sign_in_is_set_up():
    for settings, shown in ((Settings(), False), (Settings(oauth_client_id="abc"), True)):
        with gr.Blocks() as demo:
            build_visitor(settings)
        assert any(isinstance(b, gr.LoginButton) for b in demo.blocks.values()) is shown
