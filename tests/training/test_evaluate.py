"""Evaluation: metric functions on hand-worked examples, the `eval --json` contract through
a subprocess on the tiny model, and (slow) a real SmolLM2 run where tuned beats base and
its merged export answers as base + adapter did."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from tests.training.test_chat import make_run
from training.evaluation import metrics
from training.paths import REPO_ROOT


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


def run_eval_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", "eval", *map(str, args)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy(),
    )  # fmt: skip


def test_eval_json_contract_and_saved_table(tiny_model_dir, tmp_path):
    run = make_run(tmp_path / "run", tiny_model_dir, rows=16)
    done = run_eval_cli(run, "--json", "--limit", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert report["rows"] == 3 and isinstance(report["verdict"], str)
    assert report["verdict"].startswith("tuned beats base on ")
    for side in ("base", "tuned", "few_shot"):
        metrics = report[side]
        for key in ("exact_match", "rouge_l", "json_valid", "json_keys", "prompt_tokens"):
            assert 0 <= metrics[key] <= max(1, metrics["prompt_tokens"])
        assert metrics["loss"] > 0 and math.isclose(
            metrics["perplexity"], math.exp(metrics["loss"])
        )
    assert report["references_json"] is True  # make_run's answers are JSON
    duel = report["tuned_vs_base"]
    assert duel["wins"] + duel["ties"] + duel["losses"] == 3
    saved = report["few_shot"]["prompt_tokens"] - report["tuned"]["prompt_tokens"]
    assert report["prompt_tokens_saved_per_request"] == saved > 20
    rows = [json.loads(line) for line in (run / "eval" / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and set(rows[0]["outputs"]) == {"base", "tuned", "few_shot"}
    assert rows[0]["reference"].startswith('{"topic"')
    assert json.loads((run / "eval" / "report.json").read_text())["rows"] == 3


def test_eval_data_file_plain_references_and_text_output(tiny_model_dir, tmp_path):
    run = make_run(tmp_path / "run", tiny_model_dir)
    data = tmp_path / "held_out.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"q{i}"},
                        {"role": "assistant", "content": "plain words"},
                    ]
                }
            )
            + "\n"
            for i in range(2)
        )
    )
    done = run_eval_cli(run, "--data", data, "--few-shot", "0", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["rows"] == 2 and report["few_shot"] is None and report["data"] == str(data)
    assert "json_valid" not in report["base"]  # only reported when references are JSON
    text = run_eval_cli(run, "--data", data, "--few-shot", "0", "--limit", "1")
    assert (
        text.returncode == 0 and "tuned beats base on" in text.stdout and "rouge_l" in text.stdout
    )


def test_eval_without_adapter_fails_cleanly(tiny_model_dir, tmp_path):
    run = make_run(tmp_path / "run", tiny_model_dir)
    shutil.rmtree(run / "adapter")
    done = run_eval_cli(run, "--json")
    assert done.returncode == 1 and "no adapter" in json.loads(done.stdout)["error"]


@pytest.mark.slow
def test_tuned_beats_base_after_real_training(tmp_path):
    """SmolLM2-135M, 30 LoRA steps (the CPU demo preset) with the real worker on the rigid-JSON sample, then the
    evaluation's own per-row metric must favour the tuned model on held-out rows."""
    from training.paths import models_dir

    real = REPO_ROOT / ".tunesmith" / "models" / "SmolLM2-135M-Instruct"
    if (real / "model.safetensors").is_file():  # reuse the converted model (else it converts)
        (models_dir() / real.name).symlink_to(real)
    run = tmp_path / "run"
    train = subprocess.run(
        [sys.executable, "-m", "training", "train", "configs/cpu-demo.yaml",
         "--data", "samples/json_answers.jsonl", "--max-steps", "30", "--run-dir", str(run)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=3000, env=os.environ.copy(),
    )  # fmt: skip
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    done = run_eval_cli(run, "--json", "--limit", "8")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    duel = report["tuned_vs_base"]
    assert duel["wins"] > duel["losses"] and report["tuned"]["rouge_l"] > report["base"]["rouge_l"]
    assert report["tuned"]["loss"] < report["base"]["loss"]
    assert report["tuned"]["json_keys"] > report["base"]["json_keys"]

    # The user's last step, export: the merged model alone answers as base + adapter did, and
    # its card carries the verdict just measured.
    from training.chat.engine import ChatEngine, Row, Settings
    from training.export import export, model_card
    from training.jobs.runs import adapter_path, run_config

    merged = export.merge(run)
    prompt = [{"role": "user", "content": "What is the boiling point of water at sea level?"}]
    greedy = Settings(temperature=0, max_new_tokens=32)
    engine = ChatEngine()
    base = run_config(run).model
    tuned = engine.generate(base, [Row(prompt, adapter_path(run))], greedy)[0].text
    alone = engine.generate(str(merged), [Row(prompt)], greedy, tokenizer_dir=merged)[0].text
    assert alone == tuned and tuned.strip()
    assert model_card.md(report["verdict"]) in (merged / "README.md").read_text()
