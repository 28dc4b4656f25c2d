"""The Evaluate tab in Debian Chromium at a desktop (1280 px) and a phone (390 px) width: a
saved evaluation of free-text answers where tuned won 6 of 9 rows (the case that used to
read as a green win) shows "no clear improvement", sample answers before the figures, and
tables whose words wrap whole instead of breaking into fragments; then Evaluate runs on the
tiny model. Screenshots: /tmp/tunesmith-evaluate-1280.png and /tmp/tunesmith-evaluate-390.png.
"""

from pathlib import Path

import pytest

from tests.app_server import serve
from tests.assets import make_run
from tests.test_browser import SCRIPT, open_browser
from training.evaluation import evaluate, metrics

pytestmark = pytest.mark.slow
SCREENSHOTS = {
    1280: Path("/tmp/tunesmith-evaluate-1280.png"),
    390: Path("/tmp/tunesmith-evaluate-390.png"),
}

REFERENCE = (
    "Plants catch sunlight with their leaves and use its energy to turn water and carbon "
    "dioxide into sugar, breathing out oxygen as a by-product."
)
CLOSE = "Plants catch sunlight with their leaves and turn water and carbon dioxide into sugar."
VAGUE = "Photosynthesis is a complicated biochemical process happening in chloroplasts."

# Words in the page's text whose letters lie on more than one line: fragments.
BROKEN_WORDS = """root => {
  const broken = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    for (const m of node.data.matchAll(/[A-Za-z]{2,16}/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (lines.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""


def saved_evaluation(run: Path) -> None:
    """Nine free-text rows, tuned closer to the reference on six: saved as evaluate_run would."""
    rows = []
    for i in range(9):
        tuned, base = (CLOSE, VAGUE) if i < 6 else (VAGUE, CLOSE)
        outputs = {"base": base, "tuned": tuned, "few_shot": CLOSE if i % 2 else VAGUE}
        if i == 0:
            outputs["base"] = SCRIPT  # model output is shown as text, never run
        reference = f"{REFERENCE} Example {i + 1}."
        scores = {s: metrics.row_scores(t, reference, False) for s, t in outputs.items()}
        duel = metrics.outcome(scores["tuned"]["rouge_l"], scores["base"]["rouge_l"])
        rows.append(
            {
                "index": i,
                "prompt": f"Explain photosynthesis to a ten-year-old (question {i + 1}).",
                "reference": reference,
                "outputs": outputs,
                "scores": scores,
                "prompt_tokens": dict.fromkeys(outputs, 30),
                "generated_tokens": dict.fromkeys(outputs, 25),
                "winner": {"win": "tuned", "loss": "base", "tie": "tie"}[duel],
            }
        )
    losses = {s: [(2.0, 1)] * 9 for s in ("base", "tuned", "few_shot")}
    report = {"rows": 9} | evaluate.summarise(rows, losses)
    metric, reason = metrics.choose_metric([r["reference"] for r in rows])
    vs_base = metrics.compare(rows, "tuned", "base", metric)
    said = metrics.verdict(vs_base, None, 3, None, metric)
    assert metric == "rouge_l" and (vs_base["wins"], vs_base["losses"]) == (6, 3)
    report |= {
        "verdict": f"{said.headline} {said.details}",
        "headline": said.headline,
        "outcome": said.outcome,
        "metric": metric,
        "metric_reason": reason,
        "tuned_vs_base": vs_base,
        "data": "validation split",
        "checkpoint": "final",
        "few_shot_k": 3,
    }
    evaluate.save_report(run, report, rows)


def test_evaluate_tab_reads_honestly_on_desktop_and_phone(tmp_path, tiny_model_dir):
    from playwright.sync_api import expect, sync_playwright

    run = make_run(tmp_path / "home" / "runs" / "eval-demo", tiny_model_dir, rows=16)
    saved_evaluation(run)
    dialogs = []
    with serve(tmp_path, str(tiny_model_dir)) as url, sync_playwright() as pw:
        browser = open_browser(pw, tmp_path)
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#ts-ev-run input").click()
        page.get_by_role("option", name="eval-demo").click()
        expect(page.locator("#ts-ev-checkpoint input")).to_have_value("final", timeout=30_000)
        report, table = page.locator("#ts-ev-report"), page.locator("#ts-ev-table")
        expect(report).to_contain_text("No clear improvement", timeout=30_000)
        expect(report.locator(".ts-warning")).to_have_count(1)
        assert report.locator(".ts-ok").count() == 0
        text = report.inner_text()
        assert text.index("Sample answers") < text.index("The figures")
        assert "Scored by ROUGE-L" in text and "How the verdict is decided" in text
        expect(table).to_contain_text(SCRIPT)  # as text
        assert page.locator("#ts-ev-report script, #ts-ev-table script").count() == 0

        for width, shot in SCREENSHOTS.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(300)  # one layout pass at the new width
            for part in (report, table):
                broken = part.evaluate(BROKEN_WORDS)
                assert broken == [], f"words broken into fragments at {width} px: {broken}"
            widths = table.locator("thead th").evaluate_all(
                "ths => ths.map(th => th.getBoundingClientRect().width)"
            )
            assert min(widths[1:-1]) > 130, widths  # text columns wide enough for their words
            page.screenshot(path=str(shot), full_page=True)

        # A real evaluation on the tiny model: three rows can never settle it.
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_label("number input for Rows (at most)", exact=True).fill("3")
        page.get_by_role("button", name="Evaluate", exact=True).click()
        expect(report).to_contain_text("Scored by JSON field match", timeout=120_000)
        expect(report).to_contain_text("not enough evidence")
        browser.close()
    assert dialogs == []
