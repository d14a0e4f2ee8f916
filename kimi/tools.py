"""Kimi's tool calls, one round at a time: which tools "Web search" declares, the calls a
stream asks for (joined from the pieces it sends), what each call gives back, and the turn
that hands them back to Kimi (docs/how-it-works.md, "Kimi today").

A round: Kimi's stream ends with finish_reason "tool_calls"; every call is answered (`run`),
then Kimi is asked again with its own turn and the results (`turn`). Kimi's official tools
(kimi/formulas.py: web_search and fetch) run as fibers, their output handed back verbatim,
with thinking on; a call that fails is answered UNAVAILABLE, so Kimi still answers. Where Kimi
has no formulas, models that still serve the legacy `$web_search` get that (Kimi runs it
itself; its call goes back unchanged); kimi-k3 refuses that echo, so it answers without.
The app's own search of the conversation's documents (LIBRARY, uploads/library_search.py) is
answered by a runner each answer brings (`run_all`'s `runners`): only that answer's files may
be searched, and this layer knows no files. Another tool is an entry in RUNNERS (how its call
is answered) and in `step` (what the answer shows of it)."""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import openai
from django.utils.translation import gettext as _

from kimi import catalogue, formulas

log = logging.getLogger(__name__)

# Kimi's built-in web search: Kimi searches, the app hands the call back.
WEB_SEARCH = "$web_search"
WEB_SEARCH_TOOL = {"type": "builtin_function", "function": {"name": WEB_SEARCH}}
# The search of the conversation's own documents (a team library, documents too long to send
# whole): declared and answered by the layers above, shown as its own kind of step, never
# billed as a web search.
LIBRARY = "search_library"
# Rounds of calls one answer may make; the last round's calls are answered with ENOUGH.
MAX_ROUNDS = 8
# What Kimi is told (in English: Kimi reads it, not the user).
UNAVAILABLE = "The tool is unavailable right now. Answer without it, from what you already have."
ENOUGH = "No more tool calls for this answer: answer now from what you already have."
PAGE_LABEL = 60  # characters of a page's address shown


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


def legacy_search(model: str) -> bool:
    """Whether `model` still takes the builtin $web_search round (kimi-k3 refuses its echo)."""
    return not catalogue.takes_effort(model)


def searches(model: str) -> bool:
    """Whether "Web search" can do anything for `model`, as far as is known now."""
    return not formulas.missing() or legacy_search(model)


async def offered(model: str) -> list[dict] | None:
    """What "Web search" declares for `model`: Kimi's formulas where it has them, else the
    builtin search where the model still takes it; None for nothing (it answers without)."""
    try:
        declared = await formulas.declarations()
    except (openai.APIError, ValueError) as e:
        log.warning("Kimi's tools could not be read (%r): answering without them", e)
        return None
    if declared:
        return declared
    return [WEB_SEARCH_TOOL] if legacy_search(model) else None


Runner = Callable[[ToolCall], Awaitable[str]]


async def _hand_back(call: ToolCall) -> str:
    # Kimi ran it itself: its arguments go back unchanged.
    return call.arguments


async def _fiber(call: ToolCall) -> str:
    try:
        return await formulas.fiber(call.name, call.arguments)
    except formulas.FiberFailed as e:
        log.info("Tool call %s (%s) failed: %s", call.id, call.name, e)
        return UNAVAILABLE


RUNNERS: dict[str, Runner] = {WEB_SEARCH: _hand_back, "web_search": _fiber, "fetch": _fiber}


async def run_all(
    calls: list[ToolCall], *, last: bool = False, runners: Mapping[str, Runner] | None = None
) -> list[str]:
    """What goes back to Kimi for each call, run side by side (`runners`: this answer's own
    tools, by name, beside RUNNERS); ENOUGH for every call of the last round allowed (the
    builtin search's still go back: Kimi ran them already)."""
    if last:
        return [await _hand_back(c) if c.name == WEB_SEARCH else ENOUGH for c in calls]
    known = {**RUNNERS, **(runners or {})}
    return list(await asyncio.gather(*(known.get(c.name, _fiber)(c) for c in calls)))


# What the answer shows a call as, by the tool's name: anything else searches the web.
KINDS = {"fetch": "read", LIBRARY: "library"}


def step(call: ToolCall) -> dict | None:
    """What a call does, as the answer shows it: {"kind": "search", "text": query} (the web),
    {"kind": "library", "text": query} or {"kind": "read", "text": url}; None for a call that
    says none of them."""
    try:
        arguments = json.loads(call.arguments)
    except ValueError:
        return None
    if not isinstance(arguments, dict):
        return None
    if call.name == WEB_SEARCH:
        found = arguments.get("search_result")
        arguments = found if isinstance(found, dict) else {}
    kind = KINDS.get(call.name, "search")
    value = arguments.get("url" if kind == "read" else "query")
    if not isinstance(value, str) or not value.strip():
        return None
    return {"kind": kind, "text": value.strip()}


def step_text(step: dict) -> str:
    """A step as shown while it runs: "Searching: …", "Searching the library: …",
    "Reading: example.org/…"."""
    if step["kind"] == "search":
        return _("Searching: %(query)s") % {"query": step["text"]}
    if step["kind"] == "library":
        return _("Searching the library: %(query)s") % {"query": step["text"]}
    return _("Reading: %(page)s") % {"page": page_label(step["text"])}


def page_label(url: str) -> str:
    """A page's address without its scheme, shortened."""
    parts = urlsplit(url)
    label = (parts.netloc + parts.path).rstrip("/") or url
    return label if len(label) <= PAGE_LABEL else label[: PAGE_LABEL - 1] + "…"


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
