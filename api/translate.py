"""The Responses API's request in the words of Kimi's chat completions, and Kimi's answer back
in the Responses API's: input items to messages (text, images, function calls and their
results, reasoning), `instructions` to a system message, function tools, the JSON schema of
`text.format`, `reasoning.effort`; an answer to output items (reasoning summary, message,
function calls) and OpenAI's usage."""

import secrets
from typing import Any

from django.utils.translation import gettext as _

from api.requests import bad
from kimi import catalogue

# Kimi's reasoning efforts for OpenAI's.
EFFORTS = {"minimal": "low", "low": "low", "medium": "high", "high": "high", "xhigh": "max"}
EFFORTS["max"] = "max"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def chat_request(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat completion's body for a Responses request, after `history` (the messages of
    the response it continues, its system messages left out: `instructions` do not carry
    over). Raises Refusal."""
    model = body.get("model")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    messages += [m for m in history if m.get("role") != "system"]
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        messages += input_messages(given)
    else:
        raise bad(_("“input” is required: text, or a list of input items."))
    chat: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": bool(body.get("stream")),
    }
    for ours, theirs in (("max_output_tokens", "max_completion_tokens"),):
        if body.get(ours) is not None:
            chat[theirs] = body[ours]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "prompt_cache_key"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(body["tool_choice"])
    form = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(form, dict) and form.get("type") == "json_schema":
        schema = {k: form[k] for k in ("name", "schema", "strict", "description") if k in form}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(form, dict) and form.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if effort in EFFORTS and isinstance(model, str) and catalogue.thinking(model) != "never":
        chat["reasoning_effort"] = EFFORTS[effort]
    return chat


def input_messages(items: list[Any]) -> list[dict[str, Any]]:
    """Input items as chat messages: function calls in a row become one assistant message
    (with the reasoning before them, which Kimi needs back), their outputs tool messages."""
    messages: list[dict[str, Any]] = []
    reasoning = ""
    for item in items:
        if not isinstance(item, dict):
            raise bad(_("Each input item must be an object."))
        kind = item.get("type") or ("message" if "role" in item else "")
        if kind == "reasoning":
            reasoning += "".join(
                s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)
            )
        elif kind == "message":
            message = {"role": _role(item.get("role")), "content": _content(item.get("content"))}
            if message["role"] == "assistant" and reasoning:
                message["reasoning_content"], reasoning = reasoning, ""
            messages.append(message)
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id") or ""),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
            }
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant" or last.get("tool_calls") is None:
                if last is not None and last["role"] == "assistant" and not last["content"]:
                    last["tool_calls"] = []
                else:
                    last = {"role": "assistant", "content": "", "tool_calls": []}
                    messages.append(last)
                if reasoning:
                    last["reasoning_content"], reasoning = reasoning, ""
            last["tool_calls"].append(call)
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text_of(output)
            messages.append(
                {"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": text}
            )
        elif kind != "item_reference":
            raise bad(_("Input items of type “%(type)s” are not taken here.") % {"type": kind})
    return messages


def _role(role: Any) -> str:
    if role == "developer":
        return "system"
    if role not in ("user", "assistant", "system"):
        raise bad(_("A message's role must be user, assistant, system or developer."))
    return role


def _content(content: Any) -> Any:
    """A message's content: text, or parts (text and images as data URLs)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(_("A message's content must be text or a list of parts."))
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        else:
            raise bad(_("Content parts of type “%(type)s” are not taken here.") % {"type": kind})
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _text_of(output: Any) -> str:
    if isinstance(output, list):
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return "" if output is None else str(output)


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise bad(_("“tools” must be a list."))
    chat = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise bad(_("Only function tools are taken here, not “%(type)s”.") % {"type": kind})
        function = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
        chat.append({"type": "function", "function": function})
    return chat


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def usage(tokens: tuple[int, int, int], reasoning: str, kimi_usage: dict | None) -> dict:
    """OpenAI's usage of a response: Kimi's reasoning tokens where it says, else estimated
    from the reasoning's text (within the answer's tokens)."""
    prompt, completion, cached = tokens
    details = (kimi_usage or {}).get("completion_tokens_details")
    said = details.get("reasoning_tokens") if isinstance(details, dict) else None
    thought = catalogue.estimate_tokens(reasoning) if reasoning else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": said if isinstance(said, int) else min(thought, completion)
        },
        "total_tokens": prompt + completion,
    }


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content if status == "completed" else [],
    }


def call_item(item_id: str, call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call.get("id") or item_id,
        "name": function.get("name") or "",
        "arguments": function.get("arguments") or "" if status == "completed" else "",
        "status": status,
    }


def output_items(content: str, reasoning: str, tool_calls: list[dict] | None) -> list[dict]:
    items = []
    if reasoning:
        items.append(reasoning_item(new_id("rs"), reasoning))
    if content or not tool_calls:
        items.append(message_item(new_id("msg"), content))
    for call in tool_calls or []:
        items.append(call_item(new_id("fc"), call))
    return items


def response_object(
    body: dict[str, Any], response_id: str, created: int, status: str = "in_progress"
) -> dict[str, Any]:
    """A response as it stands: its request's settings, no output or usage yet."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": bool(body.get("store", True)),
        "temperature": body.get("temperature"),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def finished(response: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    if finish_reason == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        response["status"] = "completed"
    return response
