"""Sign in with Hugging Face, in Chromium, across devices: runs made before signing in are
kept, the same person sees the same runs on another device, another person never does, and
the Export tab's repository box starts at their username.

The app runs as `python app.py` with OAUTH_CLIENT_ID set (sign-in on) outside a Space, where
Gradio mocks sign-in locally; the mock signs in whoever `/login/huggingface?user=NAME`
names instead of the machine's own Hub login (offline here). Everything else is the app's.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app_server import free_port, wait_ready
from tests.test_browser import CHROMIUM_ARGS
from training.paths import REPO_ROOT

pytestmark = pytest.mark.slow

MOCK_SIGN_IN = """
import runpy, time
import gradio.oauth
from fastapi import Request
from fastapi.responses import RedirectResponse

def routes(app):
    @app.get("/login/huggingface")
    async def login(request: Request):
        user = request.query_params["user"]
        request.session["oauth_info"] = {
            "access_token": "hf_oauth_" + user, "token_type": "bearer",
            "scope": "openid profile manage-repos", "expires_at": int(time.time()) + 3600,
            "userinfo": {"preferred_username": user, "name": user.title(), "picture": "",
                         "profile": "https://huggingface.co/" + user, "orgs": []},
        }
        return RedirectResponse("/")

    @app.get("/logout")
    async def logout(request: Request):
        request.session.pop("oauth_info", None)
        return RedirectResponse("/")

gradio.oauth._add_mocked_oauth_routes = routes
runpy.run_path("app.py", run_name="__main__")
"""


@pytest.fixture
def app_url(tmp_path, tiny_model_dir):
    port = free_port()
    env = {
        **{k: v for k, v in __import__("os").environ.items() if k != "SPACE_ID"},
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "TUNESMITH_HOME": str(tmp_path / "home"),
        "TUNESMITH_DEFAULT_MODEL": str(tiny_model_dir),
        "TUNESMITH_MAX_STEPS": "2",  # an epoch-based run stops after 2 steps
        "OAUTH_CLIENT_ID": "tunesmith-test",
        "HF_HUB_OFFLINE": "1",
    }
    log_path = tmp_path / "app.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", MOCK_SIGN_IN], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
        )
        url = f"http://localhost:{port}/"
        try:
            wait_ready(url, proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = log_path.read_text()
    assert "Traceback" not in text, text
    assert "hf_oauth_" not in text  # the sign-in token is never logged


def device(pw, tmp_path: Path, name: str):
    """One browser profile: a device of its own (cookies, localStorage)."""
    return pw.chromium.launch_persistent_context(
        str(tmp_path / f"chromium-{name}"),
        executable_path=shutil.which("chromium"),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
    )


def run_list(page):
    page.get_by_role("tab", name="Train").click()
    return page.locator("#ts-jobs")


def test_runs_follow_the_signed_in_person_across_devices(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        laptop = device(pw, tmp_path, "laptop").new_page()
        laptop.goto(app_url)
        laptop.get_by_role("button", name="Try this sample").click()
        expect(laptop.locator("#ts-verdict")).to_contain_text("Ready to train", timeout=60_000)
        laptop.get_by_role("tab", name="Train").click()
        laptop.get_by_role("button", name="Start training").click()
        notice = laptop.locator("#ts-notice")
        expect(notice).to_contain_text("queued", timeout=60_000)
        run_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", notice.inner_text()).group(0)
        expect(run_list(laptop)).to_contain_text(run_id, timeout=30_000)

        laptop.goto(app_url + "login/huggingface?user=alice")  # signs in, back to the app
        expect(laptop.locator("#ts-login")).to_contain_text("alice", timeout=30_000)
        expect(run_list(laptop)).to_contain_text(run_id, timeout=30_000)  # kept on sign-in

        phone = device(pw, tmp_path, "phone").new_page()
        phone.goto(app_url + "login/huggingface?user=alice")
        expect(phone.locator("#ts-login")).to_contain_text("alice", timeout=30_000)
        expect(run_list(phone)).to_contain_text(run_id, timeout=30_000)  # same runs elsewhere
        phone.get_by_role("tab", name="Export").click()
        expect(phone.get_by_label("Hub repository")).to_have_value("alice/")

        bob = device(pw, tmp_path, "bob").new_page()
        bob.goto(app_url + "login/huggingface?user=bob")
        expect(bob.locator("#ts-login")).to_contain_text("bob", timeout=30_000)
        jobs = run_list(bob)
        expect(jobs).to_be_visible()
        bob.wait_for_timeout(3000)  # a few polls of the run list
        assert run_id not in jobs.inner_text()
        bob.get_by_role("tab", name="Export").click()
        expect(bob.get_by_label("Hub repository")).to_have_value("bob/")

        laptop.goto(app_url + "logout")  # signed out: the runs went with alice
        expect(laptop.locator("#ts-login")).to_contain_text("Sign in", timeout=30_000)
        jobs = run_list(laptop)
        laptop.wait_for_timeout(3000)
        assert run_id not in jobs.inner_text()
