"""Row scores, win counts and the verdict sentence (training/evaluation/metrics.py)."""

import math

from training.evaluation import metrics


def test_exact_match_normalises_whitespace_only():
    assert metrics.exact_match("  Paris \n is  nice", "Paris is nice")
    assert not metrics.exact_match("paris is nice", "Paris is nice")


def test_rouge_l_hand_examples():
    # LCS "the cat on the mat" = 5 of 6 tokens each way: P = R = F1 = 5/6
    assert math.isclose(metrics.rouge_l("the cat sat on the mat", "the cat is on the mat"), 5 / 6)
    # 2 common of 2 output / 4 reference tokens: P = 1, R = 0.5, F1 = 2/3
    assert math.isclose(metrics.rouge_l("cat mat", "the cat the mat"), 2 / 3)
    assert metrics.rouge_l("x y z", "a b c") == 0.0
    assert metrics.rouge_l("", "") == 1.0 and metrics.rouge_l("", "a") == 0.0
    assert metrics.rouge_l("Same Words!", "same words !") == 1.0  # case and spacing do not count
    assert metrics.words('{"a": 1}') == ["{", '"', "a", '"', ":", "1", "}"]


def test_json_structure_adherence():
    ref = '{"answer": "Paris", "confidence": "high"}'
    assert metrics.same_structure(' {"confidence": "low", "answer": "Rome"} ', ref)
    assert not metrics.same_structure('{"answer": "Paris"}', ref)  # a key missing
    assert not metrics.same_structure("Paris, with high confidence", ref)
    assert not metrics.same_structure('```json\n{"answer": "x", "confidence": "y"}\n```', ref)
    assert metrics.same_structure("[1, 2]", "[3]") and not metrics.same_structure("[1]", ref)
    assert metrics.parse_json("42") is None  # a bare number is not a structured answer
    scores = metrics.row_scores('{"answer": "Rome"}', ref, json_refs=True)
    assert scores["json_valid"] and not scores["json_keys"] and not scores["exact_match"]
    assert "json_valid" not in metrics.row_scores("a", "b", json_refs=False)


def test_compare_and_verdict_count_ties_separately():
    rows = [
        {"scores": {"tuned": {"rouge_l": t}, "base": {"rouge_l": b}}}
        for t, b in [(0.9, 0.1), (0.5, 0.5), (0.2, 0.4), (1.0, 0.0)]
    ]
    duel = metrics.compare(rows, "tuned", "base")
    assert duel == {"wins": 2, "ties": 1, "losses": 1}
    text = metrics.verdict_text(4, duel, None, 3, None)
    assert text.startswith("tuned beats base on 2 of 4 rows (1 tie, 1 loss, by ROUGE-L)")
    assert "on 0 of 1 row (0 ties, 2 losses" in metrics.verdict_text(
        1, {"wins": 0, "ties": 0, "losses": 2}, None, 3, None
    )
