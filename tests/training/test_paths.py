"""Where state and Hub models live, inside and outside a Space."""

import json
import os
import subprocess
import sys

from training import paths
from training.paths import REPO_ROOT


def test_downloads_go_to_persistent_storage_in_a_space(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HOME", raising=False)
    paths.use_persistent_hf_home(tmp_path)
    assert os.environ["HF_HOME"] == str(tmp_path / ".huggingface")


def test_an_hf_home_the_owner_set_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", "/somewhere/else")
    paths.use_persistent_hf_home(tmp_path)
    assert os.environ["HF_HOME"] == "/somewhere/else"


def test_outside_a_space_there_is_no_persistent_storage(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert paths.persistent_storage() is None


def test_both_caches_are_searched(tmp_path):
    # huggingface_hub reads HF_HOME once at import: ask a fresh interpreter.
    env = {**os.environ, "HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "data" / "hf")}
    env.pop("HF_HUB_CACHE", None)
    code = "import json; from training import paths; print(json.dumps([str(p) for p in paths.hub_caches()]))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        str(tmp_path / "data" / "hf" / "hub"),
        str(tmp_path / "home" / ".cache" / "huggingface" / "hub"),
    ]


def test_a_model_preloaded_into_the_images_cache_loads_with_hf_home_on_storage(
    tmp_path, tiny_model_dir
):
    """A Space's build preloads into ~/.cache/huggingface/hub (no /data yet); at run time
    HF_HOME points at persistent storage. The preloaded model is found, nothing downloaded."""
    from tests.assets import preload_hub_cache
    from training.models.bundled import BUNDLED_HUB_ID

    home_cache = tmp_path / "home" / ".cache" / "huggingface" / "hub"
    preload_hub_cache(home_cache, BUNDLED_HUB_ID, tiny_model_dir)
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "HF_HOME": str(tmp_path / "data" / ".huggingface"),
        "SPACE_ID": "someone/tunesmith",
        "HF_HUB_OFFLINE": "1",
        "TUNESMITH_HOME": str(tmp_path / "data" / "tunesmith"),
    }
    env.pop("HF_HUB_CACHE", None)
    code = (
        "from training.models.catalogue import resolve_model; "
        f"print(resolve_model({BUNDLED_HUB_ID!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(home_cache))
    assert not (tmp_path / "data" / ".huggingface" / "hub").exists()  # nothing fetched
