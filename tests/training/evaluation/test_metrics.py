"""Row scores, the metric chosen for the references, the sign test and the verdict
(training/evaluation/metrics.py)."""

import math

import pytest

from training.evaluation import metrics


def duel(wins: int, ties: int, losses: int) -> dict:
    return {
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "p_value": metrics.sign_test(wins, losses),
    }


def test_exact_match_ignores_case_spacing_and_a_final_punctuation_mark():
    assert metrics.exact_match("  Paris \n is  nice.", "paris is nice")
    assert metrics.exact_match("Positive!", "positive")
    assert not metrics.exact_match("Paris is not nice", "Paris is nice")
    assert not metrics.exact_match("Paris.", "Rome.")


def test_rouge_l_hand_examples():
    # LCS "the cat on the mat" = 5 of 6 tokens each way: P = R = F1 = 5/6
    assert math.isclose(metrics.rouge_l("the cat sat on the mat", "the cat is on the mat"), 5 / 6)
    # 2 common of 2 output / 4 reference tokens: P = 1, R = 0.5, F1 = 2/3
    assert math.isclose(metrics.rouge_l("cat mat", "the cat the mat"), 2 / 3)
    assert metrics.rouge_l("x y z", "a b c") == 0.0
    assert metrics.rouge_l("", "") == 1.0 and metrics.rouge_l("", "a") == 0.0
    assert metrics.rouge_l("Same Words!", "same words !") == 1.0  # case and spacing do not count
    assert metrics.words('{"a": 1}') == ["{", '"', "a", '"', ":", "1", "}"]


def test_json_structure_and_field_match():
    ref = '{"answer": "Paris", "confidence": "high"}'
    assert metrics.same_structure(' {"confidence": "low", "answer": "Rome"} ', ref)
    assert not metrics.same_structure('{"answer": "Paris"}', ref)  # a key missing
    assert not metrics.same_structure("Paris, with high confidence", ref)
    assert not metrics.same_structure('```json\n{"answer": "x", "confidence": "y"}\n```', ref)
    assert metrics.same_structure("[1, 2]", "[3]") and not metrics.same_structure("[1]", ref)
    assert metrics.parse_json("42") is None  # a bare number is not a structured answer
    # field match: one of two fields right (strings compared as exact match does)
    assert metrics.field_match('{"answer": "paris.", "confidence": "low"}', ref) == 0.5
    assert metrics.field_match('{"answer": "Paris", "confidence": "high", "x": 1}', ref) == 1.0
    assert metrics.field_match("Paris, high", ref) == 0.0  # not JSON
    assert metrics.field_match('{"n": true}', '{"n": 1}') == 0.0  # true is not 1
    assert metrics.field_match("[1, 2]", "[1, 2]") == 1.0
    scores = metrics.row_scores('{"answer": "Rome"}', ref, json_refs=True)
    assert scores["json_valid"] and not scores["json_keys"] and not scores["exact_match"]
    assert scores["json_fields"] == 0.0
    assert "json_valid" not in metrics.row_scores("a", "b", json_refs=False)


@pytest.mark.parametrize(
    ("references", "metric", "why"),
    [
        (['{"a": 1}', "[2]"], "json_fields", "every reference is JSON"),
        (["Paris", "The capital is Rome."], "exact_match", "5 words or fewer"),
        (["It is a positive review overall."] * 3 + ["A negative review, all told."] * 3,
         "exact_match", "a set of 2 labels"),
        (["The capital of France is Paris, a city on the Seine.", "Rome it is, "
          "the eternal city, capital of Italy."], "rouge_l", "free text"),
    ],
)  # fmt: skip
def test_the_metric_fits_the_references_and_says_why(references, metric, why):
    key, sentence = metrics.choose_metric(references)
    assert key == metric and why in sentence and sentence.count(". ") == 0  # one sentence


def test_sign_test_exact_values():
    assert math.isclose(metrics.sign_test(6, 3), 2 * (84 + 36 + 9 + 1) / 512)  # 0.51
    assert metrics.sign_test(6, 0) == 2 / 64 < metrics.SIGNIFICANCE  # the fewest that can win
    assert metrics.sign_test(0, 5) == 2 / 32 > metrics.SIGNIFICANCE
    assert metrics.sign_test(0, 0) == 1.0 and metrics.sign_test(4, 4) == 1.0


def test_compare_counts_ties_separately_on_the_chosen_metric():
    rows = [
        {"scores": {"tuned": {"m": t, "rouge_l": 0}, "base": {"m": b, "rouge_l": 1}}}
        for t, b in [(0.9, 0.1), (0.5, 0.5), (0.2, 0.4), (1.0, 0.0)]
    ]
    assert metrics.compare(rows, "tuned", "base", "m") == {
        "wins": 2,
        "ties": 1,
        "losses": 1,
        "p_value": 1.0,
    }


def test_six_wins_to_three_is_no_clear_improvement():
    """The reported case: "tuned beats base on 6 of 9 rows" was shown as a win."""
    said = metrics.verdict(duel(6, 0, 3), None, 3, None, "rouge_l")
    assert said.outcome == "unclear"
    assert said.headline.startswith("No clear improvement: not enough evidence")
    assert "worth it" in said.headline
    assert "better on 6 rows, worse on 3 and the same on 0 (scored by ROUGE-L)" in said.details
    assert "p = 0.51" in said.details and "about 41 rows would settle it" in said.details


def test_too_few_rows_say_how_many_would_be_needed():
    said = metrics.verdict(duel(2, 1, 0), None, 3, None, "exact_match")
    assert said.outcome == "unclear"
    assert "Only 2 of 3 rows told the two apart; the test needs at least 6" in said.details
    assert "about 9 rows would settle it" in said.details  # 6 that differ at this tie rate
    ties = metrics.verdict(duel(0, 4, 0), None, 3, None, "exact_match")
    assert ties.outcome == "unclear" and "the same on every row" in ties.details
    assert "at least 6" in ties.details and "settle" not in ties.details
    even = metrics.verdict(duel(5, 0, 5), None, 3, None, "exact_match")
    assert "Each won as many rows as the other" in even.details


def test_clear_improvement_regression_and_the_few_shot_baseline():
    clear = duel(9, 1, 0)
    said = metrics.verdict(clear, None, 3, None, "exact_match")
    assert said.outcome == "improved" and said.headline.startswith("Worth it:")
    assert "less than 1 time in 100" in said.details and "p = 0.0039" in said.details
    worse = metrics.verdict(duel(0, 2, 8), None, 3, None, "json_fields")
    assert worse.outcome == "regressed" and worse.headline.startswith("Not worth it:")
    assert "scored by JSON field match" in worse.details
    # Prompting the base model did as well: still worth it for the prompt it saves.
    same = metrics.verdict(clear, duel(3, 5, 2), 3, 180.0, "exact_match")
    assert same.outcome == "improved" and "did about as well" in same.headline
    assert "(no clear difference)" in same.details and "180 fewer prompt tokens" in same.details
    # Prompting the base model did clearly better: not worth it.
    few = metrics.verdict(clear, duel(0, 2, 8), 3, 180.0, "exact_match")
    assert few.outcome == "few_shot_better" and few.headline.startswith("Not worth it:")
    assert "prompted with 3 examples did better" in few.headline


def test_rows_to_call():
    assert metrics.rows_to_call(duel(6, 0, 0)) == 6  # already enough
    assert metrics.rows_to_call(duel(1, 1, 0)) == 12  # 6 that differ, half the rows tie
    assert metrics.rows_to_call(duel(3, 0, 3)) is None  # even: no number of rows settles it
    assert metrics.rows_to_call(duel(51, 0, 49)) > 5000  # nearly even: thousands


def test_every_figure_has_a_plain_explanation():
    for key, m in metrics.METRICS.items():
        assert m.label and m.explain and m.fmt.format(0.5), key
    assert "not correct answers" in metrics.METRICS["rouge_l"].explain
    assert "loss" in metrics.METRICS["perplexity"].explain
    assert "p < 0.05" in metrics.RULE and "sign test" in metrics.RULE


def test_the_retrieval_baseline_joins_the_verdict():
    clear = duel(9, 1, 0)
    ret = metrics.verdict(clear, None, 3, None, "exact_match", duel(0, 2, 8), 4)
    assert ret.outcome == "retrieval_better" and ret.headline.startswith("Not worth it:")
    assert "given the 4 most similar training examples did better" in ret.headline
    both = metrics.verdict(clear, duel(3, 5, 2), 3, 180.0, "exact_match", duel(2, 6, 2), 4)
    assert both.outcome == "improved" and "did about as well" in both.headline
    assert "prompted with 3 examples and the base model given the 4 most" in both.headline
    assert both.details.count("(no clear difference)") == 2
    beaten = metrics.verdict(clear, duel(8, 2, 0), 3, 180.0, "exact_match", duel(9, 1, 0), 4)
    assert beaten.outcome == "improved" and beaten.headline.startswith("Worth it: the tuned")
    assert "most similar training examples: better on 9 rows" in beaten.details
    assert metrics.METRICS["latency_s"].label == "Seconds per request"
