"""A chat completion's request body, checked and bounded before it goes to Kimi: the fields
Kimi knows and nothing else (no file ids, nothing a client made up), one choice (n=1), images
only as data (never another user's `ms://` file on the company's Kimi account), and the
answer's cap, which the budgets may lower (api.limits)."""

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from api.errors import Refusal
from kimi import catalogue
from kimi.tools import WEB_SEARCH

# The fields of a chat completion OpenAI's clients send and Kimi takes. Any other is dropped.
FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "stop",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "seed",
        "user",
        "logprobs",
        "top_logprobs",
        "thinking",
        "reasoning_effort",
        "prompt_cache_key",
        "safety_identifier",
    }
)
MESSAGE_FIELDS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content", "partial"}
)
CAPS = ("max_completion_tokens", "max_tokens")


def bad(message: str, param: str | None = None) -> Refusal:
    return Refusal(400, "invalid_request_error", message, code=param and f"invalid_{param}")


def chat_body(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The body to send to Kimi, and whether the client asked for the usage at the stream's
    end (stream_options.include_usage: KimiChat sends it in OpenAI's shape). Raises Refusal."""
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise bad(_("“model” is required: a model's id."))
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
    ):
        raise bad(_("“messages” is required: a list of objects, each with a “role”."))
    if not isinstance(body.get("stream", False), bool):
        raise bad(_("“stream” must be true or false."))
    if body.get("n") not in (None, 1):
        raise bad(_("Only one choice is written per request here (n=1)."), "n")
    for name in CAPS:
        value = body.get(name)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise bad(_("“%(name)s” must be a whole number above 0.") % {"name": name}, name)
    if not settings.KIMI_WEB_SEARCH and _searches(body):
        # A deployment that must not reach the web: as on the page, so through the API.
        raise bad(_("Web search is turned off on this server."))
    options = body.get("stream_options")
    include_usage = bool(
        body.get("stream") and isinstance(options, dict) and options.get("include_usage")
    )
    sent = {name: value for name, value in body.items() if name in FIELDS}
    sent["messages"] = [_message(m) for m in messages]
    return sent, include_usage


def _message(message: dict[str, Any]) -> dict[str, Any]:
    kept = {name: value for name, value in message.items() if name in MESSAGE_FIELDS}
    content = kept.get("content")
    if isinstance(content, list):
        for part in content:
            media = part.get(part.get("type", "")) if isinstance(part, dict) else None
            url = media.get("url") if isinstance(media, dict) else media
            if isinstance(url, str) and url.startswith("ms://"):
                raise bad(_("Send images as data: URLs (base64); files on Kimi are not yours."))
    return kept


def _searches(body: dict[str, Any]) -> bool:
    """Whether the request offers Kimi its built-in web search."""
    tools = body.get("tools")
    return isinstance(tools, list) and any(
        isinstance(tool, dict)
        and isinstance(tool.get("function"), dict)
        and tool["function"].get("name") == WEB_SEARCH
        for tool in tools
    )


def max_tokens(body: dict[str, Any]) -> int | None:
    """The answer's cap the client asked for (the lower, where it gave both names)."""
    asked = [body[name] for name in CAPS if isinstance(body.get(name), int)]
    return min(asked) if asked else None


def set_max_tokens(body: dict[str, Any], cap: int) -> None:
    """The answer's cap, under the name(s) the client used (Kimi's current name otherwise)."""
    named = [name for name in CAPS if name in body] or [CAPS[0]]
    for name in named:
        body[name] = cap


def prompt_estimate(body: dict[str, Any]) -> int:
    """The prompt's tokens, estimated high (its text, and each image at Kimi's flat rate)."""
    total = 0
    for message in body.get("messages", []):
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for part in parts:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                total += catalogue.estimate_tokens(part["text"])
            elif part.get("type") in ("image_url", "video_url"):
                total += catalogue.IMAGE_TOKENS
        if message.get("tool_calls"):
            total += catalogue.estimate_tokens(str(message["tool_calls"]))
    tools = body.get("tools")
    if tools:
        total += catalogue.estimate_tokens(str(tools))
    return total
