"""Batches without wasted compute: each step's examples, run as unpadded sub-batches.

TRL's default SFT pipeline draws random batches and pads each to its longest member, so with
skewed lengths (many short chats, a few long ones) most of the compute goes to padding.
Padding-free packing would avoid that, but outside FlashAttention's varlen kernels (CPU, SDPA)
packed examples attend to each other, silently. Sorting the whole dataset by length removes
the padding too, but changes what each optimizer step sees (steps of only short, or only
long, examples), which measurably slowed convergence on SmolLM2.

So the sampler and the optimizer steps stay exactly TRL's (same random batches, same seed),
and only the compute changes: inside a step the batch is sorted by length and cut into
sub-batches, each trimmed to its own longest member, whose gradients accumulate before the
optimizer step. Every sub-loss is divided by the token count of the whole step
(`num_items_in_batch`), so the gradient equals the padded batch's exactly (up to float
rounding). Where to cut is a small dynamic programme: minimise padded tokens plus a fixed
per-forward overhead, so a batch of similar lengths stays one forward pass. The longest
example no longer drags seven short ones to its length, which also lowers peak memory.
With several processes every rank runs as many sub-batches (the fewest any rank planned,
neighbours merged): TRL gathers its metrics across the ranks in each one, so unequal counts
would leave a rank waiting forever.
"""

import math

import torch
from trl import SFTTrainer

# Cost of one extra forward/backward pass, in tokens of padding it must save to be worth it.
# GPUs run a batch's rows in parallel, so splitting pays off later there than on a CPU.
SPLIT_OVERHEAD_TOKENS = {"cuda": 256, "cpu": 24}


def plan_sub_batches(lengths: list[int], overhead: float) -> list[list[int]]:
    """Row indices grouped into sub-batches (longest first), minimising
    sum(rows x longest row) + overhead per sub-batch. Groups are runs of the sorted order."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best, cut = [0.0] + [math.inf] * len(order), [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        for start in range(end):  # order[start] is the longest row of order[start:end]
            cost = best[start] + (end - start) * lengths[order[start]] + overhead
            if cost < best[end]:
                best[end], cut[end] = cost, start
    groups, end = [], len(order)
    while end:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


def merge_sub_batches(groups: list[list[int]], lengths: list[int], count: int) -> list[list[int]]:
    """The same rows in `count` sub-batches (fewer than planned): neighbours in the longest-
    first order merge, each time the pair whose merge adds the least padding."""
    groups = [list(g) for g in groups]
    while len(groups) > max(count, 1):
        added = [
            len(groups[k + 1]) * (lengths[groups[k][0]] - lengths[groups[k + 1][0]])
            for k in range(len(groups) - 1)
        ]
        k = added.index(min(added))
        groups[k : k + 2] = [groups[k] + groups[k + 1]]
    return groups


class CountingCollator:
    """Wraps a collator to count processed (padded) vs real tokens: for plain-TRL baselines."""

    def __init__(self, collator):
        self.collator = collator
        self.processed = self.real = 0

    def __call__(self, examples):
        batch = self.collator(examples)
        self.processed += batch["input_ids"].numel()
        self.real += sum(len(e["input_ids"]) for e in examples)
        return batch

    @property
    def padding_waste(self) -> float | None:
        return round(self.processed / self.real, 4) if self.real else None


class UnpaddedSFTTrainer(SFTTrainer):
    """SFTTrainer whose training steps skip the padding (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.processed = self.real = 0  # tokens run through the model vs tokens present
        self.split_overhead = SPLIT_OVERHEAD_TOKENS.get(self.args.device.type, 24)

    @property
    def padding_waste(self) -> float | None:
        """Processed tokens / real tokens: 1.0 means no compute spent on padding."""
        return round(self.processed / self.real, 4) if self.real else None

    def training_step(self, model, inputs, num_items_in_batch=None):
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        groups = plan_sub_batches(lengths, self.split_overhead)
        if self.args.world_size > 1:
            # TRL gathers its metrics across ranks in every compute_loss (and FSDP gathers
            # weights in every forward): all ranks must run as many sub-batches, the fewest.
            fewest = torch.tensor([len(groups)], device=self.args.device)
            torch.distributed.all_reduce(fewest, op=torch.distributed.ReduceOp.MIN)
            groups = merge_sub_batches(groups, lengths, int(fewest.item()))
        if num_items_in_batch is None:  # keep the step's loss a mean over all its tokens
            num_items_in_batch = int((inputs["labels"][:, 1:] != -100).sum())
        self.real += sum(lengths)
        total = None
        for k, rows in enumerate(groups):
            width = max(lengths[i] for i in rows)
            self.processed += width * len(rows)
            index = torch.tensor(rows, device=inputs["input_ids"].device)
            sub = {key: value[index, :width] for key, value in inputs.items()}
            # Under DDP, gradients are all-reduced once, after the step's last sub-batch.
            last = k == len(groups) - 1 or self.args.world_size == 1
            with torch.enable_grad() if last else self.accelerator.no_sync(model):
                loss = super().training_step(model, sub, num_items_in_batch)
            total = loss if total is None else total + loss
        return total
