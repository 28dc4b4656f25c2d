"""The Playground in Debian Chromium at desktop (1280 px) and phone (390 px) widths: each column
says "generating…" while it streams, and once a conversation scrolls, no chat's label or
buttons cover a message (bounding boxes compared, each message clipped to its scroll area).
Screenshots: /tmp/tunesmith-playground-1280.png and /tmp/tunesmith-playground-390.png.
"""

from pathlib import Path

import pytest

from tests.app_server import serve
from tests.test_browser import open_browser

pytestmark = pytest.mark.slow
WIDTHS = (1280, 390)
PROMPT = "Describe {}: " + "a quick brown fox jumps over the lazy dog " * 4
SIDES = ("base", "tuned")

# For one chat: the label and button rectangles, and each message's visible rectangle (the
# part inside its scrolling area); the scroll area's heights say whether it scrolls at all.
BOXES = """chat => {
  const rect = e => { const b = e.getBoundingClientRect();
    return {left: b.left, top: b.top, right: b.right, bottom: b.bottom}; };
  const area = chat.querySelector('[role=log]');
  const clip = rect(area);
  const visible = m => { const r = rect(m);
    return {left: Math.max(r.left, clip.left), top: Math.max(r.top, clip.top),
            right: Math.min(r.right, clip.right), bottom: Math.min(r.bottom, clip.bottom)}; };
  return {
    covers: [...chat.querySelectorAll('[data-testid=block-label], .top-panel')].map(rect),
    messages: [...chat.querySelectorAll('[data-testid=user], [data-testid=bot]')].map(visible)
      .filter(r => r.bottom > r.top && r.right > r.left),
    scrolls: area.scrollHeight > area.clientHeight,
  };
}"""


def overlap(a: dict, b: dict) -> bool:
    across = a["left"] < b["right"] and b["left"] < a["right"]
    return across and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def test_chat_labels_never_cover_messages_on_desktop_and_phone(tmp_path, tiny_model_dir):
    from playwright.sync_api import expect, sync_playwright

    from components.playground_tab import GENERATING
    from tests.assets import make_run

    make_run(tmp_path / "home" / "runs" / "demo-run", tiny_model_dir)
    with serve(tmp_path, str(tiny_model_dir)) as url, sync_playwright() as pw:
        browser = open_browser(pw, tmp_path)
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("tab", name="Playground").first.click()
        page.locator("#ts-pg-run input").click()
        page.get_by_role("option", name="demo-run").click()
        expect(page.locator("#ts-pg-checkpoint input")).to_have_value("final", timeout=30_000)
        stats = page.locator(".ts-reply-stats")
        for turn in range(4):  # enough turns for each chat to scroll
            page.locator("#ts-pg-prompt textarea").fill(PROMPT.format(turn))
            page.locator("#ts-pg-send").click()
            if turn == 0:  # the first reply waits for the model to load: its state shows
                expect(stats.nth(0)).to_contain_text(GENERATING, timeout=30_000)
            for i, side in enumerate(SIDES):
                users = page.locator(f".ts-chat-{side} [data-testid=user]")
                expect(users).to_have_count(turn + 1, timeout=60_000)
                expect(stats.nth(i)).to_contain_text("generated", timeout=120_000)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(500)  # the layout settles
            page.screenshot(path=f"/tmp/tunesmith-playground-{width}.png", full_page=True)
            for side in SIDES:
                boxes = page.locator(f".ts-chat-{side}").first.evaluate(BOXES)
                assert boxes["scrolls"] and len(boxes["covers"]) == 2 and boxes["messages"]
                covered = [
                    (cover, message)
                    for cover in boxes["covers"]
                    for message in boxes["messages"]
                    if overlap(cover, message)
                ]
                assert not covered, (width, side, covered)
        browser.close()
    assert all(Path(f"/tmp/tunesmith-playground-{w}.png").is_file() for w in WIDTHS)
