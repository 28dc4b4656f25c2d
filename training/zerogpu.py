"""ZeroGPU: a Space whose GPU exists only inside `@spaces.GPU` calls.

On ZeroGPU hardware (Hugging Face sets SPACES_ZERO_GPU=true, Settings.zero_gpu, and the
`spaces` package is installed) a GPU is lent to the app's own process for one call of a
function decorated with `spaces.GPU(duration=...)`, at most MAX_SECONDS long. spaces runs the
call in a forked worker process: arguments, results and each value a generator yields are
pickled, so objects living in the app (the chat engine, a progress callback, a thread's
Event) stay behind, and what the call loads stays in that worker. A subprocess never gets
the GPU: training runs in the app's process too (training/jobs/in_process.py). Everywhere else
`gpu(fn, ...)` returns fn unchanged and nothing here runs.

    _stream_on_gpu = zerogpu.gpu(_stream_in_worker, duration=_chat_seconds)   # at import

Here: whether we are on ZeroGPU, the decorator, the longest call (MAX_SECONDS), the duration
rules of the entry points (generation, evaluation, merge) and the training plan: how many
optimizer steps fit in one call, in words for the Train tab. Import this module before torch
initialises CUDA (app.py imports it first): on ZeroGPU it imports `spaces`, which patches torch.
"""

import functools
import math
import os
from dataclasses import dataclass

from training.hardware import Hardware
from training.settings import Settings

# The longest GPU call requested. Hugging Face's ZeroGPU page (hub-docs spaces-zerogpu.md,
# "Duration Management") gives 60 s as the default and 120 s as its example of a longer call,
# and its usage tiers cap a day's GPU time at 2 minutes for visitors who are not signed in
# (3.5 min free accounts, 25 min PRO): a call asking for more than 120 s would be refused to
# them outright. The per-call maximum itself is undocumented ("a few minutes", ZeroGPU
# explorers' discussion #7 said 5 min), so 120 s is the longest call every visitor can get.
MAX_SECONDS = 120
# What a call costs besides the work itself: cautious estimates, not measurements (no
# ZeroGPU here to measure on); a call that runs long is stopped by ZeroGPU, a run stops first.
STARTUP_S = 10.0  # a fresh worker: fork, CUDA context, transformers/peft imports
LOAD_S_PER_GB = 5.0  # weights from the Space's disk cache onto the GPU (~200 MB/s, cautious)
SAVE_S_PER_GB = 5.0  # safetensors written to the Space's disk
# One decoding step of generate(): ~30 ms of Python per step at these sizes, plus reading the
# weights (2 bytes per parameter at ~4.8 TB/s is 0.4 ms per billion) padded 25x for adapter
# routing and small-batch inefficiency: 10 ms per billion parameters per row.
DECODE_S_PER_STEP = 0.03
DECODE_S_PER_B_PER_ROW = 0.01
LOSS_S_PER_BATCH = 0.1  # one forward pass of 4 held-out rows, for the loss
TRAIN_SAFETY = 1.25  # training steps take up to 25 % longer than the pre-flight speed
PREPARE_S = 5.0  # the worker validates and tokenises the data inside the call...
PREPARE_ROWS_PER_S = 1000  # ...at about this many rows per second
SAVE_S = 10.0  # the final checkpoint and adapter; a run stops this long before its call ends
FALLBACK_B = 1.0  # a model whose size cannot be read counts as 1 B parameters
# The hardware a call gets: a 70 GB slice of an NVIDIA H200 (hub-docs spaces-zerogpu.md,
# "Technical Specifications"), bf16. The app process never touches CUDA itself.
HARDWARE = Hardware("cuda", "NVIDIA H200 (ZeroGPU slice)", 70.0, "bf16")
ALTERNATIVE = "Duplicate this Space on a dedicated GPU (e.g. an L4 or A10G) to train it all."


def active() -> bool:
    """On ZeroGPU: Settings.zero_gpu set by the platform, and `spaces` importable. Reads only
    that variable, so the worker's CLI never fails on another setting."""
    flag = "SPACES_ZERO_GPU"
    if not Settings.from_env({flag: os.environ.get(flag, "")}).zero_gpu:
        return False
    try:
        import spaces  # noqa: F401 - on ZeroGPU it patches torch before CUDA is touched
    except ImportError:
        return False
    return True


def capped(seconds: float) -> int:
    """A duration ZeroGPU accepts: whole seconds, at least 1, at most MAX_SECONDS."""
    return max(1, min(MAX_SECONDS, math.ceil(seconds)))


def gpu(fn, duration):
    """fn as a `@spaces.GPU` function on ZeroGPU, each call's duration (seconds, capped at
    MAX_SECONDS) computed by duration(*args, **kwargs) from the call's own arguments; fn
    itself everywhere else. Call at import, so every GPU function exists before launch()."""
    if not active():
        return fn
    import spaces

    @functools.wraps(duration)
    def seconds(*args, **kwargs) -> int:
        return capped(duration(*args, **kwargs))

    return spaces.GPU(fn, duration=seconds)


# --- the duration rules ------------------------------------------------------------------
def model_billions(model: str) -> float:
    """Parameters of a base model in billions (unknown: FALLBACK_B, the call still gets a
    duration)."""
    from training.recipe import model_params

    params = model_params(model)
    return params / 1e9 if params else FALLBACK_B


def load_seconds(model: str, bytes_per_param: int = 2) -> float:
    """A fresh worker plus the model's weights read onto the GPU (bf16: 2 bytes each)."""
    return STARTUP_S + model_billions(model) * bytes_per_param * LOAD_S_PER_GB


def generation_seconds(model: str, new_tokens: int, rows: int = 1, batches: int = 1) -> float:
    """Load, then `batches` generate() calls of `rows` rows, each up to new_tokens steps."""
    step = DECODE_S_PER_STEP + DECODE_S_PER_B_PER_ROW * model_billions(model) * rows
    return load_seconds(model) + batches * new_tokens * step


def eval_seconds(
    model: str, rows: int, new_tokens: int, batch_size: int, prompted: int, alone: int = 0
):
    """An evaluation of `rows` held-out rows: base and tuned replies in one batch of
    2 x batch_size rows, the `prompted` baselines' replies (few-shot, retrieval: 0 to 2) in
    another, the loss of each side, and `alone` replies of one row each, timed."""
    chunks = math.ceil(rows / batch_size)
    replies = generation_seconds(model, new_tokens, 2 * batch_size, chunks * (1 + bool(prompted)))
    step = DECODE_S_PER_STEP + DECODE_S_PER_B_PER_ROW * model_billions(model)
    timed = alone * new_tokens * step
    return replies + timed + (2 + prompted) * math.ceil(rows / 4) * LOSS_S_PER_BATCH


def eval_rows_that_fit(
    model: str, new_tokens: int, batch_size: int, prompted: int, alone: int = 0
) -> int:
    """The most held-out rows one call evaluates (whole batches), 0 when not even one."""
    rows = 0
    while (
        eval_seconds(model, rows + batch_size, new_tokens, batch_size, prompted, alone)
        <= MAX_SECONDS
    ):
        rows += batch_size
    return rows


def merge_seconds(model: str) -> float:
    """Merging loads the base in fp32 (4 bytes per parameter), then saves as much."""
    return load_seconds(model, 4) + model_billions(model) * 4 * SAVE_S_PER_GB


# --- training: what fits in one call -------------------------------------------------------
@dataclass(frozen=True)
class TrainingPlan:
    seconds: int  # the GPU call's duration: set-up, the steps, saving (at most MAX_SECONDS)
    steps: int  # optimizer steps that fit in one call
    total_steps: int | None  # the steps the run asks for (None: unknown before its data is read)
    note: str  # what the Train tab and the run's status say, in plain words
    refusal: str | None = None  # why it cannot train here at all, with the alternative

    @property
    def capped(self) -> bool:
        return self.total_steps is None or self.steps < self.total_steps


def plan_training(cfg, stats: dict | None) -> TrainingPlan:
    """How much of this run (a RunConfig) one ZeroGPU call trains. stats: the data report's
    statistics (training/data); without them each example counts as max_length tokens."""
    from training.backends.preflight import data_figures, tokens_per_second

    billions = model_billions(cfg.model)
    examples, mean, _, _ = data_figures(cfg, stats or {})
    rows = (stats or {}).get("examples") or 0
    fixed = load_seconds(cfg.model) + PREPARE_S + rows / PREPARE_ROWS_PER_S + SAVE_S
    speed, _ = tokens_per_second(HARDWARE, int(billions * 1e9))
    step = TRAIN_SAFETY * cfg.batch_size * cfg.grad_accum * (mean or cfg.max_length) / speed
    fit = math.floor((MAX_SECONDS - fixed) / step) if fixed < MAX_SECONDS else 0
    total = cfg.max_steps if cfg.max_steps > 0 else None
    if total is None and examples and mean:
        per_epoch = math.ceil(math.ceil(examples / cfg.batch_size) / cfg.grad_accum)
        total = math.ceil(cfg.epochs * per_epoch)
    if fit < 1:
        what = f"a {billions:.1f} B model" if billions != FALLBACK_B else "this model"
        refusal = (
            f"On ZeroGPU a run is one GPU call of at most {MAX_SECONDS} s, and {what} needs "
            f"about {fixed:.0f} s just to load and save, with no time left to train. Pick a "
            f"smaller model, or duplicate this Space on a dedicated GPU to train this one."
        )
        return TrainingPlan(MAX_SECONDS, 0, total, refusal, refusal)
    steps = min(fit, total or fit)
    seconds = capped(fixed + steps * step)
    call = f"On ZeroGPU a run is one GPU call of at most {MAX_SECONDS} s"
    if total is None:
        note = f"{call}: about {steps:,} optimizer steps fit, so it stops there. {ALTERNATIVE}"
    elif steps < total:
        note = (
            f"{call}: about {steps:,} of this run's {total:,} steps fit (~{seconds} s), so it "
            f"stops there. {ALTERNATIVE}"
        )
    else:
        note = f"{call}: this one needs about {seconds} s."
    return TrainingPlan(seconds, steps, total, note)
