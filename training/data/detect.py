"""Tell which format a data set is in, which columns hold what, and what else it is.

`detect_format(records, fmt=None, mapping=None)` looks at a sample of records and returns
a `Detection`: the format name, the mapping from each canonical field to the user's
column (e.g. `{"prompt": "question", "completion": "answer"}`), whether more than one
format fitted, and a sentence saying why. Users override either part: `fmt="alpaca"`, or a
mapping such as `{"prompt": "my_q", "completion": "my_a"}` (the format then follows).

Beyond the format, `kinds` names what the rows are for, in the words of TRL and
LLaMA-Factory, so the report can say what is trained:
- "preference": chosen/rejected pairs (DPO/ORPO data: TRL's prompt/chosen/rejected, its
  implicit-prompt chosen/rejected, LLaMA-Factory's ShareGPT `conversations` + `chosen` and
  `rejected` messages, OpenAI's `input`/`preferred_output`/`non_preferred_output`).
  Preference training is not supported; detection never picks the "preference" format
  itself (format None): the user chooses to train on the chosen replies.
- "kto": a true/false label per row (TRL's unpaired preference `label`, LLaMA-Factory's
  `kto_tag`), mapped as the field "label": only rows labelled true are trained.
- "tools": tool calls or definitions (see tools.py).
- "multimodal": image, video or audio columns; such rows are refused (text-only models).

Its length: the column tables of every format and kind (aliases, labels, media) and the rules
that read them are looked up together; split apart, each rule would need all the tables.
"""

import json
from dataclasses import asdict, dataclass, field

from .encoding import fix_escapes
from .report import FORMATS

# Canonical fields per format; the first ones are required, "system"/"input" are optional.
REQUIRED = {
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "output"),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
    "preference": ("chosen",),  # without a prompt, chosen is the whole conversation
}
OPTIONAL = {
    "messages": ("tools",),
    "sharegpt": ("system", "tools"),
    "alpaca": ("input", "system"),
    "prompt_completion": ("system",),
    "preference": ("prompt", "input", "system"),
}
# Column names accepted for each field, in order of preference (matched case-insensitively).
ALIASES = {
    "alpaca": {
        "instruction": ("instruction",),
        "input": ("input", "context"),
        "output": ("output", "response"),
        "system": ("system", "system_prompt"),
    },
    "prompt_completion": {"system": ("system", "system_prompt")},
    "messages": {"tools": ("tools", "functions")},
    "sharegpt": {"system": ("system", "system_prompt"), "tools": ("tools", "functions")},
    "preference": {
        "chosen": ("chosen", "preferred_output"),
        "prompt": ("prompt", "question", "instruction", "query", "conversations", "messages"),
        "input": ("input", "context"),
        "system": ("system", "system_prompt"),
        "rejected": ("rejected", "non_preferred_output"),  # recognised, never trained
    },
}
PAIRED = (("chosen", "rejected"), ("preferred_output", "non_preferred_output"))
LABELS = ("label", "kto_tag")  # a true/false column: KTO's desirable / undesirable reply
MEDIA = {"images": "an image", "image": "an image", "videos": "a video", "video": "a video"}
MEDIA |= {"audios": "audio", "audio": "audio"}
LABEL_FORMATS = ("messages", "sharegpt", "alpaca", "prompt_completion")
PAIRS = (
    ("prompt", "completion"),
    ("question", "answer"),
    ("prompt", "response"),
    ("input", "output"),
    ("query", "response"),
    ("question", "response"),
)
TEXT_COLUMNS = ("text", "content", "body", "document")
EXAMPLES = {  # for the "map it by hand" hint
    "messages": "dialog=messages",
    "sharegpt": "dialog=conversations",
    "alpaca": "task=instruction",
    "prompt_completion": "question_col=prompt",
    "text": "body=text",
    "preference": "better=chosen",
}
FORMAT_NAMES = {  # for people
    "messages": "chat messages (role/content)",
    "sharegpt": "ShareGPT conversations (from/value)",
    "alpaca": "Alpaca (instruction/input/output)",
    "prompt_completion": "prompt/completion pairs",
    "text": "plain text (language modelling)",
    "preference": "preference pairs, trained on the chosen replies",
}
FIELD_NAMES = {
    "messages": "conversation (list of messages)",
    "conversations": "conversation (list of turns)",
    "instruction": "instruction",
    "output": "answer (output)",
    "prompt": "prompt",
    "completion": "answer (completion)",
    "text": "text",
    "chosen": "chosen reply",
    "tools": "tool definitions",
    "label": "KTO label (true/false)",
    "input": "extra input (context)",
    "system": "system prompt",
}


@dataclass
class Detection:
    format: str | None  # one of FORMATS, None when nothing fitted
    mapping: dict[str, str] = field(default_factory=dict)  # canonical field -> source column
    ambiguous: bool = False  # more than one format fitted the sample
    candidates: list[str] = field(default_factory=list)  # every format that fitted, best first
    reason: str = ""  # one sentence for people
    missing: list[str] = field(default_factory=list)  # required fields with no column
    kinds: list[str] = field(default_factory=list)  # preference, kto, tools, multimodal

    def to_json(self) -> dict:
        return asdict(self)


def _as_list(value):
    """Conversation columns in CSV files hold JSON text: look inside it."""
    if isinstance(value, str) and value.lstrip()[:1] == "[":
        try:
            return fix_escapes(json.loads(value), value)[0]
        except (ValueError, RecursionError):
            return None
    return value


def _turn_style(records: list[dict], column: str) -> str | None:
    """'messages' if the column's turns use role/content, 'sharegpt' for from/value."""
    for record in records:
        turns = _as_list(record.get(column))
        if isinstance(turns, list):
            for turn in turns:
                if isinstance(turn, dict):
                    if "from" in turn or "value" in turn:
                        return "sharegpt"
                    if "role" in turn or "content" in turn:
                        return "messages"
    return None


def _columns(records: list[dict]) -> dict[str, str]:
    """lower-case name -> actual column name, over the sample, keeping first seen."""
    out: dict[str, str] = {}
    for record in records:
        for key in record:
            out.setdefault(str(key).strip().lower(), key)
    return out


def _present(records: list[dict], column: str) -> bool:
    """The column is there in at least half the sampled records."""
    return sum(column in r for r in records) * 2 >= len(records)


def _fill(fmt: str, records: list[dict], cols: dict[str, str], mapping: dict) -> dict:
    """Complete a mapping for `fmt` from the column names, keeping what the user gave."""
    out = dict(mapping)
    if fmt == "messages" and "messages" not in out:
        for name in ("messages", "conversations", "conversation", "dialog", "chat"):
            if name in cols:
                out["messages"] = cols[name]
                break
    elif fmt == "sharegpt" and "conversations" not in out:
        for name in ("conversations", "conversation", "messages"):
            if name in cols:
                out["conversations"] = cols[name]
                break
    elif fmt == "prompt_completion" and not {"prompt", "completion"} <= out.keys():
        for a, b in PAIRS:
            if a in cols and b in cols:
                out.setdefault("prompt", cols[a])
                out.setdefault("completion", cols[b])
                break
    elif fmt == "text" and "text" not in out:
        for name in TEXT_COLUMNS:
            if name in cols:
                out["text"] = cols[name]
                break
        else:
            only = next(iter(cols.values()), None)
            if len(cols) == 1 and all(isinstance(r.get(only), str) for r in records):
                out["text"] = only  # one column of strings: that is the text, whatever its name
    elif fmt == "preference" and "preferred_output" in cols:  # OpenAI: the prompt is "input"
        out.setdefault("chosen", cols["preferred_output"])
        out.setdefault("rejected", cols.get("non_preferred_output"))
        if "input" in cols:
            out.setdefault("prompt", cols["input"])
    for canonical, names in ALIASES.get(fmt, {}).items():
        if canonical not in out:
            for name in names:
                if name in cols and cols[name] not in out.values():
                    out[canonical] = cols[name]
                    break
    if fmt in LABEL_FORMATS and "label" not in out:
        for name in LABELS:
            if name in cols and _labels(records, cols[name]):
                out["label"] = cols[name]
                break
    return out


def _labels(records: list[dict], column: str) -> bool:
    """The column is KTO's label: true/false in most sampled rows that have it (the others
    are then errors on their rows, never silently trained)."""
    values = [r[column] for r in records if r.get(column) is not None]
    flags = sum(
        isinstance(v, bool) or (isinstance(v, str) and v.strip().lower() in ("true", "false"))
        for v in values
    )
    return flags * 2 > len(values)


def _preference(cols: dict[str, str]) -> list[str] | None:
    """The chosen and rejected columns, when the data is preference pairs."""
    for chosen, rejected in PAIRED:
        if chosen in cols and rejected in cols:
            return [cols[chosen], cols[rejected]]
    return None


def _kinds(records: list[dict], cols: dict[str, str], mapping: dict) -> tuple[list, list]:
    """(kinds, sentences for people) beyond the format: KTO labels, tool calls, media."""
    kinds, said = [], []
    if "label" in mapping:
        kinds.append("kto")
        said.append(
            f"Each row has a KTO label (column “{mapping['label']}”): rows labelled false "
            "(undesirable replies) are left out, and rows labelled true are trained as "
            "ordinary examples (KTO training itself is not supported yet)."
        )
    chat = mapping.get("messages") or mapping.get("conversations") or mapping.get("prompt")
    if "tools" in mapping or (chat and _tool_turns(records, chat)):
        kinds.append("tools")
        said.append(
            "The conversations use tools: they are trained with the model's chat template, "
            "which must support tools (Qwen2.5-Instruct's does, SmolLM2's does not)."
        )
    media = [c for name, c in cols.items() if name in MEDIA and any(r.get(c) for r in records)]
    if media:
        kinds.append("multimodal")
        said.append(
            f"Rows hold images, video or audio (column “{media[0]}”): this app trains "
            "text-only models, so those rows cannot be used."
        )
    return kinds, said


def _tool_turns(records: list[dict], column: str) -> bool:
    """Some sampled conversation calls a tool or holds a tool's result."""
    for record in records:
        turns = _as_list(record.get(column))
        if isinstance(turns, dict):  # OpenAI preference: {"messages": [...], "tools": [...]}
            turns = turns.get("messages")
        for turn in turns if isinstance(turns, list) else ():
            if isinstance(turn, dict) and (
                "tool_calls" in turn
                or "function_call" in turn
                or turn.get("role") in ("tool", "function")
                or turn.get("from") in ("function_call", "observation")
            ):
                return True
    return False


def _candidates(records: list[dict], cols: dict[str, str]) -> list[tuple[str, dict]]:
    found = []
    for name in ("messages", "conversations"):
        if name in cols and _present(records, cols[name]):
            style = _turn_style(records, cols[name])
            if style == "sharegpt":
                found.append(("sharegpt", {"conversations": cols[name]}))
            elif style == "messages" or name == "messages":
                found.append(("messages", {"messages": cols[name]}))
    if "instruction" in cols and ({"output", "response"} & cols.keys()):
        found.append(("alpaca", _fill("alpaca", records, cols, {})))
    mapping = _fill("prompt_completion", records, cols, {})
    if {"prompt", "completion"} <= mapping.keys() and "instruction" not in cols:
        found.append(("prompt_completion", mapping))
    mapping = _fill("text", records, cols, {})
    if "text" in mapping:
        found.append(("text", mapping))
    # keep each format once, in the priority order of FORMATS
    seen: dict[str, dict] = {}
    for fmt, mapping in found:
        seen.setdefault(fmt, {**_fill(fmt, records, cols, {}), **mapping})
    return sorted(seen.items(), key=lambda item: FORMATS.index(item[0]))


def _format_from_mapping(mapping: dict, records: list[dict]) -> str | None:
    keys = set(mapping)
    if "chosen" in keys:
        return "preference"
    if "messages" in keys:
        return "sharegpt" if _turn_style(records, mapping["messages"]) == "sharegpt" else "messages"
    if "conversations" in keys:
        return (
            "messages"
            if _turn_style(records, mapping["conversations"]) == "messages"
            else "sharegpt"
        )
    if keys & {"instruction", "output"}:
        return "alpaca"
    if keys & {"prompt", "completion"}:
        return "prompt_completion"
    if "text" in keys:
        return "text"
    return None


def detect_format(records: list, fmt: str | None = None, mapping: dict | None = None) -> Detection:
    """Decide the format from a sample of records (the first hundred or so)."""
    records = [r for r in records if isinstance(r, dict)]
    cols = _columns(records)
    listing = ", ".join(map(str, cols.values())) or "none"
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    if fmt is None and mapping:
        fmt = _format_from_mapping(mapping, records)
    if fmt is not None:
        # the user's words win; fix the usual mix-up of the two conversation formats
        if fmt == "sharegpt" and "messages" in mapping:
            mapping["conversations"] = mapping.pop("messages")
        if fmt == "messages" and "conversations" in mapping:
            mapping["messages"] = mapping.pop("conversations")
        full = _fill(fmt, records, cols, mapping)
        keys = {k for r in records for k in r}
        if records:  # a mapped column that is nowhere in the data is as good as none
            full = {f: c for f, c in full.items() if c in keys}
        missing = [f for f in REQUIRED[fmt] if f not in full]
        kinds, said = _kinds(records, cols, full)
        reason = " ".join([f"Read as {FORMAT_NAMES[fmt]}, as chosen{_used(full, ': ')}.", *said])
        return Detection(fmt, full, False, [fmt], reason, missing, kinds)
    pair = _preference(cols)
    if pair:
        full = _fill("preference", records, cols, {})
        kinds, said = _kinds(records, cols, full)
        reason = (
            f"These are preference pairs (chosen replies in “{pair[0]}”, rejected ones in "
            f"“{pair[1]}”), data for DPO or ORPO, which is not supported yet. To fine-tune on "
            "the chosen replies only, choose the format “Preference pairs: train on the chosen "
            "replies”."
        )
        return Detection(None, full, False, ["preference"], reason, [], ["preference", *kinds])
    found = _candidates(records, cols)
    if not found:
        return Detection(None, {}, False, [], f"No known layout fits the columns: {listing}.")
    (best, best_map), others = found[0], [f for f, _ in found[1:]]
    kinds, said = _kinds(records, cols, best_map)
    reason = f"Read as {FORMAT_NAMES[best]}{_used(best_map, ': ')}."
    if others:
        reason += f" It could also be read as {', '.join(FORMAT_NAMES[f] for f in others)}."
    reason = " ".join([reason, *said])
    return Detection(best, best_map, bool(others), [f for f, _ in found], reason, [], kinds)


def _used(mapping: dict, lead: str) -> str:
    """ "<lead>prompt from column “q”, ..." in plain words, or "" for no mapping."""
    used = ", ".join(f"{FIELD_NAMES.get(k, k)} from column “{c}”" for k, c in mapping.items())
    return lead + used if used else ""
