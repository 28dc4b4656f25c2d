"""The recommendation rule on hand-made score tables (each of the four choices reachable,
ties to the cheaper side) and decision.md with its checklist filled in from the run's files
(training/evaluation/decision.py)."""

import json
from types import SimpleNamespace

from training.evaluation import decision
from training.jobs import rundir

SIDES = ("base", "few_shot", "retrieval", "tuned")
TOKENS = {"base": 30, "few_shot": 400, "retrieval": 420, "tuned": 30}


def table(right: dict[str, int], n: int = 20, tokens: dict | None = None):
    """Per-row exact-match scores where side s is right on its first right[s] rows, and the
    per-side means the report would hold."""
    rows = [{"scores": {s: {"exact_match": float(i < right[s])} for s in right}} for i in range(n)]
    report = {
        s: ({"exact_match": right[s] / n, "prompt_tokens": (tokens or TOKENS)[s]})
        if s in right
        else None
        for s in SIDES
    }
    return rows, report


def advice(right, **kw) -> decision.Recommendation:
    rows, report = table(right, **kw)
    return decision.recommend(rows, report, "exact_match")


def test_each_of_the_four_choices_is_reachable():
    tuned = advice({"base": 2, "few_shot": 5, "retrieval": 9, "tuned": 18})
    assert tuned.choice == "fine_tune"
    assert tuned.reason == (
        "Fine-tuning wins: 18/20 correct against 9/20 for retrieval, and saves 390 prompt "
        "tokens per request."
    )
    retrieval = advice({"base": 2, "few_shot": 5, "retrieval": 17, "tuned": 17})
    assert retrieval.choice == "retrieval"
    assert retrieval.reason.startswith("Retrieval does as well as the tuned model or better")
    assert "you may not need to fine-tune" in retrieval.reason and "390 more" in retrieval.reason
    few = advice({"base": 2, "few_shot": 16, "retrieval": 16, "tuned": 17})
    assert few.choice == "few_shot"  # fewer prompt tokens than retrieval, as good as either
    assert few.reason.startswith("Few-shot prompting matches the tuned model within 5 points")
    base = advice({"base": 10, "few_shot": 11, "retrieval": 12, "tuned": 13})
    assert base.choice == "base"
    assert "no other side was meaningfully better on 20 rows" in base.reason


def test_ties_and_margins_chance_could_give_go_to_the_cheaper_side():
    assert advice({s: 7 for s in SIDES}).choice == "base"  # all equal: the cheapest
    # 5 rows to none is p = 0.06: not meaningful, so the dearer side does not win.
    assert advice({"base": 0, "tuned": 5}).choice == "base"
    assert advice({"base": 0, "tuned": 6}).choice == "fine_tune"  # 6 to none: p = 0.03
    # Tuned 6 rows better than retrieval, retrieval 6 better than base: each step counts.
    assert advice({"base": 0, "retrieval": 6, "tuned": 12}).choice == "fine_tune"
    # Retrieval costs fewer tokens than few-shot here, so at equal quality it is cheaper.
    cheap = dict(TOKENS, retrieval=300)
    assert advice(
        {"base": 0, "few_shot": 15, "retrieval": 15, "tuned": 15}, tokens=cheap
    ).choice == ("retrieval")
    # Equal tokens and quality: few-shot first (nothing to index).
    same = dict(TOKENS, retrieval=400)
    assert advice(
        {"base": 0, "few_shot": 15, "retrieval": 15, "tuned": 15}, tokens=same
    ).choice == ("few_shot")


def test_a_side_not_run_is_left_out_and_a_close_gap_says_so():
    only = advice({"base": 0, "retrieval": 14, "tuned": 15})
    assert only.choice == "retrieval"
    assert only.reason.startswith("Retrieval matches the tuned model within 5 points")
    assert "(14/20 correct against 15/20)" in only.reason
    wide = advice({"base": 0, "retrieval": 10, "tuned": 15})  # 5 rows to none: p = 0.06
    assert wide.choice == "retrieval" and "p = 0.062" in wide.reason
    assert advice({"base": 0, "tuned": 20}).choice == "fine_tune"


def test_decision_md_fills_in_the_checklist_from_the_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rundir.write_status(run, "completed", metrics={"train_runtime_s": 95.2, "steps": 30})
    rundir.append_progress(run, {"step": 30, "elapsed": 94.0})
    (run / rundir.METRICS).write_text(json.dumps({"device": "CPU (2 threads)"}))
    rows, report = table({"base": 2, "few_shot": 5, "retrieval": 17, "tuned": 18})
    for side in SIDES:
        report[side]["latency_s"] = 0.5
    said = decision.recommend(rows, report, "exact_match")
    report |= {
        "rows": 20,
        "metric": "exact_match",
        "few_shot_k": 3,
        "retrieval_k": 4,
        "data": "validation split",
        "recommendation": {"choice": said.choice, "reason": said.reason},
    }
    cfg = SimpleNamespace(data="/data/<i>quiz|x.jsonl", model="/models/SmolLM2")
    text = decision.write(run, report, cfg, 80).read_text()
    assert text.startswith("# Should I fine-tune at all?\n")
    assert f"**Recommendation: retrieval.** {said.reason}" in text
    assert "| Retrieval (the most similar training examples) | 17/20 correct | 420 | 0.50 |" in text
    assert (
        "- [x] Use case: &lt;i&gt;quiz\\|x.jsonl on SmolLM2, scored by exact match" in text
    )  # made inert
    assert "- [x] Alternatives tried: the base model alone; the base model with 3 random" in text
    assert "the 4 most similar training examples (BM25 retrieval)" in text
    assert "- [x] Data size: 80 training conversations; 20 held-out rows evaluated" in text
    assert "- [x] Training time and compute: 1 min 35 s of training, 30 optimizer steps" in text
    assert "- [x] Quality gained: the tuned model 18/20 correct against 2/20 correct" in text
    assert "(+80 points) and 17/20 correct for retrieval (+5 points)" in text
    assert "- [x] Tokens saved per request by the tuned model: 370 against few-shot" in text
    assert not (run / ".decision.md.tmp").exists()
    (run / rundir.STATUS).unlink()
    (run / rundir.PROGRESS).unlink()
    (run / rundir.METRICS).unlink()
    text = decision.write(run, report, cfg, 80).read_text()
    assert "- [ ] Training time and compute: the run left no status or progress" in text
