"""The Train tab in Chromium: simple mode first (how long to train, the suggested plan and
why), expert settings under Advanced, and the settings and the open run brought back by a
page reload (with the chosen dataset)."""

import re

import pytest

from tests.app_server import serve
from tests.test_browser import open_browser

pytestmark = pytest.mark.slow


def test_simple_mode_and_a_reload_keeps_settings_and_the_open_run(tmp_path, tiny_model_dir):
    from playwright.sync_api import expect, sync_playwright

    with (
        serve(tmp_path, str(tiny_model_dir), TUNESMITH_MAX_STEPS="2") as url,
        sync_playwright() as pw,
    ):
        browser = open_browser(pw, tmp_path)
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("button", name="Try this sample").click()
        expect(page.locator("#ts-verdict")).to_contain_text("Ready to train", timeout=60_000)
        page.get_by_role("tab", name="Train").click()
        plan = page.locator("#ts-plan")
        expect(plan).to_contain_text("Suggested", timeout=30_000)
        expect(plan).to_contain_text("passes over")
        # expert settings are out of sight until asked for
        batch = page.get_by_label("number input for Batch size")
        expect(batch).to_be_hidden()
        page.locator("#ts-length").get_by_text("Thorough", exact=True).click()
        page.get_by_role("button", name="Advanced settings").click()
        expect(batch).to_be_visible(timeout=30_000)
        batch.fill("2")
        batch.press("Tab")
        page.get_by_role("button", name="Start training").click()
        notice = page.locator("#ts-notice")
        expect(notice).to_contain_text("queued", timeout=60_000)
        run_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", notice.inner_text()).group(0)
        page.screenshot(path="/tmp/tunesmith-train-simple.png", full_page=True)

        # The page-load chain (who the visitor is, their runs, this machine's defaults, then
        # the kept settings) shares 2 cores with the run training now: give it time.
        page.reload()
        expect(page.locator("#ts-verdict")).to_contain_text("Ready to train", timeout=90_000)
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#ts-length input[value=thorough]")).to_be_checked(timeout=90_000)
        page.get_by_role("button", name="Advanced settings").click()
        expect(page.get_by_label("number input for Batch size")).to_have_value("2", timeout=60_000)
        expect(page.locator("#ts-run-status")).to_contain_text(run_id, timeout=60_000)
        browser.close()
