"""The small data sets shipped with Tunesmith, for "Try a sample" and for demos.

Each teaches something checkable. "JSON answers" is the one SmolLM2-135M-Instruct visibly
lacks: every reply is exactly `{"answer": ..., "confidence": "high"|"medium"|"low"}`, so
an evaluation can measure format adherence with `json.loads` before and after tuning.
"""

from pathlib import Path

from training.paths import REPO_ROOT

SAMPLES_DIR = REPO_ROOT / "samples"

SAMPLES: dict[str, Path] = {
    "JSON answers (chat JSONL)": SAMPLES_DIR / "json_answers.jsonl",
    "Pirate explanations (Alpaca JSON)": SAMPLES_DIR / "pirate_alpaca.json",
    "Unit conversions (prompt/completion CSV)": SAMPLES_DIR / "unit_conversions.csv",
}

SAMPLE_DESCRIPTIONS: dict[str, str] = {
    "JSON answers (chat JSONL)": (
        "Quiz questions answered only with a JSON object {answer, confidence}: "
        "a strict output format the base model does not follow."
    ),
    "Pirate explanations (Alpaca JSON)": (
        "Short, correct explanations in pirate voice, each opening with “Ahoy!” and "
        "closing with “Fair winds, matey!”."
    ),
    "Unit conversions (prompt/completion CSV)": (
        "Metric/imperial conversions answered in one fixed pattern, “12 km = 7.46 miles”."
    ),
}
