"""CPU decoding path: the W·xᵀ linear equals F.linear, row-masked LoRA equals PEFT's own
routing, and the engine's mixed batch gives each row what it would get alone."""

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
    assert cpu_decode.enable(model) == 0
    cpu_decode.disable(model)
    assert "forward" not in vars(model[0])


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
    tiny_model_dir, two_adapters, every_layer
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
    assert any("forward" in vars(m) for m in loaded.modules())  # the decode path was on
