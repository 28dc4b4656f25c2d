"""Training defaults that learn: learning rate and length of a run from the model's size and
the data's, with the reason in words (the Train tab shows it; the Data tab's recommended
epochs is the same rule).

    r = recipe(params=135e6, examples=81)   # r.learning_rate, r.epochs, r.steps, r.reason
    recipe(135e6, 81, length="quick")       # the Train tab's "how long to train"

The rule:
- Learning rate for a LoRA adapter falls with the model's size: up to 0.5 B parameters
  1e-3, up to 3 B 5e-4, up to 10 B 2e-4, above that 1e-4. Small models need larger steps:
  on SmolLM2-135M a 90-example identity set is learned at 1e-3 in about 60 updates and not
  at all at 2e-4 (tests/training/test_recipe.py holds this on the bundled model).
- Epochs aim at OpenAI's 3 passes, raised so that a small set still gets MIN_STEPS
  optimizer updates (at most MAX_EPOCHS passes), lowered so a large set is not seen more
  than MAX_EXAMPLES_SEEN times in all.
- How long to train: "standard" is the rule above, "quick" half its passes (at least one),
  "thorough" twice (at most MAX_EPOCHS).
- The schedule stays cosine after a short warm-up (RunConfig's defaults): it ends a short
  run at a low rate, which keeps what was learned.
"""

import functools
import math
from dataclasses import dataclass

TARGET_EPOCHS = 3  # OpenAI's default aim
MIN_STEPS = 60  # updates a small set needs before the adapter reliably holds a new fact
MAX_EPOCHS = 25  # beyond this a tiny set is memorised word for word, not learned
MAX_EXAMPLES_SEEN = 25_000  # a large set: fewer passes (OpenAI's upper bound)
RATES = ((0.5e9, 1e-3), (3e9, 5e-4), (10e9, 2e-4))  # (up to this many parameters, rate)
LARGE_RATE = 1e-4
LENGTHS = {"quick": 0.5, "standard": 1.0, "thorough": 2.0}  # passes, relative to the rule


@dataclass(frozen=True)
class Recipe:
    learning_rate: float
    epochs: float
    steps: int  # optimizer steps these epochs take (0 when the data size is unknown)
    reason: str  # one or two plain sentences: why these values


@functools.lru_cache(maxsize=64)
def model_params(model: str) -> int | None:
    """Parameters of a base model, from its config.json (no weights loaded); None when its
    config cannot be read (offline, an unusual architecture)."""
    from training.backends.preflight import count_params, load_model_config

    try:
        return count_params(load_model_config(model), "all-linear", 0)[0]
    except Exception:
        return None


def learning_rate(params: float | None) -> float:
    """The LoRA learning rate for a model of this many parameters (unknown: as for 1 B)."""
    params = params or 1e9
    return next((rate for top, rate in RATES if params <= top), LARGE_RATE)


def steps_per_epoch(examples: int, batch_size: int, grad_accum: int) -> int:
    return math.ceil(math.ceil(examples / batch_size) / grad_accum) if examples else 0


def epochs_for(examples: int, batch_size: int = 4, grad_accum: int = 2) -> int:
    """Whole passes over `examples` training examples (see the module docstring)."""
    if examples <= 0:
        return TARGET_EPOCHS
    per_epoch = steps_per_epoch(examples, batch_size, grad_accum)
    epochs = max(TARGET_EPOCHS, math.ceil(MIN_STEPS / per_epoch))
    epochs = min(epochs, max(1, MAX_EXAMPLES_SEEN // examples))
    return min(epochs, MAX_EPOCHS)


def _size(params: float | None) -> str:
    if not params:
        return "a model of unknown size"
    if params >= 1e9:
        return f"a {params / 1e9:.1f} B model"
    return f"a {params / 1e6:.0f} M model" if params >= 1e6 else f"a {params / 1e3:.0f} K model"


def recipe(
    params: float | None,
    examples: int,
    batch_size: int = 4,
    grad_accum: int = 2,
    length: str = "standard",
) -> Recipe:
    """Learning rate and epochs for this model and this many training examples."""
    rate = learning_rate(params)
    epochs = epochs_for(examples, batch_size, grad_accum)
    if length != "standard":
        scaled = round(epochs * LENGTHS.get(length, 1.0))
        epochs = min(max(1, scaled), MAX_EPOCHS if length == "thorough" else epochs)
    steps = epochs * steps_per_epoch(examples, batch_size, grad_accum)
    why_rate = f"Learning rate {rate:g} for {_size(params)} (smaller models need larger steps)."
    if not examples:
        return Recipe(rate, epochs, 0, f"{why_rate} {epochs} passes over the data.")
    if epochs > TARGET_EPOCHS:
        why_epochs = (
            f"{epochs} passes over {examples:,} examples (about {steps:,} updates): a small "
            f"set needs at least {MIN_STEPS} updates to learn."
        )
    elif epochs < TARGET_EPOCHS:
        why_epochs = f"{epochs} passes: {examples:,} examples are plenty (about {steps:,} updates)."
    else:
        why_epochs = f"{epochs} passes over {examples:,} examples (about {steps:,} updates)."
    return Recipe(rate, epochs, steps, f"{why_rate} {why_epochs}")
