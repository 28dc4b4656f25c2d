"""The playground's columns: which rows one prompt becomes (base, tuned, base + few-shot)
and what each row needs (its adapter, its few-shot turns, the run's tokenizer).

    plan = plan_columns(run, checkpoint, model, few_shot=True, k=3, owner=visitor)
    rows = plan.rows(histories)      # one chat.Row per column, for ChatEngine.stream

The evaluation uses the same few-shot turns and prompt/reference split, so the baseline a
user chats with is the one that is scored.
"""

import random
from dataclasses import dataclass, field
from pathlib import Path

from training.chat.engine import Row
from training.chat.generation import message_text
from training.jobs import runs

SIDES = {"base": "Base model", "tuned": "Tuned (your run)", "few_shot": "Base + few-shot examples"}


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
    chats = [e["messages"] for e in train if prompt_and_reference(e)]
    picked = random.Random(seed).sample(chats, min(k, len(chats)))
    return [
        {"role": m["role"], "content": message_text(m["content"])}
        for chat in picked
        for m in chat
        if m["role"] in ("user", "assistant")
    ]


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


@dataclass
class ColumnPlan:
    base_model: str
    columns: dict[str, Column]  # side (a key of SIDES) -> what it runs
    tokenizer_dir: Path | None = None  # the run's tokenizer; None: the base model's

    def rows(self, histories: dict[str, list[dict]]) -> list[Row]:
        """One engine row per column: its shots, then its own conversation so far."""
        return [Row(c.shots + histories[side], c.adapter) for side, c in self.columns.items()]


def plan_columns(
    run: str | None, checkpoint: str | None, model: str, few_shot: bool, k: int, owner: str = ""
) -> ColumnPlan:
    """No run: the base model alone (the picker's model). A run: its base model, base and
    tuned columns, and the few-shot column when asked. The run is checked for this visitor
    (ValueError otherwise)."""
    if not run:
        return ColumnPlan(model or "", {"base": Column()})
    path = runs.open(run, checkpoint, owner)
    cfg = runs.run_config(path)
    columns = {"base": Column(), "tuned": Column(runs.adapter_path(path, checkpoint))}
    if few_shot and k:
        train, _ = runs.run_examples(path)
        columns["few_shot"] = Column(shots=few_shot_turns(train, int(k), cfg.seed))
    return ColumnPlan(cfg.model, columns, runs.tokenizer_dir(path, checkpoint))
