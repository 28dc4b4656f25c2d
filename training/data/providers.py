"""What OpenAI and Azure OpenAI accept for supervised fine-tuning: one table of models and
limits, OpenAI's rule for the default number of epochs, and an example in their form.

Both take the same chat JSONL, one `{"messages": [...], "tools": [...]}` per line: roles
system, user, assistant and tool (an assistant turn may carry `tool_calls` in OpenAI's form
and then no content), `weight` 0 or 1 on assistant turns, at least one assistant turn per
example, no empty content. Where they differ, and what is encoded here:
- model names: OpenAI `gpt-3.5-turbo-0125`, Azure `gpt-35-turbo-0125`; the rest are named
  alike (`gpt-4o-mini-2024-07-18`, `gpt-4.1-mini-2025-04-14`, ...); a short name such as
  `gpt-4.1-mini` means the dated snapshot listed;
- Azure asks for UTF-8 with a byte-order mark, so its file starts with one;
- Azure caps a job at 2 billion tokens (tokens in the file x epochs); OpenAI publishes no
  such cap for these models today, so none is checked.

Every figure is in the one table below, with its source and the date it was read; figures
that could not be checked against the provider's own page say so.
"""

import json
from dataclasses import dataclass

MB = 1 << 20


@dataclass(frozen=True)
class TargetModel:
    name: str  # the base model id a fine-tuning job takes
    encoding: str  # tiktoken encoding of its tokenizer
    example_tokens: int  # the most tokens one training example may hold
    alias: str = ""  # the short name that means this snapshot


@dataclass(frozen=True)
class Provider:
    label: str  # how the report names it
    min_examples: int  # a job will not start with fewer training examples
    max_file_bytes: int  # largest training file one upload takes
    max_job_tokens: int | None  # tokens in the file x epochs, at most (None: no published cap)
    bom: bool  # the file starts with a UTF-8 byte-order mark
    default_model: str
    models: tuple[TargetModel, ...]


# fmt: off
# Sources, read 2026-12-02:
# - OpenAI: fine-tuning guide and Files API reference (training files up to 512 MB, at least
#   10 examples; gpt-4o and gpt-4o-mini train on up to 65,536 tokens per example,
#   gpt-3.5-turbo-0125 on 16,385); "Data preparation and analysis for chat model
#   fine-tuning" cookbook for the token counts and the epoch rule. The gpt-4.1 family's
#   per-example limits could not be checked on OpenAI's own pages here: they are Azure's
#   figures for the same snapshots.
# - Azure OpenAI: "Customize a model with fine-tuning" (JSONL in UTF-8 with a BOM, under
#   512 MB, at least 10 training examples), the fine-tuning models table ("Training example
#   context length": 65,536; gpt-4.1-nano 32,768; gpt-35-turbo 0125 16,385) and "quotas and
#   limits" (max training job size, tokens in training file x epochs: 2 billion).
PROVIDERS: dict[str, Provider] = {
    "openai": Provider("OpenAI", 10, 512 * MB, None, False, "gpt-4o-mini-2024-07-18", (
        TargetModel("gpt-4o-mini-2024-07-18", "o200k_base", 65_536, "gpt-4o-mini"),
        TargetModel("gpt-4o-2024-08-06", "o200k_base", 65_536, "gpt-4o"),
        TargetModel("gpt-4.1-2025-04-14", "o200k_base", 65_536, "gpt-4.1"),
        TargetModel("gpt-4.1-mini-2025-04-14", "o200k_base", 65_536, "gpt-4.1-mini"),
        TargetModel("gpt-4.1-nano-2025-04-14", "o200k_base", 32_768, "gpt-4.1-nano"),
        TargetModel("gpt-3.5-turbo-0125", "cl100k_base", 16_385, "gpt-3.5-turbo"),
    )),
    "azure": Provider("Azure OpenAI", 10, 512 * MB, 2_000_000_000, True, "gpt-4o-mini-2024-07-18", (
        TargetModel("gpt-4o-mini-2024-07-18", "o200k_base", 65_536, "gpt-4o-mini"),
        TargetModel("gpt-4o-2024-08-06", "o200k_base", 65_536, "gpt-4o"),
        TargetModel("gpt-4.1-2025-04-14", "o200k_base", 65_536, "gpt-4.1"),
        TargetModel("gpt-4.1-mini-2025-04-14", "o200k_base", 65_536, "gpt-4.1-mini"),
        TargetModel("gpt-4.1-nano-2025-04-14", "o200k_base", 32_768, "gpt-4.1-nano"),
        TargetModel("gpt-35-turbo-0125", "cl100k_base", 16_385, "gpt-35-turbo"),
    )),
}
# fmt: on

# OpenAI's default epochs, as the cookbook computes them: aim at 3 passes, but see at least
# 100 and at most 25,000 examples in all, within 1..25 epochs.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES = 100, 25_000
MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS = 1, 25


def find_model(target: str, model: str | None = None) -> tuple[Provider, TargetModel]:
    """The provider and model named; ValueError with the choices when either is unknown."""
    if target not in PROVIDERS:
        raise ValueError(f"Unknown target “{target}”; choose one of: {', '.join(PROVIDERS)}.")
    provider = PROVIDERS[target]
    wanted = model or provider.default_model
    for m in provider.models:
        if wanted in (m.name, m.alias):
            return provider, m
    names = ", ".join(m.name for m in provider.models)
    raise ValueError(f"{provider.label} cannot fine-tune “{wanted}” here; choose one of: {names}.")


def default_epochs(n_train: int) -> int:
    """The epochs OpenAI picks by default for n_train examples (the cookbook's rule, with
    its floor divisions: 30 examples give 100 // 30 = 3 epochs)."""
    if n_train <= 0:
        return TARGET_EPOCHS
    if n_train * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_train)
    if n_train * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_train)
    return TARGET_EPOCHS


def billed_tokens(lengths, limit: int, epochs: int) -> int:
    """Tokens a job is billed for: each example up to the model's limit, times epochs."""
    return epochs * sum(min(n, limit) for n in lengths)


def provider_record(example: dict) -> tuple[dict, list[tuple[str, dict]]]:
    """A normalised chat example in the providers' form, and (code, details) of what had
    to change or cannot be exported. Calls without an id get one; a tool result without a
    tool_call_id answers the earliest call still unanswered."""
    messages, issues, pending, n_calls = [], [], [], 0
    for i, m in enumerate(example["messages"], 1):
        role, out = m["role"], {"role": m["role"]}
        if m.get("tool_calls"):
            calls = []
            for call in m["tool_calls"]:
                n_calls += 1
                fn = call["function"]
                arguments = json.dumps(fn["arguments"], ensure_ascii=False)
                calls.append(
                    {
                        "id": call.get("id") or f"call_{n_calls}",
                        "type": "function",
                        "function": {"name": fn["name"], "arguments": arguments},
                    }
                )
            pending = [c["id"] for c in calls]
            if m["content"]:
                out["content"] = m["content"]
            out["tool_calls"] = calls
        else:
            out["content"] = m["content"]
        if role == "tool":
            call_id = m.get("tool_call_id") or (pending[0] if pending else None)
            if call_id is None:
                issues.append(("provider_orphan_tool_result", {"index": i}))
                continue
            if call_id in pending:
                pending.remove(call_id)
            out["tool_call_id"] = call_id
        if "weight" in m:
            if role == "assistant":
                out["weight"] = m["weight"]
            else:
                issues.append(("provider_weight_dropped", {"index": i, "role": role}))
        messages.append(out)
    record = {"messages": messages}
    if example.get("tools"):
        record["tools"] = example["tools"]
    return record, issues
