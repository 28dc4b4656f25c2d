"""Chat engine: base and tuned replies from ONE loaded copy of the base model.

The engine loads a base model once and attaches run adapters (final or checkpoints) to it
under distinct names. A call to `stream()` takes several rows (e.g. base, tuned, base +
few-shot) and runs them as one batch: PEFT's `adapter_names=["__base__", "run_x", ...]`
routes each row through its own adapter (or none) inside the same forward pass, so both
columns stream at once for about the cost of one, and nothing is ever loaded twice. On CPU,
training/chat/cpu_decode.py does that routing with a per-row mask, and a model is measured
once when it loads: each batch size takes whichever of the stock and the W·xᵀ products ran
a decoding step quicker on this machine (the decision is kept per model, across free()).
The batch's pieces (prompts, stop tokens, sampler, streamer) are in training/chat/generation.py;
which runs and checkpoints exist is training/jobs/runs.py.

Sampling is done per row with its own seeded torch.Generator (a logits processor that
samples and leaves only the chosen token for greedy selection): a row's random draws do
not depend on what else is in the batch, so "same seed" means the same stream for every side
and a base row reproduces a fresh base model exactly.

One lock guards the model: adapter state (active / disabled) is global to the model, and
the mixed batch already gives concurrency between sides; two generations at once on one
GPU or 2 vCPUs would only split the same compute. `free()` cancels the running generation,
drops the cache and returns the device memory before a training job starts.

On ZeroGPU (training/zerogpu.py) the GPU exists only inside `@spaces.GPU` calls, which run in
spaces' worker process: the app's engine then loads no model and sends each batch to
`_stream_on_gpu`, where `device_engine()` holds the model between calls, and streams the
events back (the tokenizer stays behind: the app decodes with its own copy).

Its length: model cache, adapter routing and the streaming batch loop share one lock and one
batch; split, each piece would need the others' internals.
"""

import gc
import logging
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training import zerogpu
from training.chat.generation import (
    Cancelled,
    RepetitionPenalty,
    RowSampler,
    RowStreamer,
    adapter_mode,
    encode_prompts,
    stop_token_ids,
    with_system,
)
from training.models.catalogue import chat_tokenizer

log = logging.getLogger(__name__)


@dataclass
class Settings:
    temperature: float = 0.7  # 0 = greedy (deterministic)
    top_p: float = 0.9
    max_new_tokens: int = 256
    seed: int = 0
    system_prompt: str = ""
    min_new_tokens: int = 0  # benchmarks force equal lengths with this
    repetition_penalty: float = 1.0  # >1 makes tokens already in the chat less likely; 1 = off


# The playground's starting values, a small diff of the above. 128 new tokens: a base model
# that never says its end-of-turn token otherwise rambles to the limit, and every column
# waits for the longest. 1.1: the usual mild penalty (CTRL's paper used 1.2) that stops small
# models looping on a phrase. Evaluation keeps the plain defaults: greedy, no penalty.
PLAYGROUND = Settings(max_new_tokens=128, repetition_penalty=1.1)


@dataclass
class Row:
    messages: list[dict]  # the conversation, ending with the user turn to answer
    adapter: Path | None = None  # an adapter folder, or None for the base model


@dataclass
class ReplyStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0  # reply tokens, the end-of-turn token not counted
    latency_s: float = 0.0  # from the start of the batch to this row's last token
    first_token_s: float = 0.0


@dataclass
class Event:
    row: int
    text: str  # new text since the previous event of this row
    done: bool = False
    stats: ReplyStats | None = None


@dataclass
class Reply:
    text: str
    stats: ReplyStats = field(default_factory=ReplyStats)


@dataclass
class _Loaded:
    name: str
    model: object  # a transformers model, wrapped in a PeftModel once an adapter is attached
    adapters: "OrderedDict[tuple, str]" = field(
        default_factory=OrderedDict
    )  # (path, mtime) -> name


class ChatEngine:
    def __init__(
        self,
        device: str | None = None,
        dtype=None,
        max_adapters: int = 4,
        zero_gpu: bool | None = None,
    ):
        self.device, self.dtype, self.max_adapters = device, dtype, max_adapters
        # Send each batch to a @spaces.GPU call (default: on ZeroGPU) instead of loading here.
        self.zero_gpu = zerogpu.active() if zero_gpu is None else zero_gpu
        self.lock = threading.Lock()
        self._loaded: _Loaded | None = None  # LRU of size 1: the one base model
        self._tokenizers: OrderedDict = OrderedDict()
        self._cancel = threading.Event()  # the running generation's cancel flag
        # (model, dtype, threads) -> cpu_decode.Choice: which path each batch size takes on
        # CPU, measured when that model first loads
        self.cpu_choices: dict[tuple, object] = {}

    # --- cache ------------------------------------------------------------------------
    def loaded(self) -> dict:
        """What is in memory: {"base": name | None, "adapters": [names]}."""
        held = self._loaded
        return {
            "base": held.name if held else None,
            "adapters": list(held.adapters.values()) if held else [],
        }

    def free(self) -> None:
        """Stop the running generation, drop every loaded model, give the memory back."""
        self._cancel.set()
        with self.lock:
            self._loaded = None
            self._tokenizers.clear()
            gc.collect()
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _base(self, name: str, trust_remote_code: bool):
        if self._loaded is None or self._loaded.name != name:
            self._loaded = None  # evict first: never two base models in memory at once
            gc.collect()
            from training.hardware import detect, torch_dtype
            from training.models.catalogue import load_model

            hw = detect()
            device = self.device or hw.device
            dtype = self.dtype or torch_dtype(hw.precision)
            model = load_model(
                name, dtype=dtype, device=device, trust_remote_code=trust_remote_code
            )
            self._loaded = _Loaded(name, model)
            self._cpu_decode(name, model)
        return self._loaded

    def _adapter(self, held: _Loaded, path: Path) -> str:
        """Attach an adapter folder (once per version on disk); return its adapter name."""
        path = Path(path).resolve()
        key = (str(path), (path / "adapter_config.json").stat().st_mtime_ns)
        if key in held.adapters:
            held.adapters.move_to_end(key)
            return held.adapters[key]
        from peft import PeftModel

        # Module names cannot hold dots: a readable slug plus a counter keeps names unique.
        name = (
            f"a{len(held.adapters)}_{time.monotonic_ns() % 10**8}_"
            + re.sub(r"\W", "_", path.parent.name if path.name == "adapter" else path.name)[:40]
        )
        if isinstance(held.model, PeftModel):
            held.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        else:
            held.model = PeftModel.from_pretrained(
                held.model, str(path), adapter_name=name, is_trainable=False
            )
        held.model.eval()
        held.adapters[key] = name
        for stale in [k for k in held.adapters if k[0] == key[0] and k != key]:
            held.model.delete_adapter(held.adapters.pop(stale))  # re-saved on disk: old version out
        while len(held.adapters) > self.max_adapters:
            _, oldest = held.adapters.popitem(last=False)
            held.model.delete_adapter(oldest)
        return name

    def _cpu_decode(self, name: str, model) -> None:
        """On CPU: each batch size decodes on the path measured quicker for this model."""
        weight = next(model.parameters())
        if weight.device.type != "cpu":
            return
        import torch

        from training.chat import cpu_decode

        key = (name, weight.dtype, torch.get_num_threads())
        if key not in self.cpu_choices:
            choice = cpu_decode.choose(model)
            log.info("CPU decoding for %s: %s", name, choice.summary() or "stock (no large layer)")
            self.cpu_choices[key] = choice
        cpu_decode.enable(model, self.cpu_choices[key].rows)

    def tokenizer(
        self, base_model: str, tokenizer_dir: Path | None = None, trust_remote_code: bool = False
    ):
        """The run's tokenizer (its adapter folder holds the inference chat template), else the
        base model's with ChatML added when it has no template. Left padding for batches."""
        key = (str(tokenizer_dir or ""), base_model)
        if key not in self._tokenizers:
            tok = chat_tokenizer(base_model, trust_remote_code, saved=tokenizer_dir)
            tok.padding_side = "left"
            self._tokenizers[key] = tok
            while len(self._tokenizers) > 8:
                self._tokenizers.popitem(last=False)
        return self._tokenizers[key]

    def model(self, base_model: str, adapters: list[Path] = (), trust_remote_code: bool = False):
        """(model, [adapter names]) with the adapters attached; call while holding `lock`."""
        held = self._base(base_model, trust_remote_code)
        names = [self._adapter(held, p) for p in adapters]
        return held.model, names

    # --- generation ---------------------------------------------------------------------
    def stream(
        self,
        base_model: str,
        rows: list[Row],
        settings: Settings | None = None,
        tokenizer_dir: Path | None = None,
        trust_remote_code: bool = False,
    ) -> Iterator[Event]:
        """Generate a reply for every row in one batch; yield text deltas as tokens arrive."""
        request = (base_model, rows, settings or Settings(), tokenizer_dir, trust_remote_code)
        source = _stream_on_gpu(*request) if self.zero_gpu else self._events(*request)
        texts, ids = [""] * len(rows), [[] for _ in rows]
        stats = [ReplyStats() for _ in rows]
        done = [False] * len(rows)
        tok = None  # set by the "start" event; a generation cancelled before it never starts
        try:
            for kind, payload in source:
                if kind == "error":
                    raise payload
                if kind == "start":
                    tok, stop_ids, prompt_lens, t0 = payload
                    tok = tok or self.tokenizer(base_model, tokenizer_dir, trust_remote_code)
                    for s, n in zip(stats, prompt_lens, strict=True):
                        s.prompt_tokens = n
                    continue
                if kind == "end":
                    for i in range(len(rows)):
                        if not done[i]:
                            yield Event(i, self._rest(tok, ids[i], texts[i]), True, stats[i])
                    return
                tokens, t = payload
                for i, token in enumerate(tokens):
                    if done[i]:
                        continue
                    s = stats[i]
                    s.first_token_s = s.first_token_s or t - t0
                    s.latency_s = t - t0
                    if token in stop_ids:
                        done[i] = True
                        yield Event(i, self._rest(tok, ids[i], texts[i]), True, s)
                        continue
                    ids[i].append(token)
                    s.generated_tokens += 1
                    text = tok.decode(ids[i], skip_special_tokens=True)
                    if text.endswith("\ufffd"):
                        continue  # half a multi-byte character: wait for the rest
                    delta, texts[i] = text[len(texts[i]) :], text
                    if delta:
                        yield Event(i, delta)
        finally:
            source.close()  # the caller stopped reading (Stop button, closed page): stop generating

    def _events(self, base_model, rows, settings, tokenizer_dir, trust_remote_code):
        """The generation's events, ("start" | "tokens" | "end" | "error", payload), from a
        thread of its own; closing this generator cancels it."""
        events: queue.Queue = queue.Queue()
        cancel = threading.Event()
        args = (base_model, rows, settings, tokenizer_dir, trust_remote_code, events, cancel)
        worker = threading.Thread(target=self._run, args=args, daemon=True)
        worker.start()
        try:
            while True:
                event = events.get()
                yield event
                if event[0] in ("end", "error"):
                    return
        finally:
            cancel.set()
            worker.join(timeout=10)  # at most one decoding step

    @staticmethod
    def _rest(tok, ids: list[int], shown: str) -> str:
        """Text not yet shown (a held-back partial character at the very end)."""
        return tok.decode(ids, skip_special_tokens=True)[len(shown) :] if tok and ids else ""

    def generate(
        self, base_model: str, rows: list[Row], settings: Settings | None = None, **kw
    ) -> list[Reply]:
        """Like stream(), collected: one Reply per row."""
        replies = [Reply("") for _ in rows]
        for ev in self.stream(base_model, rows, settings, **kw):
            replies[ev.row].text += ev.text
            if ev.stats:
                replies[ev.row].stats = ev.stats
        return replies

    def _run(self, base_model, rows, settings, tokenizer_dir, trust_remote_code, events, cancel):
        try:
            with self.lock:
                self._cancel = cancel
                if cancel.is_set():
                    return events.put(("end", None))
                self._generate(
                    base_model, rows, settings, tokenizer_dir, trust_remote_code, events, cancel
                )
        except Exception as exc:  # the reader re-raises it in its own thread
            events.put(("error", exc))

    def _generate(
        self, base_model, rows, settings, tokenizer_dir, trust_remote_code, events, cancel
    ):
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        adapters = list(dict.fromkeys(r.adapter for r in rows if r.adapter))
        model, names = self.model(base_model, adapters, trust_remote_code)
        by_path = dict(zip(adapters, names, strict=True))
        tok = self.tokenizer(base_model, tokenizer_dir, trust_remote_code)
        t0 = time.monotonic()
        batch = encode_prompts(tok, [with_system(r.messages, settings.system_prompt) for r in rows])
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        stop_ids = stop_token_ids(tok, model)
        events.put(("start", (tok, stop_ids, batch["attention_mask"].sum(1).tolist(), t0)))
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            min_new_tokens=settings.min_new_tokens or None,
            do_sample=False,  # sampling happens per row in RowSampler, which leaves one token
            eos_token_id=sorted(stop_ids),
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else min(stop_ids),
        )
        processors = LogitsProcessorList()
        if settings.repetition_penalty != 1:
            processors.append(RepetitionPenalty(settings.repetition_penalty, batch))
        if settings.temperature > 0:
            processors.append(RowSampler(len(rows), settings, device))
        row_names = [by_path[r.adapter] if r.adapter else "__base__" for r in rows]
        with adapter_mode(model, row_names) as kwargs, torch.inference_mode():
            model.generate(
                **batch,
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=StoppingCriteriaList([Cancelled(cancel)]),
                streamer=RowStreamer(events),
                **kwargs,
            )


# --- ZeroGPU: the model lives in spaces' worker process ----------------------------------
_device_engine: ChatEngine | None = None


def device_engine() -> ChatEngine:
    """The engine where the GPU is: on ZeroGPU, one per spaces worker process, keeping its
    model between the calls that process serves."""
    global _device_engine
    if _device_engine is None:
        _device_engine = ChatEngine(zero_gpu=False)
    return _device_engine


def _stream_in_worker(base_model, rows, settings, tokenizer_dir, trust_remote_code):
    """Inside the GPU call: device_engine()'s events, each pickled back to the app; the
    tokenizer stays here (the app decodes with its own copy)."""
    events = device_engine()._events(base_model, rows, settings, tokenizer_dir, trust_remote_code)
    try:
        for kind, payload in events:
            yield kind, ((None, *payload[1:]) if kind == "start" else payload)
    finally:
        events.close()  # the app stopped reading: stop generating


def _chat_seconds(base_model, rows, settings, tokenizer_dir=None, trust_remote_code=False):
    return zerogpu.generation_seconds(base_model, settings.max_new_tokens, rows=len(rows))


_stream_on_gpu = zerogpu.gpu(_stream_in_worker, duration=_chat_seconds)
