"""Chat engine on the tiny model: one loaded copy, base rows identical to a fresh base model,
tuned rows different, streaming, the cache (runs built by tests.assets.make_run)."""

import threading

import pytest

from tests.assets import MSGS, make_run
from training.chat.engine import ChatEngine, Row, Settings
from training.chat.generation import stop_token_ids
from training.jobs.runs import adapter_path, checkpoints, list_runs


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "run1", tiny_model_dir)


@pytest.fixture(scope="module")
def engine():
    return ChatEngine()


def fresh_greedy(model_dir, n_tokens):
    """Reference: a freshly loaded plain transformers model, greedy, no engine involved."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    enc = tok.apply_chat_template(
        MSGS, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(
            **enc, do_sample=False, max_new_tokens=n_tokens, eos_token_id=tok.eos_token_id
        )
    return tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_base_rows_match_fresh_model_and_tuned_differs(engine, run_dir, tiny_model_dir):
    model, adapter = str(tiny_model_dir), adapter_path(run_dir)
    greedy = Settings(temperature=0, max_new_tokens=24)
    mixed = engine.generate(model, [Row(MSGS), Row(MSGS, adapter)], greedy, tokenizer_dir=adapter)
    alone = engine.generate(
        model, [Row(MSGS)], greedy, tokenizer_dir=adapter
    )  # disable_adapter path
    reference = fresh_greedy(tiny_model_dir, 24)
    assert mixed[0].text == alone[0].text == reference
    assert mixed[1].text != reference

    sampled = Settings(temperature=1.0, top_p=0.95, max_new_tokens=24, seed=7)
    mixed = engine.generate(model, [Row(MSGS), Row(MSGS, adapter)], sampled, tokenizer_dir=adapter)
    fresh = ChatEngine().generate(model, [Row(MSGS)], sampled, tokenizer_dir=adapter)
    assert mixed[0].text == fresh[0].text
    assert mixed[1].text != mixed[0].text
    again = engine.generate(model, [Row(MSGS), Row(MSGS, adapter)], sampled, tokenizer_dir=adapter)
    assert [r.text for r in again] == [r.text for r in mixed]  # same seed, same replies
    other_seed = Settings(temperature=1.0, top_p=0.95, max_new_tokens=24, seed=8)
    assert (
        engine.generate(model, [Row(MSGS)], other_seed, tokenizer_dir=adapter)[0].text
        != fresh[0].text
    )


def test_one_loaded_copy_shared_by_all_adapters(engine, run_dir, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model_name = str(tiny_model_dir)
    with engine.lock:
        model, names = engine.model(
            model_name, [adapter_path(run_dir), adapter_path(run_dir, "checkpoint-2")]
        )
    assert len(set(names)) == 2 and engine.loaded()["base"] == model_name
    base_params = {n: p for n, p in model.named_parameters() if "lora_" not in n}
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    # Every base weight exists once: same count as a plain model, one storage each.
    assert sum(p.numel() for p in base_params.values()) == sum(
        p.numel() for p in fresh.parameters()
    )
    assert len({p.data_ptr() for p in base_params.values()}) == len(base_params)
    # The checkpoint really is another adapter: its tuned reply differs from the final one.
    s = Settings(temperature=0, max_new_tokens=16)
    final, ckpt = engine.generate(
        model_name,
        [Row(MSGS, adapter_path(run_dir)), Row(MSGS, adapter_path(run_dir, "checkpoint-2"))],
        s,
    )
    assert final.text != ckpt.text


def test_streaming_is_incremental_with_stats(engine, run_dir, tiny_model_dir):
    adapter = adapter_path(run_dir)
    events = list(
        engine.stream(
            str(tiny_model_dir),
            [Row(MSGS), Row(MSGS, adapter), Row([{"role": "user", "content": "Hi"}])],
            Settings(temperature=0.8, max_new_tokens=12, system_prompt="Be brief."),
            tokenizer_dir=adapter,
        )
    )
    for row in range(3):
        mine = [e for e in events if e.row == row]
        assert sum(1 for e in mine if e.text and not e.done) >= 3  # text arrives piece by piece
        assert mine[-1].done and sum(e.done for e in mine) == 1
        stats = mine[-1].stats
        assert stats.prompt_tokens > 5 and 0 < stats.generated_tokens <= 12 and stats.latency_s > 0
    # events of different rows interleave: both columns stream at the same time
    order = [e.row for e in events if not e.done]
    assert order.index(1) < max(i for i, row in enumerate(order) if row == 0)


def test_few_shot_row_with_padding(engine, run_dir, tiny_model_dir):
    adapter = adapter_path(run_dir)
    shots = [
        {"role": "user", "content": "Describe: fox"},
        {"role": "assistant", "content": "{}"},
    ] * 3
    greedy = Settings(temperature=0, max_new_tokens=10)
    rows = [Row(MSGS), Row(MSGS, adapter), Row(shots + MSGS)]
    replies = engine.generate(str(tiny_model_dir), rows, greedy, tokenizer_dir=adapter)
    assert replies[2].stats.prompt_tokens > replies[0].stats.prompt_tokens + 20
    alone = engine.generate(str(tiny_model_dir), [Row(MSGS)], greedy, tokenizer_dir=adapter)
    assert replies[0].text == alone[0].text  # left padding does not change the base reply


def test_free_empties_cache_and_reloads(run_dir, tiny_model_dir):
    engine = ChatEngine()
    s = Settings(temperature=0, max_new_tokens=6)
    first = engine.generate(str(tiny_model_dir), [Row(MSGS, adapter_path(run_dir))], s)
    assert engine.loaded()["adapters"]
    engine.free()
    assert engine.loaded() == {"base": None, "adapters": []}
    again = engine.generate(str(tiny_model_dir), [Row(MSGS, adapter_path(run_dir))], s)
    assert again[0].text == first[0].text and engine.loaded()["base"] == str(tiny_model_dir)


def test_free_stops_a_running_generation(run_dir, tiny_model_dir):
    engine = ChatEngine()
    stream = engine.stream(
        str(tiny_model_dir), [Row(MSGS)], Settings(temperature=0, max_new_tokens=400)
    )
    next(stream)
    freer = threading.Thread(target=engine.free)
    freer.start()
    rest = list(stream)
    freer.join(timeout=30)
    assert not freer.is_alive() and engine.loaded()["base"] is None
    assert rest[-1].done and rest[-1].stats.generated_tokens < 400


def test_runs_and_checkpoints_listing(run_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    made = make_run(tmp_path / "home" / "runs" / "r1", tiny_model_dir)
    (tmp_path / "home" / "runs" / "empty").mkdir()
    assert list_runs() == [made]
    assert checkpoints(made) == ["final", "checkpoint-2"]
    assert adapter_path(made, "checkpoint-2") == made / "checkpoints" / "checkpoint-2"


def test_stop_tokens_cover_template_ends(tiny_tokenizer, tiny_llama3_model_dir):
    from transformers import AutoTokenizer

    assert tiny_tokenizer.convert_tokens_to_ids("<|im_end|>") in stop_token_ids(
        tiny_tokenizer, None
    )
    llama3 = AutoTokenizer.from_pretrained(tiny_llama3_model_dir)
    assert llama3.convert_tokens_to_ids("<|eot_id|>") in stop_token_ids(llama3, None)


def test_reply_stops_at_end_token(engine, tiny_model_dir, tiny_tokenizer, monkeypatch):
    """Make the end-of-turn token the likeliest one: the reply must end there, unprinted."""
    import training.chat.engine as chat

    end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")

    class EndSoon:
        def __init__(self, *a):
            self.calls = 0

        def __call__(self, input_ids, scores):
            self.calls += 1
            if self.calls == 4:
                scores[:, :] = float("-inf")
                scores[:, end] = 0.0
            return scores

    monkeypatch.setattr(chat, "RowSampler", EndSoon)
    reply = engine.generate(
        str(tiny_model_dir), [Row(MSGS)], Settings(temperature=1, max_new_tokens=30)
    )[0]
    assert reply.stats.generated_tokens == 3 and "<|im_end|>" not in reply.text
