"""One record in any format -> the single internal form, plus everything wrong with it.

The internal form is `{"messages": [{"role", "content"[, "weight"]}, ...]}` for every
chat-like format (prompt/completion and alpaca become a user turn and an assistant turn;
alpaca's input is appended to the instruction; a system column becomes a system message)
or `{"text": str}` for plain language modelling. `normalise(record, detection)` returns
`(example or None, issues)`: the example is None exactly when an issue is an error.
The checks are OpenAI's data-prep recipe plus checks of the conversation shape (roles, turn order, empty turns).
"""

import math

from .codes import CATALOGUE, ERROR
from .detect import Detection, _as_list

KNOWN_ROLES = ("system", "user", "assistant", "tool", "function")
MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id"}
)
SHAREGPT_KEYS = frozenset({"from", "value", "name", "weight"})
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}
CHAT_FORMATS = ("messages", "sharegpt")


def kind_of(value) -> str:
    """How a wrong value looks, in plain words."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Issues(dict):
    """code -> details, first occurrence per code (one finding per code and row)."""

    def add(self, code: str, **details) -> None:
        self.setdefault(code, details)

    def has_error(self) -> bool:
        return any(CATALOGUE[c][0] == ERROR for c in self)


def _turns(raw, field: str, issues: _Issues, sharegpt: bool) -> list[dict] | None:
    raw = _as_list(raw)
    if not isinstance(raw, list) or not raw:
        issues.add("missing_messages", field=field)
        return None
    role_key, content_key = ("from", "value") if sharegpt else ("role", "content")
    allowed = SHAREGPT_KEYS if sharegpt else MESSAGE_KEYS
    known = "system, human or gpt" if sharegpt else "system, user or assistant"
    out = []
    for i, m in enumerate(raw, 1):
        if not isinstance(m, dict):
            issues.add("message_not_object", index=i, kind=kind_of(m))
            continue
        if role_key not in m or content_key not in m:
            issues.add(
                "message_missing_key", index=i, key=role_key if role_key not in m else content_key
            )
            continue
        if len(m) > 2 and not allowed.issuperset(m):
            extra = ", ".join(sorted(str(k) for k in m if k not in allowed))
            issues.add("unknown_message_keys", index=i, keys=extra)
        role = m[role_key]
        if sharegpt:
            role = SHAREGPT_ROLES.get(role.lower()) if isinstance(role, str) else None
        if role not in KNOWN_ROLES:
            issues.add("unknown_role", index=i, role=m[role_key], known=known)
            continue
        content = m[content_key]
        if not isinstance(content, str):
            issues.add("content_not_text", what=f"content of message {i}", kind=kind_of(content))
            continue
        if not content or content.isspace():  # isspace stops at the first letter; strip copies
            issues.add("empty_content", what=f"content of message {i} ({role})")
        message = {"role": role, "content": content}
        if "weight" in m:
            weight = m["weight"]
            if isinstance(weight, bool) or weight not in (0, 1):
                issues.add("invalid_weight", index=i, weight=weight)
            else:
                message["weight"] = int(weight)
        out.append(message)
    return out


def _shape(messages: list[dict], chat_format: bool, issues: _Issues) -> None:
    roles = [m["role"] for m in messages]
    if "assistant" not in roles:
        issues.add("no_assistant_message")
    elif roles[-1] != "assistant":
        issues.add("last_turn_not_assistant", role=roles[-1])
    if "user" not in roles:
        issues.add("no_user_message")
    if chat_format and "system" not in roles:
        issues.add("no_system_message")
    if "system" in roles[1:]:
        issues.add("system_not_first", index=roles.index("system", 1) + 1)
    for i in range(1, len(roles)):
        if roles[i] == roles[i - 1] and roles[i] in ("user", "assistant"):
            issues.add(f"consecutive_{roles[i]}_turns", index=i, next=i + 1)
    trained = [m for m in messages if m["role"] == "assistant" and m.get("weight", 1)]
    if "assistant" in roles and not trained:
        issues.add("zero_trained_tokens")


def _value(record: dict, column: str | None, label: str, issues: _Issues, required: bool):
    """A text field of a flat record ('' when an optional one is absent or blank)."""
    value = record.get(column) if column is not None else None
    if isinstance(value, float) and math.isnan(value):
        value = None  # spreadsheets and pandas write missing cells as NaN
    if value is None:
        if required:
            issues.add("missing_field", field=label, column=column)
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # numeric answers in CSV/Parquet columns are text to a model
    if isinstance(value, list) and label in ("prompt", "answer (completion)"):
        return value  # conversational prompt/completion: a list of messages
    if not isinstance(value, str):
        issues.add("content_not_text", what=f"{label} (column “{column}”)", kind=kind_of(value))
        return ""
    if required and (not value or value.isspace()):
        issues.add("empty_content", what=f"{label} (column “{column}”)")
    return value


def _pair(user, assistant, system: str, issues: _Issues) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system.strip() else []
    for part, role in ((user, "user"), (assistant, "assistant")):
        if isinstance(part, list):
            messages += _turns(part, role, issues, sharegpt=False) or []
        else:
            messages.append({"role": role, "content": part})
    return messages


def normalise(record, detection: Detection) -> tuple[dict | None, dict]:
    """(example in the internal form, or None if the record has an error; {code: details})."""
    issues = _Issues()
    if not isinstance(record, dict):
        issues.add("not_an_object", kind=kind_of(record))
        return None, issues
    fmt, cols = detection.format, detection.mapping
    if fmt == "text":
        text = _value(record, cols.get("text"), "text", issues, required=True)
        return (None if issues.has_error() else {"text": text}), issues
    if fmt in CHAT_FORMATS:
        field = cols.get("messages") or cols.get("conversations")
        sharegpt = fmt == "sharegpt"
        messages = _turns(record.get(field), field, issues, sharegpt)
        if messages is None:
            return None, issues
        system = record.get(cols["system"]) if sharegpt and "system" in cols else None
        if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
    else:
        system = _value(record, cols.get("system"), "system prompt", issues, required=False)
        if fmt == "alpaca":
            instruction = _value(record, cols.get("instruction"), "instruction", issues, True)
            extra = _value(record, cols.get("input"), "input", issues, required=False)
            answer = _value(record, cols.get("output"), "answer (output)", issues, True)
            user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        else:
            user = _value(record, cols.get("prompt"), "prompt", issues, required=True)
            answer = _value(record, cols.get("completion"), "answer (completion)", issues, True)
        if issues.has_error():
            return None, issues
        messages = _pair(user, answer, system, issues)
    if not issues.has_error():
        _shape(messages, fmt in CHAT_FORMATS, issues)
    return (None if issues.has_error() else {"messages": messages}), issues
