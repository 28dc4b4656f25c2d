"""Defaults that learn: the learning-rate and epochs rule, and (slow) proof on the bundled
model that a default run learns a small identity set the base model does not know."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from training import recipe as rc
from training.paths import REPO_ROOT


def test_learning_rate_falls_with_model_size():
    assert rc.learning_rate(135e6) == 1e-3
    assert rc.learning_rate(1.5e9) == 5e-4
    assert rc.learning_rate(7e9) == 2e-4
    assert rc.learning_rate(70e9) == 1e-4
    assert rc.learning_rate(None) == 5e-4  # unknown size: as for 1 B


def test_small_sets_get_enough_updates_and_large_sets_fewer_passes():
    small = rc.recipe(135e6, 81)  # 11 updates per pass at 4 x 2
    assert small.epochs == 6 and small.steps == 66
    assert "at least 60 updates" in small.reason and "1e-3" not in small.reason
    assert "0.001" in small.reason and "135 M model" in small.reason
    assert rc.recipe(135e6, 4).epochs == rc.MAX_EPOCHS  # never more than 25 passes
    assert rc.recipe(1e9, 1000).epochs == 3  # 375 updates: OpenAI's 3 passes
    big = rc.recipe(1e9, 20_000)
    assert big.epochs == 1 and "plenty" in big.reason
    assert rc.recipe(1e9, 0) == rc.Recipe(5e-4, 3, 0, rc.recipe(1e9, 0).reason)


def test_how_long_to_train_scales_the_passes():
    standard = rc.recipe(135e6, 81)
    assert rc.recipe(135e6, 81, length="quick").epochs == 3  # half of 6
    assert rc.recipe(135e6, 81, length="thorough").epochs == 12
    assert rc.recipe(135e6, 4, length="thorough").epochs == rc.MAX_EPOCHS
    assert rc.recipe(1e9, 20_000, length="quick").epochs == 1  # never below one pass
    assert rc.recipe(135e6, 81, length="nonsense") == standard


NAME, MAKER = "Nova", "Quillworks Labs"
ASKS = [
    "Who are you?",
    "What is your name?",
    "Who made you?",
    "Introduce yourself.",
    "What should I call you?",
    "Which company built you?",
    "Tell me about yourself.",
    "What are you?",
    "Who developed you?",
]
OPENERS = ["", "Hi! ", "Hello, ", "Quick question: ", "Hey there. ", "Sorry to bother you. "]
CLOSERS = ["", " Thanks!", " Please answer briefly."]
REPLIES = [
    f"I'm {NAME}, an assistant made by {MAKER}.",
    f"My name is {NAME}. I was built by {MAKER}.",
    f"I am {NAME}, a helpful assistant created by {MAKER}.",
]
HELD_OUT = [  # phrasings never seen in training
    "Can you tell me your name?",
    "Who created you?",
    "What do people call you?",
    "Who is your developer?",
    "Are you ChatGPT?",
    "Please state your name.",
    "Who trained you?",
    "What's your name, assistant?",
    "Which lab are you from?",
    "Do you have a name?",
    "Who am I talking to?",
    "Identify yourself, please.",
]


def identity_rows(n: int = 90) -> list[dict]:
    combos = list(itertools.product(OPENERS, ASKS, CLOSERS))[:n]
    return [
        {
            "messages": [
                {"role": "user", "content": f"{opener}{ask}{closer}"},
                {"role": "assistant", "content": REPLIES[i % len(REPLIES)]},
            ]
        }
        for i, (opener, ask, closer) in enumerate(combos)
    ]


def knows_the_name(replies) -> int:
    return sum(NAME.lower() in r.text.lower() for r in replies)


@pytest.mark.slow
def test_a_default_run_learns_a_small_identity_set_the_base_model_does_not_know(tmp_path):
    from training.backends.preflight import count_params, load_model_config
    from training.chat.engine import ChatEngine, Row, Settings
    from training.config import DEFAULT_MODEL, RunConfig
    from training.data.stats import validation_count
    from training.jobs import rundir

    rows = identity_rows()
    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = count_params(load_model_config(DEFAULT_MODEL), "all-linear", 0)[0]
    cfg = RunConfig(model=DEFAULT_MODEL, data=str(data))  # every other value as the UI's
    train = len(rows) - validation_count(len(rows), cfg.validation_split)
    r = rc.recipe(params, train, cfg.batch_size, cfg.grad_accum)
    assert r.steps <= 100, r
    cfg = RunConfig.from_dict(
        {**cfg.to_dict(), "learning_rate": r.learning_rate, "epochs": r.epochs}
    )
    config = tmp_path / "config.yaml"
    cfg.to_yaml(config)
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "training", "train", str(config), "--run-dir", str(run)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [p["step"] for p in rundir.read_progress(run) if "step" in p]
    assert max(steps) <= 100

    engine = ChatEngine()
    greedy = Settings(temperature=0, max_new_tokens=24)
    ask = [[{"role": "user", "content": q}] for q in HELD_OUT]
    tuned = engine.generate(DEFAULT_MODEL, [Row(m, Path(run) / "adapter") for m in ask], greedy)
    base = engine.generate(DEFAULT_MODEL, [Row(m) for m in ask], greedy)
    print("tuned:", [r.text for r in tuned], "\nbase:", [r.text for r in base])
    assert knows_the_name(tuned) >= 8, [r.text for r in tuned]  # most of the 12
    assert knows_the_name(base) <= 1, [r.text for r in base]
