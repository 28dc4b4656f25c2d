"""One record in any format -> the single internal form, plus everything wrong with it.

The internal form is `{"messages": [{"role", "content"[, "weight"]}, ...]}` for every
chat-like format (prompt/completion and alpaca become a user turn and an assistant turn;
alpaca's input is appended to the instruction; a system column becomes a system message)
or `{"text": str}` for plain language modelling. Tool use adds `tool_calls` to assistant
messages, `tool` messages for results and `"tools"` beside `"messages"` (tools.py).
Preference pairs become the prompt plus the chosen reply (the rejected one is ignored).

`normalise(record, detection)` returns `(example or None, issues)`: the example is None
when an issue is an error, and for a row whose KTO label is false (a warning: the row is
left out on purpose, never trained). The checks are OpenAI's data-prep recipe plus checks of
the conversation shape (roles, turn order, empty turns) and of what a text-only model
cannot learn from (images, audio, video).

Its length: every format and kind is read in one pass over a record, sharing the per-row
issue list and the turn reader; the helpers make sense only next to `normalise`.
"""

import math

from . import tools
from .codes import CATALOGUE, ERROR
from .detect import MEDIA, Detection, _as_list

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
    "function_call": "assistant",  # its value is the call (tools.py)
}
CHAT_FORMATS = ("messages", "sharegpt")
PLACEHOLDERS = ("<image>", "<video>", "<audio>")  # LLaMA-Factory's marks for media


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
        return bool(self) and any(CATALOGUE[c][0] == ERROR for c in self)


def _content(content, i: int, issues: _Issues):
    """A message's content as text: OpenAI's list of parts joined when they are all text;
    None (with the issue) when it holds media or is not text."""
    if isinstance(content, list) and content and all(isinstance(p, dict) for p in content):
        media = [str(p.get("type")) for p in content if p.get("type") != "text"]
        if media:
            issues.add("multimodal_row", what=f"a part of type “{media[0]}” in message {i}")
            return None
        texts = [p.get("text") for p in content]
        if all(isinstance(t, str) for t in texts):
            return "\n".join(texts)
    if not isinstance(content, str):
        issues.add("content_not_text", what=f"content of message {i}", kind=kind_of(content))
        return None
    return content


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
        calls = not sharegpt and bool(m.get("tool_calls") or m.get("function_call"))
        if role_key not in m or (content_key not in m and not calls):
            issues.add(
                "message_missing_key", index=i, key=role_key if role_key not in m else content_key
            )
            continue
        if len(m) > 2 and not allowed.issuperset(m):
            extra = ", ".join(sorted(str(k) for k in m if k not in allowed))
            issues.add("unknown_message_keys", index=i, keys=extra)
        role = m[role_key]
        if sharegpt:
            calls = isinstance(role, str) and role.lower() == "function_call"
            role = SHAREGPT_ROLES.get(role.lower()) if isinstance(role, str) else None
        if role not in KNOWN_ROLES:
            issues.add("unknown_role", index=i, role=m[role_key], known=known)
            continue
        role = "tool" if role == "function" else role  # OpenAI's older name for a tool result
        message = {"role": role}
        if calls and role != "assistant":
            issues.add("bad_tool_call", index=i, detail=f"a {role} message cannot call a tool")
            continue
        if calls:
            try:
                message["tool_calls"] = (
                    tools.sharegpt_calls(m["value"]) if sharegpt else tools.openai_calls(m)
                )
            except ValueError as e:
                issues.add("bad_tool_call", index=i, detail=e)
                continue
            content = "" if sharegpt or m.get("content") is None else m["content"]
        else:
            content = m[content_key]
        if not isinstance(content, str):
            content = _content(content, i, issues)
            if content is None:
                continue
        if not calls and (not content or content.isspace()):  # isspace stops at a letter
            issues.add("empty_content", what=f"content of message {i} ({role})")
        message["content"] = content
        if role == "tool":  # some templates name the tool or the call a result answers
            for key in ("name", "tool_call_id"):
                if isinstance(m.get(key), str):
                    message[key] = m[key]
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
    if isinstance(value, list) and label in ("prompt", "answer (completion)", "chosen reply"):
        return value  # conversational prompt/completion: a list of messages
    if isinstance(value, dict) and label in ("prompt", "chosen reply"):
        return value  # one message (LLaMA-Factory), or OpenAI's {"messages", "tools"}
    if not isinstance(value, str):
        issues.add("content_not_text", what=f"{label} (column “{column}”)", kind=kind_of(value))
        return ""
    if required and (not value or value.isspace()):
        issues.add("empty_content", what=f"{label} (column “{column}”)")
    return value


def _conversation(part, field: str, issues: _Issues) -> list[dict]:
    """A list of turns (or one turn) in either style, role/content or from/value."""
    part = [part] if isinstance(part, dict) else part
    sharegpt = any(isinstance(t, dict) and "from" in t for t in part)
    return _turns(part, field, issues, sharegpt) or []


def _pair(user, assistant, system: str, issues: _Issues) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system.strip() else []
    for part, role in ((user, "user"), (assistant, "assistant")):
        if isinstance(part, list | dict):
            messages += _conversation(part, role, issues)
        else:
            messages.append({"role": role, "content": part})
    return messages


def _media(record: dict) -> str | None:
    """What media a row holds in a column of its own (LLaMA-Factory's images, ...)."""
    for key, value in record.items():
        what = MEDIA.get(str(key).lower())
        if what and value and not (isinstance(value, float) and math.isnan(value)):
            return f"{what} (column “{key}”)"
    return None


def _label(record: dict, column: str, issues: _Issues) -> bool:
    """KTO's label: True for a desirable reply; False (with the issue) otherwise."""
    value = record.get(column)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if value is True:
        return True
    if value is False:
        issues.add("undesirable_row", column=column)
    else:
        issues.add("invalid_label", column=column, kind=kind_of(value))
    return False


def _preference(record: dict, cols: dict, issues: _Issues) -> dict | None:
    """The prompt and the chosen reply of a preference pair (the rejected one is ignored);
    without a prompt column the chosen value is the whole conversation (or text)."""
    system = _value(record, cols.get("system"), "system prompt", issues, required=False)
    chosen = _value(record, cols.get("chosen"), "chosen reply", issues, required=True)
    if "prompt" not in cols:  # TRL's implicit prompt: chosen holds it
        if isinstance(chosen, str):
            return {"text": chosen}
        head = [{"role": "system", "content": system}] if system.strip() else []
        return {"messages": head + _conversation(chosen, cols["chosen"], issues)}
    prompt = _value(record, cols["prompt"], "prompt", issues, required=True)
    defined = []
    if isinstance(prompt, dict) and "messages" in prompt:  # OpenAI: {"messages", "tools"}
        try:
            defined = tools.parse_tools(prompt.get("tools"))
        except ValueError as e:
            issues.add("bad_tools", column=cols["prompt"], detail=e)
        prompt = prompt["messages"]
    extra = _value(record, cols.get("input"), "input", issues, required=False)
    if isinstance(prompt, str) and extra.strip():
        prompt = f"{prompt}\n\n{extra}"
    example = {"messages": _pair(prompt, chosen, system, issues)}
    if defined:
        example["tools"] = defined
    return example


def _tools(record: dict, column: str | None, issues: _Issues) -> list[dict]:
    try:
        return tools.parse_tools(record.get(column)) if column else []
    except ValueError as e:
        issues.add("bad_tools", column=column, detail=e)
        return []


def _placeholder(example: dict, issues: _Issues) -> None:
    texts = [example["text"]] if "text" in example else [m["content"] for m in example["messages"]]
    for text in texts:
        if "<" in text:  # most rows have none: one fast scan each
            for tag in PLACEHOLDERS:
                if tag in text:
                    issues.add("media_placeholder", tag=tag)
                    return


def normalise(record, detection: Detection) -> tuple[dict | None, dict]:
    """(example in the internal form, or None if the record has an error or is left out;
    {code: details})."""
    issues = _Issues()
    if not isinstance(record, dict):
        issues.add("not_an_object", kind=kind_of(record))
        return None, issues
    fmt, cols = detection.format, detection.mapping
    media = _media(record)
    if media:
        issues.add("multimodal_row", what=media)
        return None, issues
    if "label" in cols and not _label(record, cols["label"], issues):
        return None, issues  # undesirable (KTO): never trained
    defined = []
    if fmt == "text":
        example = {"text": _value(record, cols.get("text"), "text", issues, required=True)}
    elif fmt == "preference":
        example = _preference(record, cols, issues)
    elif fmt in CHAT_FORMATS:
        field = cols.get("messages") or cols.get("conversations")
        sharegpt = fmt == "sharegpt"
        messages = _turns(record.get(field), field, issues, sharegpt)
        if messages is None:
            return None, issues
        system = record.get(cols["system"]) if sharegpt and "system" in cols else None
        if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        defined = _tools(record, cols.get("tools"), issues)
        example = {"messages": messages}
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
        example = {"messages": _pair(user, answer, system, issues)}
    if issues.has_error():
        return None, issues
    if "messages" in example:
        _shape(example["messages"], fmt in CHAT_FORMATS, issues)
        if defined:
            example["tools"] = defined
    _placeholder(example, issues)
    return (None if issues.has_error() else example), issues
