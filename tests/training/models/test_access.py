"""What the app's visitors may load: base models by key, Hub id or allowed folder, and a
model's own code only where the owner allows it and never for a Space's anonymous visitors."""

import os

import pytest

from training.config import DEFAULT_MODEL
from training.models.access import REFUSED, check_base_model, check_remote_code, model_roots
from training.models.catalogue import list_models
from training.paths import models_dir, runs_dir
from training.settings import Settings


def refused(model, settings=None) -> str:
    with pytest.raises(ValueError) as caught:
        check_base_model(model, False, settings or Settings())
    return str(caught.value)


def test_catalogue_keys_and_hub_ids_are_allowed():
    settings = Settings()
    assert check_base_model(DEFAULT_MODEL, False, settings) == (DEFAULT_MODEL, False)
    assert check_base_model("", False, settings) == (DEFAULT_MODEL, False)
    assert check_base_model(None, False, settings) == (DEFAULT_MODEL, False)
    for hub_id in ("Qwen/Qwen2.5-0.5B-Instruct", "someone/any-model"):
        assert check_base_model(f" {hub_id} ", False, settings) == (hub_id, False)


def test_another_visitors_merged_export_is_refused_without_saying_it_exists(tmp_path):
    merged = runs_dir() / "20260101-120000-alice" / "export" / "merged"
    merged.mkdir(parents=True)
    (merged / "config.json").write_text("{}")
    missing = runs_dir() / "20260101-120000-nobody" / "export" / "merged"
    assert refused(str(merged)) == refused(str(missing)) == REFUSED
    for path in ("/etc", "/", "~", "../../..", str(tmp_path), "a/..", "./x", "runs/../.."):
        assert refused(path) == REFUSED, path


def test_folders_inside_the_owners_model_dirs_are_allowed(tmp_path):
    owned = tmp_path / "owned"
    (owned / "llama").mkdir(parents=True)
    settings = Settings(model_dirs=f"{tmp_path / 'elsewhere'}:{owned}")
    assert model_roots(settings)[1:] == [tmp_path / "elsewhere", owned]
    model, _ = check_base_model(str(owned / "llama"), False, settings)
    assert model == os.path.realpath(owned / "llama")
    assert refused(str(owned), settings) == REFUSED  # the folder itself holds models, is none
    assert refused(str(owned / "llama" / ".." / ".."), settings) == REFUSED
    (tmp_path / "secret").mkdir()
    (owned / "link").symlink_to(tmp_path / "secret")  # a symlink out of an allowed folder
    assert refused(str(owned / "link"), settings) == REFUSED
    for folder in (owned / "llama", tmp_path / "secret"):  # two model folders, as listed
        (folder / "config.json").write_text("{}")
        (folder / "pytorch_model.bin").write_bytes(b"")
    listed = {e.key for e in list_models(roots=model_roots(settings)[1:])}
    assert model in listed and os.path.realpath(tmp_path / "secret") not in listed


def test_the_bundled_folder_and_the_owners_default_are_allowed(tmp_path):
    bundled = models_dir() / "SmolLM2-135M-Instruct"
    assert check_base_model(str(bundled), False, Settings())[0] == os.path.realpath(bundled)
    own = str(tmp_path / "my-model")
    assert check_base_model(own, False, Settings(default_model=own)) == (own, False)
    assert refused(own) == REFUSED


def test_a_hub_shaped_path_that_exists_here_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "alice").mkdir(parents=True)
    assert refused("runs/alice") == REFUSED  # the loader would open the folder, not the Hub
    assert check_base_model("runs/bob", False, Settings())[0] == "runs/bob"


@pytest.mark.parametrize("model", [5, ["a/b"], {"model": "a/b"}, "a\x00/b", "x" * 5000])
def test_odd_values_from_api_callers_are_refused(model):
    assert refused(model) == REFUSED


def test_remote_code_runs_only_where_the_owner_allows_it_outside_a_space():
    off, on = Settings(), Settings(allow_remote_code=True)
    space = Settings(allow_remote_code=True, space_id="owner/space")
    with pytest.raises(ValueError, match="owner has not allowed"):
        check_base_model("a/b", True, off)
    assert check_base_model("a/b", True, on) == ("a/b", True)
    with pytest.raises(ValueError, match="public Space"):
        check_base_model("a/b", True, space)
    assert check_remote_code(True, space, signed_in=True) is True  # where sign-in will lead
    for truthy in ("no", "yes", 1, [True]):  # only a real True asks for it
        assert check_remote_code(truthy, on) is False
    assert check_remote_code(False, off) is False
