"""Unpadded training steps: same gradient as TRL's padded batch, far fewer tokens computed."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from training.backends.batching import merge_sub_batches, plan_sub_batches
from training.backends.lora import build_trainer
from training.config import RunConfig
from training.data.labels import encode_examples
from training.hardware import detect
from training.models.catalogue import chat_tokenizer


def cost(lengths, groups):
    return sum(len(g) * max(lengths[i] for i in g) for g in groups)


def test_plan_covers_every_row_once_longest_first():
    lengths = [40, 500, 38, 15, 30, 25, 22, 20]
    for overhead in (0, 24, 1e9):
        groups = plan_sub_batches(lengths, overhead)
        assert sorted(i for g in groups for i in g) == list(range(8))
        flat = [lengths[i] for g in groups for i in g]
        assert flat == sorted(lengths, reverse=True)
    assert plan_sub_batches(lengths, 1e9) == [[1, 0, 2, 4, 5, 6, 7, 3]]  # one padded batch
    assert len(plan_sub_batches(lengths, 0)) == 8  # every length its own pass
    groups = plan_sub_batches(lengths, 24)
    assert groups[0] == [1]  # the long example runs alone
    assert cost(lengths, groups) / sum(lengths) < 1.15 < 8 * 500 / sum(lengths)


def test_equal_lengths_stay_one_pass():
    assert plan_sub_batches([64] * 8, 24) == [[0, 1, 2, 3, 4, 5, 6, 7]]


def test_merging_keeps_every_row_and_merges_the_cheapest_neighbours():
    """Under several processes each rank runs the fewest sub-batches any rank planned."""
    lengths = [40, 500, 38, 15, 30, 25, 22, 20]
    planned = plan_sub_batches(lengths, 0)  # 8 passes
    for count in range(1, 9):
        merged = merge_sub_batches(planned, lengths, count)
        assert len(merged) == count
        assert [i for g in merged for i in g] == [i for g in planned for i in g]  # same order
    two = merge_sub_batches(planned, lengths, 2)
    assert two[0] == [1]  # the long example still runs alone
    assert cost(lengths, two) == min(
        cost(lengths, [planned_rows[:k], planned_rows[k:]])
        for planned_rows in [[i for g in planned for i in g]]
        for k in range(1, 8)
    )
    assert merge_sub_batches([[0, 1]], [5, 5], 3) == [[0, 1]]  # never more than planned


@pytest.fixture
def trainer_and_batch(tiny_model_dir, tmp_path):
    cfg = RunConfig(
        model=str(tiny_model_dir),
        batch_size=8,
        grad_accum=1,
        max_steps=1,
        save_steps=0,
        eval_steps=0,
        lora_dropout=0.0,
    )
    tok = chat_tokenizer(cfg.model, cfg.trust_remote_code)
    examples = [
        {
            "messages": [
                {"role": "user", "content": "q" * (i % 3 + 1)},
                {"role": "assistant", "content": "the quick brown fox " * (1 + 10 * (i == 0) + i)},
            ]
        }
        for i in range(8)
    ]
    rows, _ = encode_examples(tok, examples, 512)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = build_trainer(cfg, model, tok, rows, [], tmp_path, detect())
    for name, p in trainer.model.named_parameters():
        if (
            "lora_B" in name
        ):  # zero at init: make them non-zero so every LoRA weight gets a gradient
            torch.nn.init.normal_(p, std=0.02)
    trainer.model.train()
    return trainer, trainer.data_collator(rows)


def test_unpadded_step_gives_the_padded_batch_gradient(trainer_and_batch):
    trainer, batch = trainer_and_batch
    n_items = torch.tensor(int((batch["labels"][:, 1:] != -100).sum()))

    def step(overhead):
        trainer.model.zero_grad()
        trainer.split_overhead = overhead
        loss = trainer.training_step(trainer.model, dict(batch), n_items)
        grads = [p.grad.flatten() for p in trainer.model.parameters() if p.requires_grad]
        return loss.item(), torch.cat(grads)

    padded_loss, padded = step(1e9)  # one pass over the padded batch, as TRL runs it
    before = trainer.processed
    split_loss, split = step(24)
    assert split_loss == pytest.approx(padded_loss, rel=1e-5)
    assert torch.allclose(split, padded, atol=1e-6, rtol=1e-4)
    assert padded.abs().max() > 1e-3  # a real gradient, not zeros
    real = int(batch["attention_mask"].sum())
    assert before == batch["input_ids"].numel()  # padded: 8 x longest
    assert (trainer.processed - before) / real < 1.1 < before / real
