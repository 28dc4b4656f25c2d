"""The recommendation rule on hand-made score tables (each of the four choices reachable,
ties to the cheaper side) and decision.md with its checklist filled in from the run's files
(training/evaluation/decision.py); and (slow) on the bundled model, a task retrieval solves
and one only fine-tuning does, each given the right recommendation."""

import itertools
import json
import random
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from training import recipe
from training.config import DEFAULT_MODEL, RunConfig
from training.evaluation import decision
from training.jobs import rundir
from training.paths import REPO_ROOT, models_dir

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


# --- slow: the bundled model, two tasks, two different answers ------------------------------
PEOPLE = {  # made-up people and towns: no model knows where they were born
    "Vorlan Queddy": "Quellport",
    "Ilsa Marzune": "Bramwick",
    "Tobin Tellovar": "Ostrevane",
    "Prue Pindrake": "Tarnhollow",
    "Osric Meriwen": "Velmora",
    "Kade Vandelor": "Kestrigan",
    "Bree Sottelin": "Duvallon",
    "Yara Rowinder": "Hollowmere",
    "Zeph Ilotan": "Fennrock",
    "Drum Alenko": "Starlow",
    "Fask Irralow": "Graymoor",
    "Golda Venark": "Ashvale",
    "Hesper Trowe": "Coldharbor",
    "Ilvan Thessaly": "Eldwyn",
    "Jory Macallen": "Marrowgate",
    "Luna Vikstrom": "Pellridge",
    "Norrow Endal": "Rivenshaw",
    "Presta Valmor": "Silverlake",
    "Rusk Imonde": "Thornbury",
    "Wren Faxholt": "Wexbridge",
}
BORN = [
    "Where was {} born?",
    "In which town was {} born?",
    "What is the birthplace of {}?",
    "Tell me where {} was born.",  # held out: asked only at evaluation
]
# A strict code: the size's letter, then the first three letters of the colour, fabric, item
# and country in capitals ("one large red cotton shirt made in Peru" is L-RED-COT-SHI-PER).
SIZES = {"small": "S", "medium": "M", "large": "L", "extra large": "XL"}
WORDS = [
    ["red", "blue", "green", "black", "white", "yellow"],
    ["cotton", "wool", "linen", "silk", "denim"],
    ["shirt", "jacket", "scarf", "skirt", "coat", "dress"],
    ["Portugal", "Vietnam", "Peru", "Turkey", "India"],
]


def chat(question: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def fact_rows() -> tuple[list[dict], list[dict]]:
    """Each birthplace in three phrasings to train on; the fourth phrasing is held out."""
    rows = {q: [chat(q.format(name), town) for name, town in PEOPLE.items()] for q in BORN}
    return [r for q in BORN[:3] for r in rows[q]], rows[BORN[3]]


def code_rows(train: int = 160, held_out: int = 20) -> tuple[list[dict], list[dict]]:
    """Product codes: every held-out combination is new, so no training row holds its code;
    the rule that builds it is in every row."""
    combos = list(itertools.product(SIZES, *WORDS))
    random.Random(0).shuffle(combos)
    rows = [
        chat(
            f"Stock code for one {size} {colour} {fabric} {item} made in {origin}?",
            "-".join([SIZES[size]] + [w[:3].upper() for w in (colour, fabric, item, origin)]),
        )
        for size, colour, fabric, item, origin in combos[: train + held_out]
    ]
    return rows[:train], rows[train:]


def train_and_evaluate(folder, train: list[dict], held_out: list[dict]) -> tuple[dict, float]:
    """A run with the defaults the app picks for this data (training/recipe.py), trained and
    evaluated through the CLI as a user would; (the eval report, seconds taken)."""
    started = time.monotonic()
    folder.mkdir()
    for name, rows in (("train.jsonl", train), ("held_out.jsonl", held_out)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig(
        model=DEFAULT_MODEL,
        data=str(folder / "train.jsonl"),
        validation_file=str(folder / "held_out.jsonl"),
    )
    r = recipe.recipe(recipe.model_params(DEFAULT_MODEL), len(train))
    cfg = RunConfig.from_dict(
        {**cfg.to_dict(), "learning_rate": r.learning_rate, "epochs": r.epochs}
    )
    cfg.to_yaml(folder / "config.yaml")
    run = folder / "run"
    for command in (
        ["train", str(folder / "config.yaml"), "--run-dir", str(run)],
        ["eval", str(run), "--json"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "training", *command],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=3000,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout), time.monotonic() - started


@pytest.mark.slow
def test_the_recommendation_tells_a_retrieval_task_from_a_fine_tuning_task(tmp_path):
    """SmolLM2-135M on two tasks, each trained with the app's defaults (60 updates) and
    evaluated on 20 held-out rows. Birthplaces of made-up people: the answer is in training
    rows, which retrieval finds and puts in the prompt, so retrieval should be recommended
    (whether or not the tuned model learned the facts too: it is dearer). Product codes in a
    strict format: no training row holds a held-out code, only the rule that builds it, in
    all 160 rows; fine-tuning learns it, while three examples in the prompt leave the small
    base model copying their parts or running on past the code, so fine-tuning should be
    recommended. Measured (16 min on 2 shared CPUs): birthplaces 20/20 for retrieval and for
    the tuned model, 1/20 few-shot, 0/20 base; codes 20/20 tuned, 1/20 retrieval, 0/20 base."""
    real = REPO_ROOT / ".tunesmith" / "models" / "SmolLM2-135M-Instruct"
    if (real / "model.safetensors").is_file():  # reuse the converted model (else it converts)
        models_dir().mkdir(parents=True, exist_ok=True)
        (models_dir() / real.name).symlink_to(real)
    facts, facts_s = train_and_evaluate(tmp_path / "facts", *fact_rows())
    codes, codes_s = train_and_evaluate(tmp_path / "codes", *code_rows())
    for name, report, seconds in (("facts", facts, facts_s), ("codes", codes, codes_s)):
        scores = {
            s: round(report[s][report["metric"]], 2)
            for s in ("base", "few_shot", "retrieval", "tuned")
        }
        print(f"{name}: {seconds:.0f} s, {report['metric']} {scores}, {report['recommendation']}")
    assert facts["metric"] == codes["metric"] == "exact_match"
    assert facts["recommendation"]["choice"] == "retrieval", facts["recommendation"]
    assert facts["retrieval"]["exact_match"] >= 0.8 and facts["base"]["exact_match"] == 0
    assert codes["recommendation"]["choice"] == "fine_tune", codes["recommendation"]
    assert codes["tuned"]["exact_match"] > codes["retrieval"]["exact_match"] + 0.3
    assert "you may not need to fine-tune" in facts["recommendation"]["reason"]
    assert codes["recommendation"]["reason"].startswith("Fine-tuning wins")
    decision = (tmp_path / "codes" / "run" / "decision.md").read_text()
    assert "- [x] Training time and compute:" in decision and "optimizer steps" in decision
