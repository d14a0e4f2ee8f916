"""Kimi's tool calls, one round at a time: the calls a stream asks for, joined from the
pieces it sends; what each call gives back; and the turn that hands them back to Kimi.

A round: Kimi's stream ends with finish_reason "tool_calls"; every call is answered (`run`),
then Kimi is asked again with its own turn and the results (`turn`). Which tools a request
offers is the request parameters' (kimi/params.py). Today the one tool is Kimi's built-in web
search, which Kimi runs itself: its call goes back unchanged. Another tool is an entry in
RUNNERS (how its call is answered) and in STATUS (what the page says meanwhile)."""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# Kimi's built-in web search: Kimi searches, the app hands the call back.
WEB_SEARCH = "$web_search"
WEB_SEARCH_TOOL = {"type": "builtin_function", "function": {"name": WEB_SEARCH}}


@dataclass
class ToolCall:
    """A call Kimi makes to a tool, joined from the pieces a stream sends."""

    id: str = ""
    name: str = ""
    arguments: str = ""


class Calls:
    """The calls of one streamed response, joined by index as their pieces come."""

    def __init__(self) -> None:
        self._by_index: dict[int, ToolCall] = {}

    def add(self, pieces: Iterable[dict[str, Any]]) -> None:
        for piece in pieces:
            call = self._by_index.setdefault(piece.get("index", 0), ToolCall())
            call.id += piece.get("id") or ""
            function = piece.get("function")
            if function:
                call.name += function.get("name") or ""
                call.arguments += function.get("arguments") or ""

    def all(self) -> list[ToolCall]:
        return list(self._by_index.values())


Runner = Callable[[ToolCall], Awaitable[str]]


async def _hand_back(call: ToolCall) -> str:
    # Kimi ran it itself: its arguments go back unchanged.
    return call.arguments


RUNNERS: dict[str, Runner] = {WEB_SEARCH: _hand_back}
STATUS: dict[str, Promise] = {WEB_SEARCH: _("Searching the web…")}


async def run(call: ToolCall) -> str:
    """What goes back to Kimi for one call: the tool's result."""
    return await RUNNERS.get(call.name, _hand_back)(call)


def status(calls: list[ToolCall]) -> str:
    """What the page says while the round's calls are answered."""
    return str(STATUS.get(calls[0].name, STATUS[WEB_SEARCH])) if calls else ""


def turn(calls: list[ToolCall], results: list[str], thinking: str) -> list[dict[str, Any]]:
    """Kimi's turn that asked for the calls, and one tool message per result, to append to
    the request's messages."""
    asked: dict[str, Any] = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in calls
        ],
    }
    if thinking:
        asked["reasoning_content"] = thinking  # a thinking model refuses the turn without it
    answered = [
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result}
        for call, result in zip(calls, results, strict=True)
    ]
    return [asked, *answered]
