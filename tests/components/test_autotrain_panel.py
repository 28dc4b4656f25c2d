"""The Train tab's AutoTrain box, called directly: each build state as HTML (log text
escaped), the Install / Retry button, the timer that follows a background build, and the app
starting the build when the owner asks (TUNESMITH_AUTOTRAIN=1). The build is a fake setup
command (tests/training/backends/test_autotrain_install.py)."""

import gradio as gr
import pytest

import app
from components import autotrain_panel as ap
from tests.assets import wait_for
from tests.training.backends.test_autotrain_install import FakeSetup
from training.backends import autotrain_install as ai
from training.backends.autotrain_install import InstallState
from training.jobs.runner import JobRunner
from training.settings import Settings

OUTPUTS = ("html", "button", "box", "radio", "note", "shown", "timer")


@pytest.fixture
def venv(tmp_path, monkeypatch):
    path = tmp_path / "venv-autotrain"
    monkeypatch.setenv("TUNESMITH_AUTOTRAIN_VENV", str(path))
    monkeypatch.setattr(ai, "_builder", None)
    yield path
    if ai._builder is not None:
        ai._builder.join(timeout=30)


def tick(shown: str = "", install_allowed: bool = True) -> dict:
    return dict(zip(OUTPUTS, ap.on_install_tick(shown, install_allowed), strict=True))


def test_each_build_state_has_its_html_and_the_log_is_escaped():
    tail = "Collecting torch\n<script>alert('pip')</script> & more"
    html = ap.install_html(InstallState("building", tail))
    assert "⏳ Building AutoTrain" in html and "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;pip&#x27;)&lt;/script&gt; &amp; more" in html
    failed = ap.install_html(InstallState("failed", tail, "exit code 3 <b>"))
    assert "ts-error" in failed and "failed: exit code 3 &lt;b&gt;" in failed
    assert "Collecting torch" in failed  # the lines that say why
    ready = ap.install_html(InstallState("ready", tail, "AutoTrain Advanced 0.8.36"))
    assert "ts-ok" in ready and "0.8.36" in ready and "Collecting" not in ready
    assert "not built yet" in ap.install_html(InstallState("not built", tail, "how"))
    props = {s: ap.button_props(InstallState(s), True) for s in ap.HEADLINES}
    assert props["not built"] == {"value": "Install AutoTrain", "visible": True}
    assert props["failed"] == {"value": "Retry the install", "visible": True}
    assert not props["building"]["visible"] and not props["ready"]["visible"]
    assert not ap.button_props(InstallState("failed"), False)["visible"]  # not allowed here


def test_the_button_starts_the_build_and_the_timer_follows_it_to_ready(venv, tmp_path, monkeypatch):
    fake = FakeSetup(tmp_path, monkeypatch)
    assert ap.on_backend("lora", install_allowed=True)[2]["visible"] is True  # the box shows
    html, button, timer = ap.on_install(install_allowed=True)
    assert "Building" in html and button["visible"] is False and timer.active is True
    assert ap.on_install(install_allowed=True)[0].count("Building") == 1  # a second click
    first = wait_for(lambda: (t := tick()) and "token: absent" in t["html"] and t)
    assert "[1/2] creating the venv &lt;here&gt;" in first["html"]  # the log, escaped
    assert first["timer"].active is True and first["box"]["visible"] is True
    assert ("AutoTrain Advanced (not installed)", "autotrain") in first["radio"]["choices"]
    assert "press **Install AutoTrain**" not in first["note"]  # it is being installed
    same = tick(first["shown"])  # nothing new (the fake waits): nothing re-sent
    assert same["html"] == same["radio"] == gr.skip() and same["timer"].active is True
    fake.finish()
    done = tick(first["shown"])
    assert ("AutoTrain Advanced", "autotrain") in done["radio"]["choices"]
    assert done["note"].startswith("✅") and done["box"]["visible"] is False
    assert done["timer"].active is False  # no build runs: the timer stops
    quiet = tick(done["shown"])
    assert quiet["html"] == gr.skip() and quiet["timer"].active is False
    assert fake.count() == 1


def test_a_failed_build_shows_why_and_offers_a_retry(venv, tmp_path, monkeypatch):
    fake = FakeSetup(tmp_path, monkeypatch, code=3)
    ap.on_install(install_allowed=True)
    fake.finish()
    failed = tick()
    assert "exit code 3" in failed["html"] and "[2/2] installing" in failed["html"]
    assert failed["button"] == gr.update(value="Retry the install", visible=True)
    assert failed["box"]["visible"] is True and failed["timer"].active is False
    assert "press **Install AutoTrain**" in failed["note"]
    fake.code = 0
    assert "Building" in ap.on_install(install_allowed=True)[0]  # Retry
    fake.finish()
    assert tick(failed["shown"])["note"].startswith("✅") and fake.count() == 2


def test_a_build_the_owner_started_shows_even_where_visitors_may_not_install(
    venv, tmp_path, monkeypatch
):
    fake = FakeSetup(tmp_path, monkeypatch)
    assert ap.on_backend("lora")[2]["visible"] is False  # nothing to show: no box
    ai.start_background_install()  # TUNESMITH_AUTOTRAIN=1 at start
    assert ap.on_backend("lora")[2]["visible"] is True
    shown = tick(install_allowed=False)
    assert "Building" in shown["html"] and shown["button"]["visible"] is False
    fake.finish()


def test_the_app_starts_the_build_when_the_owner_asks(venv, tmp_path, monkeypatch):
    fake = FakeSetup(tmp_path, monkeypatch)
    runner = JobRunner(device="cpu", worker_cmd=["/bin/true"])  # never started
    try:
        app.build_app(Settings(), runner=runner)
        assert fake.count() == 0 and ai.install_state().state == "not built"
        demo = app.build_app(Settings(autotrain_on_start=True), runner=runner)
        assert ai.install_state().state == "building"
        wait_for(fake.count, what="the build's start")
        timers = [c for c in demo.get_config_file()["components"] if c["type"] == "timer"]
        assert len(timers) == 2  # the runs' poll and the build's
        assert fake.finish().state == "ready"
    finally:
        runner.shutdown()
