"""Experiment tracking: off by default, only trackers installed here, never the Space owner's
W&B account for a visitor's run, and each tracker's files kept in the run directory."""

import os

from training import tracking


def test_choices_are_what_is_installed_and_wandb_is_off_in_a_space(monkeypatch):
    assert tracking.available()[0] == "none"
    assert "trackio" in tracking.available()  # requirements.txt installs it
    monkeypatch.setattr(tracking, "installed", lambda name: True)
    assert "wandb" in tracking.available() and "wandb" not in tracking.available(in_space=True)
    assert "owner's account" in tracking.refusal("wandb", in_space=True)
    assert "must be one of" in tracking.refusal("mlflow")


def test_trainer_args_keep_files_in_the_run_and_send_nothing(tmp_path, monkeypatch):
    for name in ("TRACKIO_DIR", "TRACKIO_SPACE_ID", "WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert tracking.trainer_args("none", tmp_path, "r") == {"report_to": "none"}
    monkeypatch.setenv("TRACKIO_SPACE_ID", "someone/space")
    args = tracking.trainer_args("trackio", tmp_path, "run-1")
    assert args["report_to"] == ["trackio"] and args["trackio_static_space_id"] is False
    assert os.environ["TRACKIO_DIR"] == str(tmp_path / "trackio")
    assert "TRACKIO_SPACE_ID" not in os.environ  # local only
    monkeypatch.setattr(tracking, "installed", lambda name: True)
    tracking.trainer_args("wandb", tmp_path, "run-1")
    assert os.environ["WANDB_MODE"] == "offline"  # no key of the machine's: files only
    assert os.environ["WANDB_DIR"] == str(tmp_path)
