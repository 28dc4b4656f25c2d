"""The playground's columns: which rows one prompt becomes (base, tuned, base + few-shot,
base + retrieved examples) and what each row needs (its adapter, its example turns, the
run's tokenizer).

    plan = plan_columns(run, checkpoint, model, few_shot=True, k=3, owner=visitor)
    rows = plan.rows(histories)      # one chat.Row per column, for ChatEngine.stream

Two baselines put training conversations before the prompt as earlier turns: few-shot, k of
them picked at random once per run (seeded), and retrieval, the k most like the question
(BM25 over the training split's user turns, `Retriever`), picked again for every question,
the most alike last, next to the question. The evaluation uses the same turns and the same
prompt/reference split, so the baselines a user chats with are the ones that are scored.
"""

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from training.chat.engine import Row
from training.chat.generation import message_text
from training.jobs import runs

SIDES = {
    "base": "Base model",
    "tuned": "Tuned (your run)",
    "few_shot": "Base + few-shot examples",
    "retrieval": "Base + retrieved examples",
}


def prompt_and_reference(example: dict) -> tuple[list[dict], str] | None:
    """The conversation up to its last assistant turn, and that turn's text (None: no turn)."""
    messages = example.get("messages") or []
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        return None
    prompt = [{"role": m["role"], "content": message_text(m["content"])} for m in messages[:last]]
    return prompt, message_text(messages[last]["content"])


def example_turns(chats: list[list[dict]]) -> list[dict]:
    """Training conversations as prior user/assistant turns (system messages left out)."""
    return [
        {"role": m["role"], "content": message_text(m["content"])}
        for chat in chats
        for m in chat
        if m["role"] in ("user", "assistant")
    ]


def few_shot_turns(train: list[dict], k: int, seed: int = 0) -> list[dict]:
    """k training conversations as prior turns: the prompt-engineering baseline.
    Deterministic for a given seed."""
    chats = [e["messages"] for e in train if prompt_and_reference(e)]
    return example_turns(random.Random(seed).sample(chats, min(k, len(chats))))


def _asked(messages: list[dict]) -> str:
    return " ".join(message_text(m["content"]) for m in messages if m["role"] == "user")


def _same(messages: list[dict]) -> tuple:
    return tuple((m["role"], " ".join(message_text(m["content"]).split())) for m in messages)


class Retriever:
    """BM25 over the user turns of a training split; `turns` gives the k conversations most
    like a question's last user turn as prior turns. Building reads each row once (a quarter
    of a second for 10,000 rows) and a lookup takes about half a millisecond there
    (bench/retrieval.py): cheap enough to build per run and to run per message."""

    def __init__(self, train: list[dict]):
        import bm25s

        self.chats = [e["messages"] for e in train if prompt_and_reference(e)]
        self.keys = [_same(chat) for chat in self.chats]
        tokens = bm25s.tokenize(
            [_asked(c) for c in self.chats], stopwords="en", show_progress=False
        )
        self.bm25 = None  # no word to index (no rows, or only stop words): the first k rows
        if tokens.vocab:
            self.bm25 = bm25s.BM25()
            self.bm25.index(tokens, show_progress=False)

    def nearest(self, messages: list[dict], k: int, leave_out: dict | None = None) -> list[int]:
        """Indices into `chats` of the k best matches for the last user turn, best first;
        never a conversation equal to `leave_out` (the held-out row being answered)."""
        import bm25s
        import numpy as np

        asked = next((m for m in reversed(messages) if m["role"] == "user"), None)
        words = bm25s.tokenize(
            _asked([asked] if asked else []), stopwords="en", return_ids=False, show_progress=False
        )[0]
        scores = np.zeros(len(self.chats))
        if self.bm25 is not None and words:
            scores = self.bm25.get_scores(words)
        skip = _same(leave_out["messages"]) if leave_out else None
        picked = []
        for i in np.argsort(-scores, kind="stable"):  # equal scores: file order
            if len(picked) == k:
                break
            if self.keys[i] != skip:
                picked.append(int(i))
        return picked

    def turns(self, messages: list[dict], k: int, leave_out: dict | None = None) -> list[dict]:
        """The k nearest conversations as prior turns, the best match last (next to the question)."""
        picked = self.nearest(messages, k, leave_out)
        return example_turns([self.chats[i] for i in reversed(picked)])


_RETRIEVERS: OrderedDict = OrderedDict()  # (run folder, config) -> Retriever, a few runs


def run_retriever(run_dir: Path) -> Retriever:
    """The retriever over a run's training split, exactly as the worker split it; built once
    per run and config, kept for the last few runs."""
    key = (str(Path(run_dir).resolve()), runs.run_config(run_dir).to_yaml())
    if key not in _RETRIEVERS:
        _RETRIEVERS[key] = Retriever(runs.run_examples(run_dir)[0])
        while len(_RETRIEVERS) > 4:
            _RETRIEVERS.popitem(last=False)
    _RETRIEVERS.move_to_end(key)
    return _RETRIEVERS[key]


def example_prompts(run: Path | None, limit: int = 50) -> list[str]:
    """Last user turns of the run's validation split (the rows it did not train on)."""
    if run is None:
        return []
    _, val = runs.run_examples(run)
    prompts = [p[0][-1]["content"] for e in val if (p := prompt_and_reference(e))]
    return list(dict.fromkeys(prompts))[:limit]


@dataclass
class Column:
    adapter: Path | None = None  # None: the base model
    shots: list[dict] = field(default_factory=list)  # few-shot turns put before the chat
    retriever: Retriever | None = None  # retrieved turns put before the chat, per question
    k: int = 0  # how many conversations the retriever puts there

    def messages(self, history: list[dict]) -> list[dict]:
        if self.retriever:
            return self.retriever.turns(history, self.k) + history
        return self.shots + history


@dataclass
class ColumnPlan:
    base_model: str
    columns: dict[str, Column]  # side (a key of SIDES) -> what it runs
    tokenizer_dir: Path | None = None  # the run's tokenizer; None: the base model's

    def rows(self, histories: dict[str, list[dict]]) -> list[Row]:
        """One engine row per column: its example turns, then its own conversation so far."""
        return [Row(c.messages(histories[side]), c.adapter) for side, c in self.columns.items()]


def plan_columns(
    run: str | None,
    checkpoint: str | None,
    model: str,
    few_shot: bool,
    k: int,
    owner: str = "",
    retrieval: bool = False,
) -> ColumnPlan:
    """No run: the base model alone (the picker's model). A run: its base model, base and
    tuned columns, and the few-shot and retrieval columns when asked. The run is checked for
    this visitor (ValueError otherwise)."""
    if not run:
        return ColumnPlan(model or "", {"base": Column()})
    path = runs.open(run, checkpoint, owner)
    cfg = runs.run_config(path)
    columns = {"base": Column(), "tuned": Column(runs.adapter_path(path, checkpoint))}
    if few_shot and k:
        train, _ = runs.run_examples(path)
        columns["few_shot"] = Column(shots=few_shot_turns(train, int(k), cfg.seed))
    if retrieval and k:
        columns["retrieval"] = Column(retriever=run_retriever(path), k=int(k))
    return ColumnPlan(cfg.model, columns, runs.tokenizer_dir(path, checkpoint))
