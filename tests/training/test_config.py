"""RunConfig: presets load, YAML round-trips exactly, nonsense is rejected with a message."""

import re
from pathlib import Path

import pytest

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
