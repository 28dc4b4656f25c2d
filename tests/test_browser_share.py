"""A shared comparison in Debian Chromium: the owner trains a run, chats and shares it; a
second browser (another visitor) opens the link on a read-only Playground with the question
preloaded and chats with base and tuned; that visitor cannot see the run anywhere else,
cannot share it, and through the API the link opens nothing but that Playground; once the
owner stops sharing, the open page stops answering.
Screenshot: /tmp/tunesmith-shared.png."""

import re

import pytest

from tests.app_server import serve
from tests.test_browser import open_browser

pytestmark = pytest.mark.slow


def test_a_share_link_opens_a_read_only_playground_for_that_run(tmp_path, tiny_model_dir):
    from gradio_client import Client
    from playwright.sync_api import expect, sync_playwright

    with (
        serve(tmp_path, str(tiny_model_dir), TUNESMITH_MAX_STEPS="2") as url,
        sync_playwright() as pw,
    ):
        owner = open_browser(pw, tmp_path / "owner").new_page()
        owner.goto(url)
        owner.get_by_role("button", name="Try this sample").click()
        expect(owner.locator("#ts-verdict")).to_contain_text("Ready to train", timeout=60_000)
        owner.get_by_role("tab", name="Train").click()
        owner.get_by_role("button", name="Start training").click()
        notice = owner.locator("#ts-notice")
        expect(notice).to_contain_text("queued", timeout=60_000)
        run_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", notice.inner_text()).group(0)
        expect(owner.locator("#ts-run-status")).to_contain_text("completed", timeout=240_000)

        owner.get_by_role("tab", name="Playground").first.click()
        owner.locator("#ts-pg-run input").click()
        owner.get_by_role("option", name=re.compile(run_id)).click()
        expect(owner.locator("#ts-pg-checkpoint input")).to_have_value("final", timeout=30_000)
        owner.locator("#ts-pg-prompt textarea").fill("How many feet in a mile?")
        owner.locator("#ts-share").click()
        link_md = owner.locator("#ts-share-link")
        expect(link_md).to_contain_text("?share=", timeout=30_000)
        link = re.search(r"https?://\S+\?share=[A-Za-z0-9_-]{32}", link_md.inner_text()).group(0)
        token = link.split("share=")[1]

        # Another visitor, another browser profile, opens the link.
        viewer = open_browser(pw, tmp_path / "viewer").new_page()
        viewer.goto(link)
        prompt = viewer.locator("#ts-pg-prompt textarea")
        expect(prompt).to_have_value("How many feet in a mile?", timeout=60_000)
        expect(viewer.get_by_text("Shared comparison")).to_be_visible()
        viewer.locator("#ts-pg-send").click()
        stats = viewer.locator(".ts-reply-stats")
        for i in range(2):  # base and tuned both answer
            expect(stats.nth(i)).to_contain_text("generated", timeout=120_000)
        viewer.screenshot(path="/tmp/tunesmith-shared.png", full_page=True)
        viewer.locator("#ts-share").click()  # the viewer cannot pass it on
        expect(viewer.locator("#ts-share-link")).to_contain_text("Pick one of your runs")
        for tab in ("Evaluate", "Export"):  # nor find the run anywhere else
            viewer.get_by_role("tab", name=tab).first.click()
            viewer.wait_for_timeout(1500)
            assert run_id not in viewer.locator("body").inner_text()
        viewer.get_by_role("tab", name="Playground").first.click()

        # Through the API, the token is not a key to anything but that Playground: an API
        # session has no share (it is set on page load, server-side) and owns nothing.
        client = Client(url, verbose=False)
        run_path = str(tmp_path / "home" / "runs" / run_id)
        endpoint = client.view_api(return_format="dict")["named_endpoints"]["/playground_send"]
        params = endpoint["parameters"]
        asked = {p["parameter_name"]: p.get("parameter_default") for p in params}
        names = [p["parameter_name"] for p in params]
        asked |= {names[0]: "hi", names[1]: run_path, names[2]: "final"}  # prompt, run, ckpt
        asked |= {k: "" for k, v in asked.items() if v is None}
        *_, note = client.predict(**asked, api_name="/playground_send")
        assert "Pick a run" in note and token not in str(note)

        # The owner stops sharing: the open page stops answering.
        owner.locator("#ts-unshare").click()
        expect(owner.locator("#ts-share-link")).to_contain_text("Stopped 1 link", timeout=30_000)
        viewer.locator("#ts-pg-prompt textarea").fill("And in a kilometre?")
        viewer.locator("#ts-pg-send").click()
        expect(viewer.get_by_text("Pick a run and one of its checkpoints")).to_be_visible(
            timeout=60_000
        )
