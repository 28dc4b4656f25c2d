"""The pieces of one batched generate() call: the repetition penalty equals transformers'
own on a plain row and ignores left padding, so a row's reply never depends on its batch."""

import torch
from transformers import RepetitionPenaltyLogitsProcessor

from tests.assets import MSGS
from training.chat.engine import ChatEngine, Row, Settings
from training.chat.generation import RepetitionPenalty

PAD = 0


def test_penalty_equals_transformers_and_ignores_left_padding():
    torch.manual_seed(0)
    rows = [[5, 6, 7, 5, 9], [8, 3, 4]]
    width = max(map(len, rows))
    ids = torch.tensor([[PAD] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    scores = torch.randn(2, 16)
    ours = RepetitionPenalty(1.3, {"input_ids": ids, "attention_mask": mask})(ids, scores.clone())
    stock = RepetitionPenaltyLogitsProcessor(1.3)
    for i, row in enumerate(rows):  # each row as if it were alone, unpadded
        alone = stock(torch.tensor([row]), scores[i : i + 1].clone())
        torch.testing.assert_close(ours[i : i + 1], alone)
    assert ours[1, PAD] == scores[1, PAD]  # the padded row's pad token is not penalised
    grown = torch.cat([ids, torch.tensor([[PAD], [11]])], 1)  # later steps: generated tokens count
    later = RepetitionPenalty(1.3, {"input_ids": ids, "attention_mask": mask})(
        grown, scores.clone()
    )
    assert later[1, 11] != scores[1, 11] and later[0, PAD] != scores[0, PAD]


def test_penalised_reply_of_a_padded_row_is_its_reply_alone(tiny_model_dir):
    engine, model = ChatEngine(), str(tiny_model_dir)
    penalised = Settings(temperature=0, max_new_tokens=16, repetition_penalty=50.0)
    longer = [{"role": "user", "content": "Describe: a much longer question than the other"}]
    batch = engine.generate(model, [Row(MSGS), Row(longer)], penalised)  # row 0 left-padded
    alone = engine.generate(model, [Row(MSGS)], penalised)
    assert batch[0].text == alone[0].text
    plain = engine.generate(model, [Row(MSGS)], Settings(temperature=0, max_new_tokens=16))
    assert plain[0].text != alone[0].text  # the penalty really acts
