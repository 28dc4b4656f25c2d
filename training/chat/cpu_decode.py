"""Faster CPU decoding: linear layers compute W·xᵀ for the few rows of a decoding step.

A decoding step multiplies every weight matrix by one row per reply. `F.linear(x, W)` hands
that to MKL as x·Wᵀ, which for one or two rows runs far below memory bandwidth; the same
product written as W·xᵀ with at least two columns goes through a GEMM kernel that streams
the weights once for all rows. Measured once on a 2-core AVX-512 Xeon (torch 2.13, MKL 2024.2)
over SmolLM2-135M's 211 matrices with cold caches, per step:

    rows          1        2        4        8        64
    F.linear    32.8 ms  51.7 ms  49.4 ms  46.0 ms  116.6 ms
    W·xᵀ        14.8 ms  14.8 ms  15.0 ms  31.0 ms  101.8 ms   (one row padded to two)

so a single reply decodes about 2x faster and a side-by-side batch of two costs about the
same as one, which is the point of the playground's mixed base/tuned batch. It does not hold
everywhere: on another 2-core Xeon the same path ran a single reply at 0.45x the stock speed,
and on a machine of the kind above, with one thread and other processes busy, a whole decoding
step took 175 ms against the stock path's 68 ms. So nothing is assumed: when the chat engine
loads a model on CPU, `choose` times one decoding step of both paths at a few batch sizes on
that very model, and `enable` keeps W·xᵀ only for the batch sizes where it was clearly quicker
(the engine keeps the answer per model). Training never sees this (gradients on, or many
rows, take the stock path) and `bench/playground.py` measures stock, W·xᵀ and the engine's
choice in one run.
"""

import contextlib
import math
import time
import types
from dataclasses import dataclass

import torch  # this module is imported only once a model is being loaded
import torch.nn.functional as F

MAX_ROWS = 64  # beyond this (long prompts' prefill) the stock path is as good
MIN_WEIGHTS = 65_536  # smaller matrices (LoRA's A and B) sit in cache: the stock call is cheaper
ALL_ROWS = frozenset(range(1, MAX_ROWS + 1))
# Batch sizes `choose` times: one reply, side by side, evaluation's batches (2 x 4 rows); a
# size between two of them follows the smaller one. Each is timed ROUNDS times per path,
# interleaved, after one warm-up round; the quickest round counts (other load only adds).
TIMED_ROWS = (1, 2, 4, 8)
ROUNDS = 3
QUICKER = 0.95  # W·xᵀ must take under 95 % of the stock time: a tie goes to the stock path


def _forward(self, x):
    rows = x.numel() // x.shape[-1] if x.dim() else 0
    if (
        rows not in self._decode_rows
        or torch.is_grad_enabled()
        or x.device.type != "cpu"
        or x.dtype != self.weight.dtype
    ):
        return F.linear(x, self.weight, self.bias)
    # MKL is fast only when the right operand is the transposed view of a row-major x (a
    # column-major copy measured 3.5x slower), and one column falls back to GEMV.
    flat = x.reshape(rows, x.shape[-1]).contiguous()
    if rows == 1:
        flat = flat.repeat(2, 1)
    out = torch.mm(self.weight, flat.t()).t()[:rows].contiguous()
    if self.bias is not None:
        out = out + self.bias
    return out.reshape(*x.shape[:-1], self.weight.shape[0])


def enable(model, rows=ALL_ROWS) -> int:
    """Route the large nn.Linear layers of `model` through W·xᵀ for inputs of `rows` rows (the
    stock path for any other count); returns how many layers were newly patched. Calling it
    again only changes the row counts."""
    patched = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.numel() >= MIN_WEIGHTS:
            module._decode_rows = frozenset(rows)
            if "forward" not in vars(module):
                module.forward = types.MethodType(_forward, module)
                patched += 1
    return patched


def disable(model) -> None:
    """Back to the stock F.linear path."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and "forward" in vars(module):
            del module.forward
            vars(module).pop("_decode_rows", None)


@dataclass(frozen=True)
class Choice:
    rows: frozenset  # row counts that take W·xᵀ; every other count takes F.linear
    seconds: dict  # timed batch size -> (stock, W·xᵀ): one decoding step's forward, quickest round

    def summary(self) -> str:
        return ", ".join(
            f"{n} rows: {'W·xᵀ' if n in self.rows else 'stock'} "
            f"({stock * 1e3:.1f} vs {decode * 1e3:.1f} ms)"
            for n, (stock, decode) in self.seconds.items()
        )


def decode_rows(seconds: dict) -> frozenset:
    """The row counts (1..MAX_ROWS) for W·xᵀ: those whose nearest timed batch size at or
    below them was clearly quicker on it (QUICKER). seconds: batch size -> (stock, W·xᵀ)."""
    timed = sorted(seconds)
    return frozenset(
        rows
        for rows in ALL_ROWS
        if (below := [n for n in timed if n <= rows])
        and seconds[below[-1]][1] < QUICKER * seconds[below[-1]][0]
    )


def choose(model, timed_rows=TIMED_ROWS, rounds=ROUNDS) -> Choice:
    """Time one decoding step (a forward of one new token per row, weights read once) on
    both paths at each batch size, keep the quicker per size, and leave `model` patched
    that way. A model with no large layer is left alone (nothing to choose)."""
    enable(model)
    if not any("_decode_rows" in vars(m) for m in model.modules()):
        return Choice(frozenset(), {})
    device = next(model.parameters()).device
    seconds = {}
    with torch.inference_mode():
        for n in timed_rows:
            ids = torch.zeros((n, 1), dtype=torch.long, device=device)
            best = {False: math.inf, True: math.inf}
            for round_ in range(rounds + 1):
                for decode in (False, True):
                    enable(model, ALL_ROWS if decode else ())
                    start = time.perf_counter()
                    model(input_ids=ids, use_cache=False)
                    if round_:  # the first round warms caches and kernels up
                        best[decode] = min(best[decode], time.perf_counter() - start)
            seconds[n] = (best[False], best[True])
    choice = Choice(decode_rows(seconds), seconds)
    enable(model, choice.rows)
    return choice


@contextlib.contextmanager
def row_adapters(model, row_names: list[str]):
    """Base and tuned rows in one batch, without PEFT's per-layer gather/scatter.

    PEFT's `adapter_names` path indexes each adapter's rows out of every layer's input and
    writes them back (a Python list turned into an index tensor, twice, in 211 layers per
    step); on CPU that costs more than the LoRA maths. Here every vanilla-LoRA layer adds
    `B(A(x)) * scale`, where scale is a (rows, 1, 1) tensor holding the adapter's scaling on
    its own rows and 0 elsewhere: the product for the other rows is a few hundred wasted
    multiply-adds, cheaper than indexing. Yields False (nothing patched) when some layer is
    not plain LoRA (DoRA and other variants, merged weights): the caller then uses PEFT's
    path."""
    from peft.tuners.lora import Linear as LoraLinear
    from peft.tuners.lora import LoraLayer

    adapters = sorted({n for n in row_names if n != "__base__"})
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    if any(
        type(m) is not LoraLinear or m.merged or any(a in m.lora_variant for a in adapters)
        for m in layers
    ):
        yield False
        return
    weight = next(model.parameters())
    rows = {
        a: torch.tensor([n == a for n in row_names], dtype=weight.dtype, device=weight.device)
        for a in adapters
    }
    try:
        for m in layers:
            m._row_loras = [
                (m.lora_A[a], m.lora_B[a], (rows[a] * m.scaling[a]).view(-1, 1, 1))
                for a in adapters
                if a in m.lora_A
            ]
            m.forward = types.MethodType(_row_lora_forward, m)
        yield True
    finally:
        for m in layers:
            vars(m).pop("forward", None)
            vars(m).pop("_row_loras", None)


def _row_lora_forward(self, x, *args, **kwargs):
    result = self.base_layer(x, *args, **kwargs)
    for lora_a, lora_b, scale in self._row_loras:  # dropout is the identity in eval mode
        result = result + lora_b(lora_a(x)) * scale
    return result
