"""Evaluate tab: the recommendation and its chart first, an honest verdict (green only for a
clear improvement), sample answers before the figures, every term explained, and the
handlers on the tiny model."""

from components import decision_format as df
from components import evaluate_tab as et
from components.format import CSS, esc
from tests.assets import make_run
from training.chat.engine import ChatEngine
from training.evaluation import metrics
from training.paths import runs_dir

EVIL = "<script>alert(1)</script>"
FIGURES = {"exact_match": 0.4, "rouge_l": 0.5, "loss": 1.2, "perplexity": 3.3, "prompt_tokens": 20}


def row(i: int, winner: str, tuned: float = 1.0, base: float = 0.0) -> dict:
    return {
        "index": i,
        "prompt": f"question {i}",
        "reference": f"reference {i}",
        "winner": winner,
        "outputs": {"base": f"base answer {i}", "tuned": f"tuned answer {i}", "few_shot": "few"},
        "scores": {
            "base": {"exact_match": base, "rouge_l": base},
            "tuned": {"exact_match": tuned, "rouge_l": tuned},
            "few_shot": {"exact_match": 0.0, "rouge_l": 0.0},
        },
    }


def report(wins: int, ties: int, losses: int, metric: str = "exact_match") -> dict:
    duel = {"wins": wins, "ties": ties, "losses": losses}
    duel["p_value"] = metrics.sign_test(wins, losses)
    said = metrics.verdict(duel, None, 3, None, metric)
    return {
        "rows": wins + ties + losses,
        "verdict": f"{said.headline} {said.details}",
        "headline": said.headline,
        "outcome": said.outcome,
        "metric": metric,
        "metric_reason": metrics.choose_metric(["Paris"])[1],
        "base": FIGURES,
        "tuned": FIGURES,
        "few_shot": FIGURES,
        "tuned_vs_base": duel,
        "data": "validation split",
    }


def test_six_wins_of_nine_are_not_shown_as_a_win():
    """The reported case: 6 of 9 rows by text overlap was a green "tuned beats base"."""
    page = et.report_html(report(6, 0, 3, "rouge_l"))
    assert "ts-ok" not in page and "ts-warning" in page
    assert "No clear improvement: not enough evidence that fine-tuning was worth it." in page
    assert "How the verdict is decided" in page and "p &lt; 0.05" in page


def test_only_a_clear_improvement_is_green_and_a_regression_says_so():
    assert "ts-ok" in et.report_html(report(9, 1, 0))
    worse = et.report_html(report(0, 1, 9))
    assert "ts-error" in worse and "Not worth it: the tuned model answers worse" in worse


def test_sample_answers_come_before_the_figures():
    rows = [row(0, "tuned"), row(1, "tuned"), row(2, "base", 0.0, 1.0), row(3, "tie", 0.0)]
    page = et.report_html(report(2, 1, 1), rows)
    samples, figures = page.index("Sample answers"), page.index("The figures")
    assert samples < figures
    card = page[samples:figures]
    for text in ("question 0", "reference 0", "base answer 0", "tuned answer 0", "few"):
        assert text in card
    assert "Row 3: Base scored higher" in card and "Row 4: Same score" in card  # not only wins
    assert "question 1" not in card  # three samples: a win, a loss, a tie
    assert "Tuned · right" in card and "Base · wrong" in card  # exact match reads right/wrong


def test_which_metric_decided_and_every_term_is_explained():
    page = et.report_html(report(2, 0, 1, "rouge_l"), [row(0, "tuned")])
    assert "Scored by exact match, because" in page  # the report's one sentence
    assert "ROUGE-L (decides the verdict)" in page
    assert page.index("ROUGE-L (decides the verdict)") < page.index("Exact match")
    for key in ("rouge_l", "loss", "perplexity", "exact_match"):
        assert esc(metrics.METRICS[key].explain) in page


def test_every_row_table_keeps_words_whole_and_escapes():
    table = et.rows_html([row(0, "tuned") | {"prompt": EVIL}], "exact_match")
    assert "<script" not in table and "&lt;script&gt;" in table
    assert 'class="ts-table ts-eval-rows"' in table and '<col class="ts-eval-num">' in table
    assert "Higher score" in table and "<td>Tuned</td>" in table and "right" in table
    rules = CSS[CSS.index(".ts-table.ts-eval-rows {") :]
    assert "table-layout: fixed" in rules and "word-break: normal" in rules


def test_a_report_saved_before_this_version_still_shows():
    old = {
        "rows": 2,
        "verdict": "tuned beats base on 1 of 2 rows (1 tie, 0 losses, by ROUGE-L).",
        "base": FIGURES,
        "tuned": FIGURES,
        "few_shot": None,
        "tuned_vs_base": {"wins": 1, "ties": 1, "losses": 0},
    }
    page = et.report_html(old, [row(0, "tuned")])
    assert "ts-warning" in page and "tuned beats base on 1 of 2" in page and "ROUGE-L" in page
    assert "earlier version" in page and "press Evaluate" in page
    assert "No evaluation yet" in et.report_html(None)


def test_the_recommendation_and_its_chart_come_first_and_escape_text():
    page = report(9, 1, 0)
    for side, tokens, score in (("base", 20, 0.2), ("few_shot", 300, 0.5), ("retrieval", 320, 0.9)):
        page[side] = FIGURES | {"prompt_tokens": tokens, "exact_match": score, "latency_s": 0.5}
    page["tuned"] = FIGURES | {"prompt_tokens": 20, "exact_match": 0.9, "latency_s": 0.4}
    page["recommendation"] = {"choice": "retrieval", "reason": f"Retrieval matches {EVIL}"}
    html_text = et.report_html(page, [row(0, "tuned")])
    first, verdict = html_text.index("Recommendation: Retrieval"), html_text.index("Worth it")
    assert first < html_text.index("<svg") < verdict  # the recommendation, its chart, then the rest
    assert "<script" not in html_text and "Retrieval matches &lt;script&gt;" in html_text
    chart = html_text[html_text.index("<svg") : html_text.index("</svg>")]
    for label in ("Base", "Few-shot", "Retrieval", "Tuned"):
        assert f'class="ts-point-label">{label}</text>' in chart
    assert chart.count("<circle") == 4 and chart.count("ts-point-pick") == 1
    picked = chart[
        chart.index("ts-point-pick") : chart.index("</circle>", chart.index("ts-point-pick"))
    ]
    assert "Retrieval: 90% Exact match, 320 prompt tokens, 0.50 s per request" in picked
    assert "prompt tokens per request" in chart and "Exact match" in chart
    assert "Seconds per request, each sent alone: Base 0.50 s" in html_text
    page["recommendation"]["choice"] = "fine_tune"  # the recommendation's word for tuned
    assert 'r="7" class="ts-point ts-point-pick"><title>Tuned' in df.tradeoff_svg(page)
    empty = page | {s: page[s] | {"prompt_tokens": 0} for s in df.SIDES}  # no prompt at all
    assert df.tradeoff_svg(empty).count("<circle") == 4
    assert df.recommendation_html(report(1, 0, 0)) == ""  # saved before recommendations


def test_evaluate_and_show_saved_on_the_tiny_model(tiny_model_dir):
    run = make_run(runs_dir() / "from-the-cli", tiny_model_dir, rows=16)
    page, table = et.run_evaluation(
        ChatEngine(), str(run), "final", 3, 1, None, "", progress=lambda *a, **k: None
    )
    assert "Evaluation failed" not in page, page
    assert page.index("Sample answers") < page.index("The figures")
    assert "Scored by JSON field match" in page and "JSON field match (decides the verdict)" in page
    assert "ts-ok" not in page and "not enough evidence" in page  # 3 rows never settle it
    assert page.index("Recommendation: The base model alone") < page.index("not enough evidence")
    assert "Base + retrieved" in page and "Seconds per request" in page
    assert (run / "decision.md").is_file()
    assert table.count('<td class="ts-num">') == 3
    _, saved_page, saved_table = et.show_saved(str(run), "")
    assert saved_page == page and saved_table == table
