"""Chat engine: base and tuned replies from ONE loaded copy of the base model.

The engine loads a base model once and attaches run adapters (final or checkpoints) to it
under distinct names. A call to `stream()` takes several rows (e.g. base, tuned, base +
few-shot) and runs them as one batch: PEFT's `adapter_names=["__base__", "run_x", ...]`
routes each row through its own adapter (or none) inside the same forward pass, so both
columns stream at once for about the cost of one, and nothing is ever loaded twice.

Sampling is done per row with its own seeded torch.Generator (a logits processor that
samples and leaves only the chosen token for greedy selection): a row's random draws do
not depend on what else is in the batch, so "same seed" means the same stream for every side
and a base row reproduces a fresh base model exactly.

One lock guards the model: adapter state (active / disabled) is global to the model, and
the mixed batch already gives concurrency between sides; two generations at once on one
GPU or 2 vCPUs would only split the same compute. `free()` cancels the running generation,
drops the cache and returns the device memory before a training job starts.
"""

import contextlib
import gc
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training import rundir

END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


@dataclass
class Settings:
    temperature: float = 0.7  # 0 = greedy (deterministic)
    top_p: float = 0.9
    max_new_tokens: int = 256
    seed: int = 0
    system_prompt: str = ""
    min_new_tokens: int = 0  # benchmarks force equal lengths with this


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
    def __init__(self, device: str | None = None, dtype=None, max_adapters: int = 4):
        self.device, self.dtype, self.max_adapters = device, dtype, max_adapters
        self.lock = threading.Lock()
        self._loaded: _Loaded | None = None  # LRU of size 1: the one base model
        self._tokenizers: OrderedDict = OrderedDict()
        self._cancel = threading.Event()  # the running generation's cancel flag

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
            from training.models import load_model

            hw = detect()
            device = self.device or hw.device
            dtype = self.dtype or torch_dtype(hw.precision)
            model = load_model(
                name, dtype=dtype, device=device, trust_remote_code=trust_remote_code
            )
            self._loaded = _Loaded(name, model)
            self._cpu_decode(model)
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

    @staticmethod
    def _cpu_decode(model) -> None:
        if next(model.parameters()).device.type == "cpu":
            from training import cpu_decode

            cpu_decode.enable(model)

    def tokenizer(
        self, base_model: str, tokenizer_dir: Path | None = None, trust_remote_code: bool = False
    ):
        """The run's tokenizer (its adapter folder holds the inference chat template), else the
        base model's with ChatML added when it has no template. Left padding for batches."""
        key = (str(tokenizer_dir or ""), base_model)
        if key not in self._tokenizers:
            import copy

            from training.tokenize import ensure_chat_template

            if tokenizer_dir and (Path(tokenizer_dir) / "tokenizer_config.json").is_file():
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(
                    str(tokenizer_dir), trust_remote_code=trust_remote_code
                )
            else:
                from training.models import load_tokenizer

                tok = copy.deepcopy(load_tokenizer(base_model, trust_remote_code))
            ensure_chat_template(tok)
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
        settings = settings or Settings()
        events: queue.Queue = queue.Queue()
        cancel = threading.Event()
        args = (base_model, rows, settings, tokenizer_dir, trust_remote_code, events, cancel)
        worker = threading.Thread(target=self._run, args=args, daemon=True)
        worker.start()
        texts, ids = [""] * len(rows), [[] for _ in rows]
        stats = [ReplyStats() for _ in rows]
        done = [False] * len(rows)
        tok = None  # set by the "start" event; a generation cancelled before it never starts
        try:
            while True:
                kind, payload = events.get()
                if kind == "error":
                    raise payload
                if kind == "start":
                    tok, stop_ids, prompt_lens, t0 = payload
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
            cancel.set()  # the caller stopped reading (Stop button, closed page): stop generating
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
            do_sample=False,  # sampling happens per row in _RowSampler, which leaves one token
            eos_token_id=sorted(stop_ids),
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else min(stop_ids),
        )
        processors = LogitsProcessorList()
        if settings.temperature > 0:
            processors.append(_RowSampler(len(rows), settings, device))
        row_names = [by_path[r.adapter] if r.adapter else "__base__" for r in rows]
        with adapter_mode(model, row_names) as kwargs, torch.inference_mode():
            model.generate(
                **batch,
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
                streamer=_RowStreamer(events),
                **kwargs,
            )


@contextlib.contextmanager
def adapter_mode(model, row_names: list[str]):
    """Route each row to its adapter; yields extra generate() kwargs. All rows base: adapters
    disabled. All one adapter: that one active. Mixed on CPU: training/cpu_decode's row-masked
    LoRA. Mixed otherwise: PEFT routes each row by `adapter_names`."""
    unique = set(row_names)
    if not hasattr(model, "peft_config"):
        yield {}
    elif unique == {"__base__"}:
        with model.disable_adapter():
            yield {}
    elif len(unique) == 1:
        model.set_adapter(row_names[0], inference_mode=True)
        yield {}
    elif next(model.parameters()).device.type == "cpu":
        from training import cpu_decode

        with cpu_decode.row_adapters(model, row_names) as patched:
            yield {} if patched else {"adapter_names": row_names}
    else:
        yield {"adapter_names": row_names}


class _RowStreamer:
    """Receives each step's token per row from generate(); the first put is the prompt."""

    def __init__(self, events: queue.Queue):
        self.events, self.prompt_seen = events, False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.events.put(("tokens", (value.reshape(-1).tolist(), time.monotonic())))

    def end(self):
        self.events.put(("end", None))


class _RowSampler:
    """Temperature + top-p sampling with one seeded generator per row. Returns scores where
    only the sampled token survives, so generate()'s greedy pick takes it."""

    def __init__(self, n: int, settings: Settings, device):
        import torch

        self.temperature, self.top_p = settings.temperature, settings.top_p
        self.generators = [
            torch.Generator(device=device).manual_seed(settings.seed) for _ in range(n)
        ]

    def __call__(self, input_ids, scores):
        import torch

        scores = scores / self.temperature
        if self.top_p < 1:
            ordered, order = scores.sort(dim=-1, descending=True)
            cum = ordered.softmax(-1).cumsum(-1)
            drop = cum - ordered.softmax(-1) > self.top_p  # keep the smallest set reaching top_p
            scores = scores.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
        probs = scores.softmax(-1)
        out = torch.full_like(scores, float("-inf"))
        for i, gen in enumerate(self.generators):
            out[i, torch.multinomial(probs[i], 1, generator=gen)] = 0.0
        return out


class _Cancelled:
    def __init__(self, flag: threading.Event):
        self.flag = flag

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full(
            (input_ids.shape[0],), self.flag.is_set(), dtype=torch.bool, device=input_ids.device
        )


def with_system(messages: list[dict], system_prompt: str) -> list[dict]:
    plain = [{"role": m["role"], "content": message_text(m["content"])} for m in messages]
    if system_prompt.strip() and not (plain and plain[0]["role"] == "system"):
        plain.insert(0, {"role": "system", "content": system_prompt.strip()})
    return plain


def message_text(content) -> str:
    """Plain text of a message: gradio 6 sends content as a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return "" if content is None else str(content)


def encode_prompts(tok, conversations: list[list[dict]]) -> dict:
    """Render each conversation with the generation prompt; left-pad into one batch."""
    import torch

    texts = [
        tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(x) for x in ids)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
    return {"input_ids": input_ids, "attention_mask": mask}


def stop_token_ids(tok, model) -> set[int]:
    """EOS of tokenizer and model plus the known end-of-turn tokens the vocabulary has."""
    ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(configured if isinstance(configured, list) else [configured])
    vocab = tok.get_vocab()
    ids |= {vocab[m] for m in END_MARKERS if m in vocab}
    ids.discard(None)
    return ids


# --- the default engine shared by the app's tabs --------------------------------------
_ENGINE: ChatEngine | None = None
_ENGINE_LOCK = threading.Lock()


def get_engine() -> ChatEngine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = ChatEngine()
        return _ENGINE


def free() -> None:
    """Empty the app's model cache (JobRunner.before_start calls this before training)."""
    if _ENGINE is not None:
        _ENGINE.free()


# --- runs: what the engine talks to ---------------------------------------------------
def adapter_ready(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file() and any(folder.glob("adapter_model.*"))


def checkpoints(run_dir: Path) -> list[str]:
    """ "final" (the run's adapter) first when present, then checkpoints, newest first."""
    run_dir = Path(run_dir)
    found = [
        p.name
        for p in (run_dir / rundir.CHECKPOINTS).glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and adapter_ready(p)
    ]
    found.sort(key=lambda n: int(n.split("-")[-1]), reverse=True)
    return (["final"] if adapter_ready(run_dir / rundir.ADAPTER) else []) + found


def list_runs() -> list[Path]:
    """Runs with something to chat with (an adapter or a checkpoint), newest first."""
    from training.paths import runs_dir

    runs = [p for p in runs_dir().iterdir() if p.is_dir() and checkpoints(p)]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def adapter_path(run_dir: Path, checkpoint: str | None = "final") -> Path:
    run_dir = Path(run_dir)
    if checkpoint in (None, "", "final"):
        return run_dir / rundir.ADAPTER
    return run_dir / rundir.CHECKPOINTS / checkpoint


def run_config(run_dir: Path):
    from training.config import RunConfig

    return RunConfig.from_yaml(Path(run_dir) / rundir.CONFIG)


def _data_file(name: str, run_dir: Path) -> str:
    """config.yaml keeps the path as given to the worker: try it as is, then next to the run
    and the repository."""
    from training.paths import REPO_ROOT

    for candidate in (Path(name), Path(run_dir) / name, REPO_ROOT / name):
        if candidate.is_file():
            return str(candidate)
    raise ValueError(f"The run's data file {name} is no longer there; pass a data file instead.")


_SPLITS: dict = {}


def run_examples(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(train, validation) exactly as the worker split them (same file, fraction and seed)."""
    from training.data import load_examples, split_examples

    cfg = run_config(run_dir)
    key = (str(Path(run_dir).resolve()), cfg.to_yaml())
    if key not in _SPLITS:
        mapping = cfg.column_mapping or None
        examples = load_examples(_data_file(cfg.data, run_dir), fmt=cfg.format, mapping=mapping)
        if cfg.validation_file:
            val = load_examples(
                _data_file(cfg.validation_file, run_dir), fmt=cfg.format, mapping=mapping
            )
            _SPLITS[key] = (examples, val)
        else:
            _SPLITS[key] = split_examples(examples, cfg.validation_split, cfg.seed)
    return _SPLITS[key]


def prompt_and_reference(example: dict) -> tuple[list[dict], str] | None:
    """The conversation up to its last assistant turn, and that turn's text (None: no turn)."""
    messages = example.get("messages") or []
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        return None
    prompt = [{"role": m["role"], "content": message_text(m["content"])} for m in messages[:last]]
    return prompt, message_text(messages[last]["content"])


def few_shot_turns(train: list[dict], k: int, seed: int = 0) -> list[dict]:
    """k training conversations as prior user/assistant turns (system messages left out):
    the prompt-engineering baseline. Deterministic for a given seed."""
    import random

    chats = [e["messages"] for e in train if prompt_and_reference(e)]
    picked = random.Random(seed).sample(chats, min(k, len(chats)))
    return [
        {"role": m["role"], "content": message_text(m["content"])}
        for chat in picked
        for m in chat
        if m["role"] in ("user", "assistant")
    ]
