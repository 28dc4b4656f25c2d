"""One browser flow on Debian Chromium: `python app.py` as a user starts it, a file with a
bad row uploaded, the report and the preview seen, and user content shown as text.

Model: TUNESMITH_DEFAULT_MODEL points the picker at a local folder, so the test never
waits for the bundled SmolLM2 to be converted. If a converted SmolLM2 folder already
exists in the default state root (`.tunesmith/models/`), that one is used (read only);
otherwise the tiny test model. The screenshot lands in /tmp/tunesmith-data-tab.png.
"""

import json
import shutil
from pathlib import Path

import pytest

from tests.app_server import model_for_test, serve

pytestmark = pytest.mark.slow
SCRIPT = "<script>alert('pwned')</script> ${1+1} {{7*7}}"
SCREENSHOT = Path("/tmp/tunesmith-data-tab.png")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture
def app_url(tmp_path, tiny_model_dir):
    with serve(tmp_path, model_for_test(tiny_model_dir)) as url:
        yield url


def open_browser(pw, tmp_path: Path):
    return pw.chromium.launch_persistent_context(
        str(tmp_path / "chromium"),
        executable_path=shutil.which("chromium"),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
    )


def test_upload_shows_report_and_preview(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    chat = [{"role": "user", "content": "Q{}?"}, {"role": "assistant", "content": "A{}."}]
    lines = [json.dumps({"messages": chat}).replace("{}", str(i)) for i in range(60)]
    lines[1] = json.dumps(
        {
            "messages": [
                {"role": "user", "content": SCRIPT},
                {"role": "assistant", "content": "Plain."},
            ]
        }
    )
    lines[2] = '{"messages": [{"role": "user", "content": "unfinished"'
    data = tmp_path / "one_bad_row.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")

    dialogs = []
    with sync_playwright() as pw:
        browser = open_browser(pw, tmp_path)
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(app_url)
        page.locator("#ts-upload input[type=file]").set_input_files(str(data))

        verdict = page.locator("#ts-verdict")
        expect(verdict).to_contain_text("Fix 1 error first", timeout=60_000)
        report = page.locator("#ts-report")
        expect(report).to_contain_text("not valid JSON")
        expect(report).to_contain_text("row 3")
        preview = page.locator("#ts-preview")
        expect(preview).to_contain_text("Q0?")
        expect(preview).to_contain_text(SCRIPT)  # shown as text, literally
        expect(page.locator("#ts-histogram svg")).to_be_visible()
        expect(page.locator("#ts-conversation")).to_contain_text("<|im_start|>user")

        page.locator("#ts-row input").fill("2")
        expect(page.locator("#ts-conversation")).to_contain_text(SCRIPT, timeout=30_000)
        assert page.locator("#ts-preview script, #ts-conversation script").count() == 0
        expect(page.get_by_text("processing")).to_have_count(0, timeout=30_000)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # A reload brings the same file back, checked again, with no server path shown.
        page.reload()
        expect(verdict).to_contain_text("Fix 1 error first", timeout=60_000)
        expect(page.locator("#ts-upload")).to_contain_text("one_bad_row")
        expect(report).to_contain_text("row 3")
        expect(preview).to_contain_text(SCRIPT)
        assert str(tmp_path) not in page.locator("body").inner_text()
        browser.close()
    assert dialogs == []  # no script from the data ever ran


def test_playground_streams_base_and_tuned_side_by_side(tmp_path, tiny_model_dir):
    """A run made with the CLI (visible to every visitor), picked in the Playground: one
    prompt, both columns answer, and the prompt's markup is shown as text, never run."""
    from playwright.sync_api import expect, sync_playwright

    from tests.assets import make_run

    make_run(tmp_path / "home" / "runs" / "demo-run", tiny_model_dir)
    dialogs = []
    with serve(tmp_path, str(tiny_model_dir)) as url, sync_playwright() as pw:
        browser = open_browser(pw, tmp_path)
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.get_by_role("tab", name="Playground").click()
        page.locator("#ts-pg-run input").click()
        page.get_by_role("option", name="demo-run").click()
        expect(page.locator("#ts-pg-run input")).to_have_value("demo-run", timeout=30_000)
        # the run's checkpoints arrive from the server; a user waits for them too
        expect(page.locator("#ts-pg-checkpoint input")).to_have_value("final", timeout=30_000)
        page.locator("#ts-pg-prompt textarea").fill(f"Describe: {SCRIPT}")
        page.locator("#ts-pg-send").click()
        for side in ("base", "tuned"):  # the user turn, literally, in both columns
            expect(page.locator(f".ts-chat-{side}")).to_contain_text(SCRIPT, timeout=60_000)
        stats = page.locator(".ts-reply-stats")
        for i in range(2):  # each column's stats line appears when its reply is complete
            expect(stats.nth(i)).to_contain_text("generated", timeout=120_000)
        assert page.locator(".ts-chat-base script, .ts-chat-tuned script").count() == 0
        replies = [
            page.locator(f".ts-chat-{side} [data-testid=bot]").last.inner_text()
            for side in ("base", "tuned")
        ]
        page.screenshot(path="/tmp/tunesmith-playground.png", full_page=True)
        tabs = ["Data", "Train", "Playground", "Evaluate", "Export"]
        for name in tabs[3:]:  # visiting later tabs leaves the tab bar as it was
            page.get_by_role("tab", name=name).click()
            expect(page.get_by_role("tab")).to_have_text(tabs)
        browser.close()
    assert all(r.strip() for r in replies) and replies[0] != replies[1], replies
    assert dialogs == []
