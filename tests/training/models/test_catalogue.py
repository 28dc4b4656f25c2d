"""Model catalogue and loaders: offline behaviour, local folders, resolve errors,
trust_remote_code refusal, the CLI, and (slow) the real SmolLM2 conversion."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.assets import preload_hub_cache
from tests.training.models.test_bundled import _fake_convert
from training.config import DEFAULT_MODEL
from training.models import bundled
from training.models import catalogue as models
from training.paths import REPO_ROOT, models_dir


def _copy_model(src: Path, dst: Path, **config_changes) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(config_changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


# --- catalogue -----------------------------------------------------------------------


def test_catalogue_offline_marks_hub_entries_unavailable_without_hanging():
    start = time.monotonic()
    entries = models.list_models()
    assert time.monotonic() - start < 5  # a hang guard, not a speed target
    bundled = entries[0]
    assert bundled.key == DEFAULT_MODEL == models.default_model()
    assert (bundled.source, bundled.available, bundled.chat) == ("bundled", True, True)
    assert "first use" in bundled.reason  # fresh TUNESMITH_HOME: not converted yet
    hub = [e for e in entries if e.source == "hub"]
    assert {"Qwen/Qwen2.5-0.5B-Instruct", "meta-llama/Llama-3.2-1B-Instruct"} <= {
        e.key for e in hub
    }
    assert all(not e.available and "offline" in e.reason for e in hub)


def test_hub_reachable_answers_at_once_when_offline():
    start = time.monotonic()
    assert models.hub_reachable() is False
    assert time.monotonic() - start < 1


def _serve(handler_cls):
    server = http.server.HTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_hub_probe_gives_up_on_a_silent_server(monkeypatch):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setattr(models, "HUB_TIMEOUT_S", 0.3)
    start = time.monotonic()
    assert models.hub_reachable() is False
    assert time.monotonic() - start < 3
    entries = models.list_models()
    assert all("cannot be reached" in e.reason for e in entries if e.source == "hub")
    with pytest.raises(ValueError, match="cannot reach"):
        models.resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    silent.close()


def test_hub_entries_available_when_the_hub_answers(monkeypatch):
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _serve(Ok)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    assert models.hub_reachable() is True
    hub = {e.key: e for e in models.list_models() if e.source == "hub"}
    assert all(e.available for e in hub.values())
    assert "gated" in hub["meta-llama/Llama-3.2-1B-Instruct"].reason
    assert hub["Qwen/Qwen2.5-0.5B-Instruct"].reason == ""
    assert models.resolve_model("someone/any-model") == "someone/any-model"
    server.shutdown()


def test_local_folders_in_the_catalogue(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    shutil.copytree(tiny_model_dir, models_dir() / "my-merged-model")
    (tmp_path / "empty").mkdir()
    entries = {e.key: e for e in models.list_models([str(tiny_model_dir), str(tmp_path / "empty")])}
    tiny = entries[str(Path(tiny_model_dir).resolve())]
    assert (tiny.source, tiny.available, tiny.chat, tiny.reason) == ("local", True, True, "")
    n = AutoModelForCausalLM.from_pretrained(tiny_model_dir).num_parameters()
    assert tiny.params == f"{n / 1e6:.1f}M"
    empty = entries[str((tmp_path / "empty").resolve())]
    assert not empty.available and "not a model folder" in empty.reason
    assert entries[str(models_dir() / "my-merged-model")].available


# --- resolve and load ------------------------------------------------------------------


def test_resolve_errors_speak_plainly(tiny_model_dir, tmp_path):
    assert models.resolve_model(str(tiny_model_dir)) == Path(tiny_model_dir).resolve()
    with pytest.raises(
        ValueError,
        match="Hugging Face Hub, which this machine cannot reach.*"
        "pick the bundled model or a local folder",
    ):
        models.resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ValueError, match="neither a model folder"):
        models.resolve_model("not a model!")
    with pytest.raises(ValueError, match="neither a model folder"):
        models.resolve_model("./no/such/folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a model folder"):
        models.resolve_model(str(tmp_path / "empty"))
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="LoRA adapter"):
        models.resolve_model(str(tmp_path / "adapter"))


def test_remote_code_is_never_run_silently(tiny_model_dir, tmp_path):
    custom = _copy_model(
        tiny_model_dir,
        tmp_path / "custom",
        model_type="tunesmith_custom",
        auto_map={"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"},
    )
    for load in (models.load_model, models.load_tokenizer):
        with pytest.raises(ValueError, match='tick "trust remote code"'):
            load(str(custom))
    # Ticked: our guard steps aside (transformers then looks for the missing code file).
    with pytest.raises(Exception) as info:
        models.load_model(str(custom), trust_remote_code=True)
    assert "trust remote code" not in str(info.value)
    # An architecture transformers ships loads without remote code despite its auto_map.
    native = _copy_model(
        tiny_model_dir, tmp_path / "native", auto_map={"AutoModelForCausalLM": "nope.Nope"}
    )
    assert type(models.load_model(str(native))).__name__ == "LlamaForCausalLM"


def test_load_tokenizer_is_cached_and_counts_with_the_template(tiny_model_dir):
    tok = models.load_tokenizer(str(tiny_model_dir))
    assert models.load_tokenizer(str(tiny_model_dir)) is tok
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    text = tok.decode(ids["input_ids"] if isinstance(ids, dict) else ids)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_load_model_defaults_to_cpu_float32(tiny_model_dir):
    import torch

    model = models.load_model(str(tiny_model_dir))
    assert (model.dtype, model.device.type, model.training) == (torch.float32, "cpu", False)
    assert models.load_model(str(tiny_model_dir), dtype="bfloat16").dtype == torch.bfloat16


# --- bundled conversion: atomic, locked, once ---------------------------------------------


# --- CLI ------------------------------------------------------------------------------------


def test_cli_json_lists_the_catalogue(tiny_model_dir):
    out = subprocess.run(
        [sys.executable, "-m", "training", "models", "--json", "--local", str(tiny_model_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["default"] == DEFAULT_MODEL and data["hub_reachable"] is False
    keys = [m["key"] for m in data["models"]]
    assert keys[0] == DEFAULT_MODEL and str(Path(tiny_model_dir).resolve()) in keys
    assert set(data["models"][0]) == {
        "id",
        "key",
        "label",
        "source",
        "available",
        "reason",
        "params",
        "chat",
    }


def test_cli_prepare_prints_where_the_model_lives_and_is_idempotent(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(bundled, "_convert", _fake_convert(calls))
    for _ in range(2):
        assert models.main(["--prepare"]) == 0
        out = capsys.readouterr()
        assert DEFAULT_MODEL in out.out and str(bundled.bundled_dir()) in out.out
        assert "ready" in out.err
    assert len(calls) == 1


# --- the real bundled model (slow: ~1 min) ------------------------------------------------


def test_inside_a_space_the_default_is_the_preloaded_hub_model(tiny_model_dir, tmp_path):
    # A Space installs requirements.txt only: no bundled GGUF. Its default model is the same
    # SmolLM2 by Hub id, preloaded into the cache; offline, it still loads and trains.
    cache = tmp_path / "hf" / "hub"
    preload_hub_cache(cache, bundled.BUNDLED_HUB_ID, tiny_model_dir)
    env = {
        **os.environ,
        "SPACE_ID": "someone/tunesmith",
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "TUNESMITH_HOME": str(tmp_path / "home"),
    }
    run = {"cwd": REPO_ROOT, "capture_output": True, "text": True, "timeout": 300, "env": env}
    out = subprocess.run([sys.executable, "-m", "training", "models", "--json"], **run)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["default"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    [entry] = [m for m in data["models"] if m["id"] == data["default"]]
    assert entry["available"] is True, entry
    chats = tmp_path / "chats.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(12)
    ]
    chats.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["train", "--data", str(chats), "--max-steps", "5", "--run-dir", str(tmp_path / "r")]
    done = subprocess.run([sys.executable, "-m", "training", *argv], **run)
    assert done.returncode == 0, done.stderr[-2000:]
    trained = (tmp_path / "r" / "config.yaml").read_text()
    assert "model: HuggingFaceTB/SmolLM2-135M-Instruct" in trained
    assert (tmp_path / "r" / "adapter" / "adapter_config.json").is_file()
    # The Space's front matter preloads that model at build time and lists it.
    front = yaml.safe_load((REPO_ROOT / "README.md").read_text().split("---")[1])
    assert data["default"] in front["preload_from_hub"] and data["default"] in front["models"]
