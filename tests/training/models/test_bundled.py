"""The bundled SmolLM2 conversion (training/models/bundled.py): once, atomic, locked, checked."""

import threading
import time

import pytest

from training.config import DEFAULT_MODEL
from training.models import bundled
from training.models import catalogue as models
from training.paths import models_dir


def _fake_convert(calls, delay=0.0):
    def convert(gguf, out, say):
        calls.append(out)
        time.sleep(delay)
        out.mkdir()
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"")

    return convert


def test_prepare_replaces_crashed_leftovers_and_runs_once(monkeypatch):
    calls = []
    monkeypatch.setattr(bundled, "_convert", _fake_convert(calls))
    stale = models_dir() / f".{bundled.BUNDLED_FOLDER}.tmp-999999"
    stale.mkdir()
    half = bundled.bundled_dir()
    half.mkdir()
    (half / "config.json").write_text("{}")  # no weights: an incomplete folder
    assert bundled.prepare_bundled() == half
    assert bundled.prepare_bundled() == half
    assert len(calls) == 1 and not stale.exists()
    assert (half / "model.safetensors").is_file()
    assert models.resolve_model(DEFAULT_MODEL) == half
    assert models.list_models()[0].reason == ""


def test_a_crash_during_conversion_leaves_nothing_that_looks_complete(monkeypatch):
    def crash(gguf, out, say):
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise RuntimeError("killed")

    monkeypatch.setattr(bundled, "_convert", crash)
    with pytest.raises(RuntimeError):
        bundled.prepare_bundled()
    assert not bundled.bundled_dir().exists()
    assert not list(models_dir().glob(".*.tmp-*"))


def test_two_concurrent_prepares_convert_once(monkeypatch):
    calls, messages = [], []
    monkeypatch.setattr(bundled, "_convert", _fake_convert(calls, delay=0.5))
    threads = [
        threading.Thread(target=bundled.prepare_bundled, args=(messages.append,)) for _ in range(2)
    ]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert any("waiting" in m for m in messages)


@pytest.mark.slow
def test_bundled_smollm2_converts_into_a_plain_model_folder():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    messages = []
    start = time.monotonic()
    folder = bundled.prepare_bundled(messages.append)
    took = time.monotonic() - start
    print(f"conversion took {took:.1f} s")
    assert len(messages) >= 3  # the user sees progress, not a silent half minute
    assert not list(models_dir().glob(".*.tmp-*"))
    assert (folder / "model.safetensors").stat().st_mode & 0o044 == 0o044  # readable by others

    model = AutoModelForCausalLM.from_pretrained(folder)  # plain load, no gguf_file
    tok = AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert abs(model.num_parameters() - 134.5e6) < 0.1e6
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    end_id = tok.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.eos_token_id == model.generation_config.pad_token_id == end_id

    chat = [{"role": "user", "content": "What is the capital of France?"}]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    batch = tok.apply_chat_template(
        chat, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=20, do_sample=False)
    reply = tok.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply

    gguf = bundled.bundled_gguf()
    original = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    with torch.no_grad():
        assert torch.allclose(original(**batch).logits, model(**batch).logits, atol=1e-4)

    start = time.monotonic()
    assert bundled.prepare_bundled() == folder
    assert time.monotonic() - start < 5  # already done: no second conversion
    assert models.load_tokenizer(DEFAULT_MODEL).eos_token == "<|im_end|>"
