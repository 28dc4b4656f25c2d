"""Evaluation: the `eval --json` contract (metric chosen, honest verdict, the retrieval side,
the recommendation and decision.md) through a subprocess on the tiny model, and (slow) a real
SmolLM2 run where tuned beats base and its merged export answers as base + adapter did."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from tests.assets import make_run
from training.paths import REPO_ROOT


def run_eval_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", "eval", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )


def test_eval_json_contract_and_saved_table(tiny_model_dir, tmp_path):
    run = make_run(tmp_path / "run", tiny_model_dir, rows=16)
    done = run_eval_cli(run, "--json", "--limit", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert report["rows"] == 3 and isinstance(report["verdict"], str)
    # make_run's answers are JSON: scored by field match; 3 rows can never settle it
    assert (
        report["metric"] == "json_fields" and "every reference is JSON" in report["metric_reason"]
    )
    assert report["outcome"] == "unclear" and report["headline"].startswith("No clear improvement")
    assert report["verdict"].startswith(report["headline"]) and "at least 6" in report["verdict"]
    assert set(report["retrieval"]) == set(report["base"])  # the same figures for every side
    for side in ("base", "tuned", "few_shot", "retrieval"):
        metrics = report[side]
        assert metrics["latency_s"] > 0 and metrics["generated_tokens"] > 0
        for key in ("exact_match", "rouge_l", "json_valid", "json_keys", "json_fields"):
            assert 0 <= metrics[key] <= max(1, metrics["prompt_tokens"])
        assert metrics["loss"] > 0 and math.isclose(
            metrics["perplexity"], math.exp(metrics["loss"])
        )
    assert report["references_json"] is True  # make_run's answers are JSON
    duel = report["tuned_vs_base"]
    assert duel["wins"] + duel["ties"] + duel["losses"] == 3 and duel["p_value"] > 0.05
    saved = report["few_shot"]["prompt_tokens"] - report["tuned"]["prompt_tokens"]
    assert report["prompt_tokens_saved_per_request"] == saved > 20
    assert report["retrieval"]["prompt_tokens"] > report["tuned"]["prompt_tokens"] + 20
    assert report["retrieval_k"] == 3 and report["latency_rows"] == 3
    assert (
        report["tuned_vs_retrieval"]["wins"]
        + report["tuned_vs_retrieval"]["ties"]
        + report["tuned_vs_retrieval"]["losses"]
        == 3
    )
    advice = report["recommendation"]
    assert set(advice) == {"choice", "reason"} and advice["reason"].strip()
    assert advice["choice"] == "base"  # 3 rows: nothing dearer can be meaningfully better
    decision = (run / "decision.md").read_text()
    assert decision.startswith("# Should I fine-tune at all?") and advice["reason"] in decision
    assert "- [x] Alternatives tried" in decision and "- [x] Tokens saved" in decision
    rows = [json.loads(line) for line in (run / "eval" / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and set(rows[0]["outputs"]) == {"base", "tuned", "few_shot", "retrieval"}
    assert rows[0]["reference"].startswith('{"topic"')
    for r in rows:  # each row's winner is decided by the chosen metric
        tuned, base = (r["scores"][s]["json_fields"] for s in ("tuned", "base"))
        assert r["winner"] == ("tie" if tuned == base else "tuned" if tuned > base else "base")
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
    done = run_eval_cli(run, "--data", data, "--few-shot", "0", "--retrieval", "0", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["rows"] == 2 and report["few_shot"] is None and report["data"] == str(data)
    assert report["retrieval"] is None and report["tuned_vs_retrieval"] is None
    assert report["recommendation"]["choice"] in ("base", "fine_tune")
    assert "json_valid" not in report["base"]  # only reported when references are JSON
    assert report["metric"] == "exact_match"  # "plain words": short references
    text = run_eval_cli(run, "--data", data, "--few-shot", "0", "--limit", "1")
    assert text.returncode == 0 and "rouge_l" in text.stdout, text.stderr[-2000:]
    assert "worth it" in text.stdout and "Scored by exact match" in text.stdout
    assert "How the verdict is decided" in text.stdout
    assert "Recommendation: " in text.stdout.splitlines()[-2]  # the report ends with it


def test_retrieval_never_shows_a_held_out_row_its_own_answer(tiny_model_dir, tmp_path):
    """Held-out rows that are also training rows (a --data file overlapping the training
    data): each row's retrieved examples are its nearest other rows, never itself."""
    from training.chat.engine import ChatEngine
    from training.evaluation import evaluate

    class Recording(ChatEngine):
        def generate(self, base_model, rows, settings=None, **kw):
            self.rows = getattr(self, "rows", []) + rows
            return super().generate(base_model, rows, settings, **kw)

    run = make_run(tmp_path / "run", tiny_model_dir, rows=16)
    engine = Recording()
    report = evaluate.evaluate_run(
        run, data=str(run / "data.jsonl"), limit=4, few_shot_k=0, retrieval_k=2, engine=engine
    )
    assert report["retrieval"] and report["few_shot"] is None
    held_out = [json.loads(line)["messages"] for line in (run / "data.jsonl").open()][:4]
    primed = [r.messages for r in engine.rows if len(r.messages) == 5][:4]  # 2 shots + question
    assert [m[-1] for m in primed] == [chat[0] for chat in held_out]
    for messages, chat in zip(primed, held_out, strict=True):
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert chat[1]["content"] not in answers and len(answers) == 2
        topic = chat[0]["content"].split(": ")[1].rsplit(" ", 1)[0]  # "capital of France"
        assert topic in messages[2]["content"]  # the best match sits next to the question


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
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "configs/cpu-demo.yaml",
            "--data",
            "samples/json_answers.jsonl",
            "--max-steps",
            "30",
            "--run-dir",
            str(run),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3000,
        env=os.environ.copy(),
    )
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    done = run_eval_cli(run, "--json", "--limit", "8")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    duel = report["tuned_vs_base"]  # per row on JSON field match, the metric for JSON answers
    assert report["metric"] == "json_fields" and duel["wins"] > duel["losses"]
    assert report["tuned"]["json_fields"] > report["base"]["json_fields"]
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
