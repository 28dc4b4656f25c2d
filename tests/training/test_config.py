"""RunConfig: presets load, YAML round-trips exactly, nonsense is rejected with a message."""

import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from training.config import RunConfig
from training.paths import REPO_ROOT

PRESETS = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def test_presets_exist():
    names = {p.name for p in PRESETS}
    assert {"cpu-demo.yaml", "t4-l4.yaml", "a10g-a100.yaml"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_preset_loads_and_its_arithmetic_is_right(path: Path):
    text = path.read_text(encoding="utf-8")
    cfg = RunConfig.from_yaml(path)
    assert cfg != RunConfig(), "a preset should differ from the defaults"
    assert RunConfig.from_yaml(cfg.to_yaml()) == cfg
    # "# 8 x 1 x 256 = 2,048 tokens/step": the comment must match the settings.
    m = re.search(r"(\d+) x (\d+) x ([\d,]+) = ([\d,]+) tokens/step", text)
    assert m, "preset lacks the batch x accum x length = tokens/step comment"
    batch, accum, length, total = (int(g.replace(",", "")) for g in m.groups())
    assert (batch, accum, length) == (cfg.batch_size, cfg.grad_accum, cfg.max_length)
    assert total == batch * accum * length


def test_yaml_round_trip_is_exact(tmp_path):
    cfg = RunConfig(
        model="/models/x",
        method="qlora",
        data="d.jsonl",
        column_mapping={"question": "prompt", "answer": "completion"},
        validation_file="v.jsonl",
        lora_r=8,
        lora_dropout=0.1,
        target_modules="q_proj, v_proj",
        epochs=1.5,
        learning_rate=3e-5,
        warmup_ratio=0.1,
        eval_steps=10,
        save_steps=20,
        early_stopping_patience=2,
        init_adapter="runs/a/adapter",
    )
    path = tmp_path / "c.yaml"
    text = cfg.to_yaml(path)
    again = RunConfig.from_yaml(path)
    assert again == cfg
    assert again.to_yaml() == text
    assert RunConfig.from_yaml(text) == cfg  # text works as well as a path


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"method": "full"}, "method must be"),
        ({"backend": "magic"}, "backend must be"),
        ({"lr_scheduler": "zigzag"}, "lr_scheduler"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": 5}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_length": 8}, "max_length"),
        ({"max_steps": 0}, "max_steps"),
        ({"epochs": 0}, "epochs"),
        ({"validation_split": 0.7}, "validation_split"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"save_steps": -1}, "save_steps"),
        ({"target_modules": " "}, "target_modules"),
        ({"early_stopping_patience": 2, "eval_steps": 0}, "early stopping needs evaluation"),
        ({"early_stopping_patience": 2, "validation_split": 0}, "early stopping needs evaluation"),
        (
            {"early_stopping_patience": 2, "eval_steps": 20, "save_steps": 30},
            "multiple of eval_steps",
        ),
        ({"format": "excel"}, "format must be"),
    ],
)
def test_post_init_rejects_nonsense(change, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        RunConfig(**change)


def test_unknown_keys_and_non_mapping_yaml_are_rejected():
    with pytest.raises(ValueError, match="Unknown config keys: lr"):
        RunConfig.from_dict({"lr": 1e-4})
    with pytest.raises(ValueError, match="mapping"):
        RunConfig.from_yaml("- a\n- b\n")


def test_defaults_are_valid_and_explained():
    from dataclasses import fields

    from training.config import help_text

    RunConfig()
    assert all(help_text(f.name) for f in fields(RunConfig))


# --- hostile and mistyped configs ------------------------------------------------------

HOSTILE = sorted((Path(__file__).parents[1] / "fixtures" / "hostile" / "configs").glob("*.yaml"))


def expected_error(path: Path) -> str:
    """Each hostile config names, on its first line, a fragment of the message it must give."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# error: "), f"{path.name} must start with '# error: ...'"
    return first.removeprefix("# error: ")


def test_hostile_configs_exist():
    assert len(HOSTILE) >= 12


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_hostile_configs_give_one_clear_line(path: Path):
    with pytest.raises(ValueError, match=re.escape(expected_error(path))) as caught:
        RunConfig.from_yaml(path)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 600


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("max_steps: ten", "max_steps must be a whole number (like 10), not the text 'ten'"),
        ("lora_r: '8'", "lora_r must be a whole number (like 10), not the text '8'"),
        ("epochs: null", "epochs must be a number (like 0.5), not null"),
        ("max_steps: 2.5", "max_steps must be a whole number (like 10), not 2.5"),
        ("lora_r: true", "lora_r must be a whole number (like 10), not true"),
        ("trust_remote_code: 'no'", "trust_remote_code must be true or false, not the text 'no'"),
        ("trust_remote_code: 1", "trust_remote_code must be true or false, not 1"),
        ("learning_rate: .nan", "learning_rate must be a number"),
        ("epochs: .inf", "epochs must be a number"),
        ("model: null", "model must be text"),
        ("data: [a, b]", "data must be text, not a list"),
        ("format: 3", "format must be text or empty"),
        ("column_mapping: [prompt]", "column_mapping must be a mapping of text to text"),
    ],
)
def test_wrong_types_are_named_with_the_expected_type(yaml_text, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        RunConfig.from_yaml(yaml_text)


def test_every_wrong_type_is_reported_at_once():
    with pytest.raises(ValueError) as caught:
        RunConfig.from_yaml("max_steps: ten\nlora_r: '8'\ntrust_remote_code: 'yes'\n")
    message = str(caught.value)
    assert all(name in message for name in ("max_steps", "lora_r", "trust_remote_code"))


def test_yaml_bools_and_whole_floats_are_accepted():
    cfg = RunConfig.from_yaml("trust_remote_code: no\nmax_steps: 30.0\nepochs: 2\n")
    assert cfg.trust_remote_code is False
    assert cfg.max_steps == 30 and type(cfg.max_steps) is int
    assert cfg.epochs == 2.0 and type(cfg.epochs) is float
    assert RunConfig.from_yaml("trust_remote_code: true").trust_remote_code is True


def test_oversized_and_deeply_nested_configs_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000 + "lora_r: 8\n", encoding="utf-8")
    with pytest.raises(ValueError, match="larger than 1 MB"):
        RunConfig.from_yaml(big)
    with pytest.raises(ValueError, match="larger than 1 MB"):
        RunConfig.from_yaml(big.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="not valid YAML"):
        RunConfig.from_yaml("column_mapping: " + "[" * 50_000 + "]" * 50_000)


def test_non_text_keys_and_bytes_are_plain_errors(tmp_path):
    with pytest.raises(ValueError, match="Unknown config keys: 1"):
        RunConfig.from_yaml("1: 2\nlr: 3\n")
    with pytest.raises(ValueError, match="Unknown config keys"):
        RunConfig.from_dict({("a",): 1})
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"lora_r: \xff\xfe\n")
    with pytest.raises(ValueError, match="UTF-8"):
        RunConfig.from_yaml(binary)


def test_cli_refuses_a_bad_config_with_one_line_and_a_failed_status(tmp_path):
    import json
    import subprocess
    import sys

    config = tmp_path / "bad.yaml"
    config.write_text("max_steps: ten\ntrust_remote_code: 'no'\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "training", "train", str(config), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "max_steps must be a whole number" in lines[0]
    status = json.loads((run_dir / "status.json").read_text(encoding="utf-8"))
    assert status["status"] == "failed" and "max_steps must be a whole number" in status["reason"]


def test_cli_refuses_each_hostile_config_without_a_traceback(tmp_path, capsys):
    from training.__main__ import main

    for path in HOSTILE:
        run_dir = tmp_path / path.stem
        assert main(["train", str(path), "--run-dir", str(run_dir)]) == 2, path.name
        err = capsys.readouterr().err.strip()
        assert expected_error(path) in err and "\n" not in err, path.name
        assert (run_dir / "status.json").is_file(), path.name


# --- property-based: the parser never fails in any other way -------------------------

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["lora", "qlora", "cosine", "messages", "all-linear", "-1", "true"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [f.name for f in fields(RunConfig)]
YAMLISH = st.lists(  # fragments of config-like YAML, glued in any order
    st.sampled_from([*FIELDS, *"abz019 -_:.,'\"[]{}&*!|>#?%@`\n\t\\/", ": ", "\n  ", "!!"]),
    max_size=30,
).map("".join)


def parses_or_says_why(make):
    try:
        assert isinstance(make(), RunConfig)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), VALUES, max_size=6))
def test_any_mapping_gives_a_config_or_a_value_error(data):
    parses_or_says_why(lambda: RunConfig.from_dict(data))
    parses_or_says_why(lambda: RunConfig.from_yaml(yaml.safe_dump(data)))


@settings(max_examples=300, deadline=None)
@given(YAMLISH | st.text(max_size=60))
def test_any_text_gives_a_config_or_a_value_error(text):
    parses_or_says_why(lambda: RunConfig.from_yaml(text))


def test_exponent_numbers_read_as_numbers_as_in_yaml_1_2():
    # YAML 1.1 (PyYAML) reads 1e-3 as text; a config writer means the number.
    cfg = RunConfig.from_yaml("learning_rate: 1e-3\nmax_steps: 1e3\nwarmup_ratio: 5E-2\n")
    assert (cfg.learning_rate, cfg.max_steps, cfg.warmup_ratio) == (0.001, 1000, 0.05)
    assert type(cfg.max_steps) is int
    with pytest.raises(ValueError, match="must be a whole number"):
        RunConfig.from_yaml("max_steps: 2.5e0\n")
