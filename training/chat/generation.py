"""The pieces of one batched generate() call in the chat engine: prompts rendered with the
chat template and left-padded, the stop tokens, rows routed to their adapters, a repetition
penalty blind to padding, per-row seeded sampling, and the streamer / cancel hooks generate()
calls every step."""

import contextlib
import queue
import threading
import time

END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


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
        from training.chat import cpu_decode

        with cpu_decode.row_adapters(model, row_names) as patched:
            yield {} if patched else {"adapter_names": row_names}
    else:
        yield {"adapter_names": row_names}


class RowStreamer:
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


class RowSampler:
    """Temperature + top-p sampling with one seeded generator per row. Returns scores where
    only the sampled token survives, so generate()'s greedy pick takes it."""

    def __init__(self, n: int, settings, device):  # settings: chat.Settings
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


class RepetitionPenalty:
    """transformers' repetition penalty (CTRL: a logit of a token already in the row divided by
    `penalty`, or multiplied when negative), blind to left padding: the pad token would be
    penalised in padded rows only, and a reply would then depend on what else is in the batch.
    Pad positions count as the row's first real token instead, which the row holds anyway."""

    def __init__(self, penalty: float, batch: dict):
        mask = batch["attention_mask"].bool()
        self.penalty, self.pad = penalty, ~mask
        first = mask.int().argmax(1, keepdim=True)  # left padding: the first 1 of each row
        self.fill = batch["input_ids"].gather(1, first).expand_as(mask)

    def __call__(self, input_ids, scores):
        import torch

        width = self.pad.shape[1]
        ids = input_ids.clone()
        ids[:, :width] = torch.where(self.pad, self.fill, ids[:, :width])
        seen = scores.gather(1, ids)
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores.scatter(1, ids, seen)


class Cancelled:
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
