"""Tell which of the five formats a data set is in, and which columns hold what.

`detect_format(records, fmt=None, mapping=None)` looks at a sample of records and returns
a `Detection`: the format name, the mapping from each canonical field to the user's
column (e.g. `{"prompt": "question", "completion": "answer"}`), whether more than one
format fitted, and a sentence saying why. Users override either part: `fmt="alpaca"`, or a
mapping such as `{"prompt": "my_q", "completion": "my_a"}` (the format then follows).
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
}
OPTIONAL = {
    "sharegpt": ("system",),
    "alpaca": ("input", "system"),
    "prompt_completion": ("system",),
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
    "sharegpt": {"system": ("system", "system_prompt")},
}
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
}
FIELD_NAMES = {
    "messages": "conversation (list of messages)",
    "conversations": "conversation (list of turns)",
    "instruction": "instruction",
    "output": "answer (output)",
    "prompt": "prompt",
    "completion": "answer (completion)",
    "text": "text",
}


@dataclass
class Detection:
    format: str | None  # one of FORMATS, None when nothing fitted
    mapping: dict[str, str] = field(default_factory=dict)  # canonical field -> source column
    ambiguous: bool = False  # more than one format fitted the sample
    candidates: list[str] = field(default_factory=list)  # every format that fitted, best first
    reason: str = ""  # one sentence for people
    missing: list[str] = field(default_factory=list)  # required fields with no column

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
    for canonical, names in ALIASES.get(fmt, {}).items():
        if canonical not in out:
            for name in names:
                if name in cols:
                    out[canonical] = cols[name]
                    break
    return out


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
        reason = f"Format {fmt} chosen by hand" + (f"; columns {full}" if full else "")
        return Detection(fmt, full, False, [fmt], reason, missing)
    found = _candidates(records, cols)
    if not found:
        return Detection(None, {}, False, [], f"No known layout fits the columns: {listing}.")
    (best, best_map), others = found[0], [f for f, _ in found[1:]]
    used = ", ".join(f"{k} from column “{c}”" for k, c in best_map.items())
    reason = f"Read as {best}: {used}."
    if others:
        reason += f" It could also be read as {', '.join(others)}."
    return Detection(best, best_map, bool(others), [f for f, _ in found], reason)
