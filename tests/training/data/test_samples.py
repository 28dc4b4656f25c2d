"""The shipped sample data sets: valid, in three formats, and their rigid styles hold."""

import json
import re

from training.data import SAMPLE_DESCRIPTIONS, SAMPLES, load_examples, validate_file


def test_samples_are_valid_and_in_different_formats():
    assert SAMPLES.keys() == SAMPLE_DESCRIPTIONS.keys() and len(SAMPLES) == 3
    formats = set()
    for name, path in SAMPLES.items():
        report = validate_file(path)
        assert report.exit_code == 0 and not report.errors, (name, report.errors[:3])
        assert report.stats["examples"] >= 50 and "duplicate_row" not in report.counts
        formats.add((path.suffix, report.format))
    assert formats == {(".jsonl", "messages"), (".json", "alpaca"), (".csv", "prompt_completion")}


def test_json_answers_are_strict_json_objects():
    examples = load_examples(SAMPLES["JSON answers (chat JSONL)"])
    assert len(examples) >= 80
    questions = set()
    for e in examples:
        system, user, reply = e["messages"]
        assert system["content"] == "You are a quiz assistant."  # gives the format away nowhere
        questions.add(user["content"])
        answer = json.loads(reply["content"])
        assert list(answer) == ["answer", "confidence"]
        assert answer["confidence"] in ("high", "medium", "low") and answer["answer"]
        assert reply["content"] == json.dumps(answer, ensure_ascii=False)  # one exact layout
    assert len(questions) == len(examples)


def test_pirate_replies_open_and_close_the_same_way():
    for e in load_examples(SAMPLES["Pirate explanations (Alpaca JSON)"]):
        reply = e["messages"][-1]["content"]
        assert reply.startswith("Ahoy! ") and reply.endswith(" Fair winds, matey!")


UNITS = {
    ("km", "miles"): lambda v: v / 1.609344,
    ("miles", "km"): lambda v: v * 1.609344,
    ("kg", "lb"): lambda v: v / 0.45359237,
    ("lb", "kg"): lambda v: v * 0.45359237,
    ("°C", "°F"): lambda v: v * 9 / 5 + 32,
    ("°F", "°C"): lambda v: (v - 32) * 5 / 9,
    ("inches", "cm"): lambda v: v * 2.54,
    ("cm", "inches"): lambda v: v / 2.54,
    ("feet", "metres"): lambda v: v * 0.3048,
    ("metres", "feet"): lambda v: v / 0.3048,
    ("litres", "US gallons"): lambda v: v / 3.785411784,
    ("US gallons", "litres"): lambda v: v * 3.785411784,
}


def test_unit_conversions_are_correct():
    pattern = re.compile(r"^(-?[\d.]+) (.+) = (-?\d+\.\d\d) (.+)$")
    for e in load_examples(SAMPLES["Unit conversions (prompt/completion CSV)"]):
        value, src, result, dst = pattern.match(e["messages"][-1]["content"]).groups()
        assert f"{UNITS[(src, dst)](float(value)):.2f}" == result
        assert value in e["messages"][0]["content"] and dst in e["messages"][0]["content"]
