"""CPU decoding path: the W·xᵀ linear equals F.linear, the quicker path is the one kept
(measured once per model), row-masked LoRA equals PEFT's own routing, and the engine's mixed
batch gives each row what it would get alone."""

import time
import types

import pytest
import torch
import torch.nn.functional as F

from tests.assets import MSGS, make_run
from training.chat import cpu_decode
from training.chat.engine import ChatEngine, Row, Settings
from training.jobs.runs import adapter_path


@pytest.fixture
def every_layer(monkeypatch):
    """The tiny model's matrices are below MIN_WEIGHTS: patch them all so the path runs."""
    monkeypatch.setattr(cpu_decode, "MIN_WEIGHTS", 0)


@pytest.fixture
def decode_everywhere(every_layer, monkeypatch):
    """The engine's load-time choice made for W·xᵀ at every batch size, so the path runs
    whatever the timings of this machine."""

    def choose(model):
        cpu_decode.enable(model)
        return cpu_decode.Choice(cpu_decode.ALL_ROWS, {})

    monkeypatch.setattr(cpu_decode, "choose", choose)


@pytest.mark.parametrize("shape", [(1, 1, 96), (2, 1, 96), (3, 96), (5, 7, 96), (80, 96)])
@pytest.mark.parametrize("bias", [True, False])
def test_decode_linear_matches_stock(shape, bias, every_layer):
    torch.manual_seed(0)
    layer = torch.nn.Linear(96, 160, bias=bias)
    x = torch.randn(shape)
    with torch.inference_mode():
        expected = F.linear(x, layer.weight, layer.bias)
        assert cpu_decode.enable(layer) == 1
        got = layer(x)
    assert got.shape == expected.shape and got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_training_and_long_inputs_take_the_stock_path(every_layer):
    layer = torch.nn.Linear(32, 48)
    cpu_decode.enable(layer)
    x = torch.randn(2, 32)
    y = layer(x)  # gradients on: the stock F.linear, bit for bit, differentiable
    assert torch.equal(y, F.linear(x, layer.weight, layer.bias)) and y.grad_fn is not None
    long = torch.randn(cpu_decode.MAX_ROWS + 1, 32)
    with torch.inference_mode():
        assert torch.equal(layer(long), F.linear(long, layer.weight, layer.bias))


def test_enable_patches_large_layers_once_and_disable_restores():
    model = torch.nn.Sequential(torch.nn.Linear(512, 256), torch.nn.Linear(16, 512))
    assert cpu_decode.enable(model) == 1  # 131,072 weights patched; 8,192 (LoRA-sized) not
    assert "forward" in vars(model[0]) and "forward" not in vars(model[1])
    assert cpu_decode.enable(model, {2, 3}) == 0 and model[0]._decode_rows == {2, 3}
    cpu_decode.disable(model)
    assert "forward" not in vars(model[0])


def test_only_the_chosen_row_counts_take_the_decode_path(every_layer, monkeypatch):
    layer = torch.nn.Linear(32, 48)
    cpu_decode.enable(layer, {2})
    products = []
    real_mm = torch.mm
    monkeypatch.setattr(cpu_decode.torch, "mm", lambda a, b: products.append(1) or real_mm(a, b))
    with torch.inference_mode():
        for rows in (1, 2, 3):
            layer(torch.randn(rows, 1, 32))
    assert len(products) == 1  # the 2-row call only


def test_each_batch_size_follows_the_nearest_timed_size_below():
    seconds = {1: (1.0, 2.0), 2: (1.0, 0.5), 4: (1.0, 1.5), 8: (2.0, 1.0)}
    rows = cpu_decode.decode_rows(seconds)
    assert rows == {2, 3} | set(range(8, cpu_decode.MAX_ROWS + 1))
    assert cpu_decode.decode_rows({1: (1.0, 0.5)}) == cpu_decode.ALL_ROWS
    assert cpu_decode.decode_rows({1: (0.5, 1.0)}) == frozenset()
    assert cpu_decode.decode_rows({1: (1.0, 0.99)}) == frozenset()  # a tie: the stock path


def slowed(fn, seconds=0.005):
    def slow(*args, **kwargs):
        time.sleep(seconds)
        return fn(*args, **kwargs)

    return slow


@pytest.mark.parametrize("slow_path", ["stock", "decode"])
def test_choose_keeps_the_quicker_path(slow_path, tiny_model_dir, every_layer, monkeypatch):
    """Whichever path this machine runs slower (here made slower on purpose) is left out."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    if slow_path == "stock":
        monkeypatch.setattr(cpu_decode, "F", types.SimpleNamespace(linear=slowed(F.linear)))
    else:
        monkeypatch.setattr(cpu_decode.torch, "mm", slowed(torch.mm))
    choice = cpu_decode.choose(model, rounds=2)
    assert set(choice.seconds) == set(cpu_decode.TIMED_ROWS)
    expected = cpu_decode.ALL_ROWS if slow_path == "stock" else frozenset()
    assert choice.rows == expected
    assert all(m._decode_rows == expected for m in model.modules() if "forward" in vars(m))
    assert ("W·xᵀ" if slow_path == "stock" else "stock") in choice.summary()


def test_a_model_without_large_layers_is_left_alone():
    model = torch.nn.Sequential(torch.nn.Linear(16, 16))
    assert cpu_decode.choose(model) == cpu_decode.Choice(frozenset(), {})
    assert "forward" not in vars(model[0])


def test_engine_measures_each_model_once(tiny_model_dir, every_layer, monkeypatch):
    measured = []
    real_choose = cpu_decode.choose
    monkeypatch.setattr(
        cpu_decode, "choose", lambda model: measured.append(1) or real_choose(model)
    )
    engine, greedy = ChatEngine(), Settings(temperature=0, max_new_tokens=4)
    engine.generate(str(tiny_model_dir), [Row(MSGS)], greedy)
    engine.free()  # a training job took the memory; the model comes back afterwards
    engine.generate(str(tiny_model_dir), [Row(MSGS)], greedy)
    assert len(measured) == 1 and len(engine.cpu_choices) == 1
    (choice,) = engine.cpu_choices.values()
    with engine.lock:
        model, _ = engine.model(str(tiny_model_dir))
    patched = [m for m in model.modules() if "forward" in vars(m)]
    assert patched and all(m._decode_rows == choice.rows for m in patched)


@pytest.fixture(scope="module")
def two_adapters(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cpu-decode")
    return [
        adapter_path(make_run(root / name, tiny_model_dir, seed=seed))
        for name, seed in (("one", 1), ("two", 2))
    ]


def test_row_masked_lora_equals_peft_routing(tiny_model_dir, two_adapters):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    model = PeftModel.from_pretrained(model, str(two_adapters[0]), adapter_name="one")
    model.load_adapter(str(two_adapters[1]), adapter_name="two")
    ids = torch.arange(3, 13).reshape(1, 10).expand(3, -1)
    names = ["__base__", "one", "two"]
    with torch.inference_mode():
        peft = model(input_ids=ids, adapter_names=names).logits
        with cpu_decode.row_adapters(model, names) as patched:
            ours = model(input_ids=ids).logits
        assert patched
        with model.disable_adapter():
            base = model(input_ids=ids[:1]).logits
    torch.testing.assert_close(ours, peft, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours[:1], base, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ours[1], ours[2])  # two adapters really differ
    assert not any("forward" in vars(m) for m in model.modules())  # all restored


def test_row_masked_lora_declines_dora(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    model = get_peft_model(
        model, LoraConfig(r=4, target_modules="all-linear", use_dora=True), adapter_name="d"
    )
    with cpu_decode.row_adapters(model, ["__base__", "d"]) as patched:
        assert patched is False


def test_engine_mixed_batch_gives_each_row_its_solo_reply(
    tiny_model_dir, two_adapters, decode_everywhere
):
    engine, model = ChatEngine(), str(tiny_model_dir)
    one, two = two_adapters
    greedy = Settings(temperature=0, max_new_tokens=20)
    mixed = engine.generate(model, [Row(MSGS), Row(MSGS, one), Row(MSGS, two)], greedy)
    alone = [engine.generate(model, [row], greedy)[0] for row in (Row(MSGS, one), Row(MSGS, two))]
    base = engine.generate(model, [Row(MSGS)], greedy)[0]
    assert [r.text for r in mixed] == [base.text, alone[0].text, alone[1].text]
    assert len({r.text for r in mixed}) == 3
    with engine.lock:
        loaded, _ = engine.model(model)
    patched = [m for m in loaded.modules() if "forward" in vars(m)]
    assert patched and all(m._decode_rows == cpu_decode.ALL_ROWS for m in patched)  # it ran
