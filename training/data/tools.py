"""Tool calls: read them from OpenAI and ShareGPT rows into the form chat templates take,
and tell whether a model's template can render them.

transformers renders tool use through the chat template: `apply_chat_template(messages,
tools=[...])`, with the tool definitions as JSON schemas (`{"type": "function", "function":
{name, description, parameters}}`), an assistant's calls as `tool_calls` (`[{"type":
"function", "function": {"name", "arguments": {...}}}]`, arguments an object, as templates
write them with `tojson`) and each result as a message with the role `tool`.

Where rows come from:
- OpenAI: an assistant message with `tool_calls` (arguments as JSON text) and no content, or
  the older `function_call`; results as `tool` (or `function`) messages; `tools` (or the
  older `functions`) beside `messages`.
- ShareGPT (LLaMA-Factory's glaive_toolcall): `function_call` turns whose value is the call
  as JSON (one, or a list for parallel calls), `observation` turns for results, and a
  `tools` column holding the definitions as JSON text.

A template supports tools when it reads both `tools` and `tool_calls`: Qwen2.5-Instruct's
does; SmolLM2's reads neither and would drop the calls silently, so such rows are refused.
"""

import json
import re

_TOOLS = re.compile(r"\btools\b")
_TOOL_CALLS = re.compile(r"\btool_calls\b")
TOOL_MODEL = "Qwen2.5-Instruct (e.g. Qwen/Qwen2.5-0.5B-Instruct)"  # one whose template has tools


def _call(raw) -> dict:
    """One call {"name", "arguments"} (arguments an object or its JSON text) as a template
    takes it; ValueError with the reason when it cannot be read."""
    fn = raw.get("function", raw) if isinstance(raw, dict) else None
    if not isinstance(fn, dict):
        raise ValueError("a call must be an object with a name and arguments")
    name, args = fn.get("name"), fn.get("arguments", {})
    if not isinstance(name, str) or not name.strip():
        raise ValueError("the call has no function name")
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            raise ValueError(f"the arguments of {name} are not valid JSON") from None
    if not isinstance(args, dict):
        raise ValueError(f"the arguments of {name} must be an object of named values")
    call = {"type": "function", "function": {"name": name, "arguments": args}}
    if isinstance(raw.get("id"), str):
        call["id"] = raw["id"]
    return call


def openai_calls(message: dict) -> list[dict]:
    """An OpenAI assistant message's calls (`tool_calls`, or the older `function_call`)."""
    raw = message.get("tool_calls")
    if raw is None:
        raw = [message["function_call"]]
    if not isinstance(raw, list) or not raw:
        raise ValueError("tool_calls must be a non-empty list")
    return [_call(c) for c in raw]


def sharegpt_calls(value) -> list[dict]:
    """A ShareGPT `function_call` turn's value: one call as JSON, or a list of them."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("the call is not valid JSON") from None
    calls = value if isinstance(value, list) else [value]
    if not calls:
        raise ValueError("the list of calls is empty")
    return [_call(c) for c in calls]


def parse_tools(value) -> list[dict]:
    """Tool definitions (a list, or its JSON text) as JSON schemas; [] when there are none."""
    if value is None or (isinstance(value, float) and value != value):  # NaN: an empty cell
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("they are not valid JSON") from None
    if not isinstance(value, list):
        raise ValueError("they must be a list of functions")
    out = []
    for spec in value:
        if isinstance(spec, dict) and isinstance(spec.get("function"), dict):
            out.append(spec)
        elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
            out.append({"type": "function", "function": spec})
        else:
            raise ValueError("each function needs at least a name")
    return out


def uses_tools(example: dict) -> bool:
    """The example defines tools, calls one or holds a tool's result."""
    if "tools" in example:
        return True
    return any(["tool_calls" in m or m["role"] == "tool" for m in example.get("messages", ())])


def supports_tools(tokenizer) -> bool:
    """The tokenizer's chat template reads both `tools` and `tool_calls`."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):  # named templates, e.g. {"default": ..., "tool_use": ...}
        template = "\n".join(str(t) for t in template.values())
    return bool(_TOOLS.search(template) and _TOOL_CALLS.search(template))


def template_messages(messages: list[dict]) -> list[dict]:
    """Messages as a chat template takes them: without our `weight`."""
    return [{k: v for k, v in m.items() if k != "weight"} for m in messages]


def tool_text(message: dict) -> str:
    """A message's calls as text, for layouts without a template (ChatML preview, estimates)."""
    calls = message.get("tool_calls")
    if not calls:
        return ""
    return "".join(
        "<tool_call>" + json.dumps(c["function"], ensure_ascii=False) + "</tool_call>"
        for c in calls
    )
