"""The tool rounds of an answer with "Web search" on: what is declared to Kimi, how each call
it makes is run, and what goes back (docs/how-it-works.md, "Kimi today").

Kimi's official tools (kimichat/formulas.py) are declared where Kimi has them: web_search
and fetch, run as fibers, their output handed back verbatim, with thinking on. Where Kimi has
none, models that still serve the legacy `$web_search` get that instead (Kimi runs the search
itself; its arguments are handed back); kimi-k3 refuses that echo, so it answers without."""

import asyncio
import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai
from django.utils.translation import gettext as _

from kimichat import catalogue, formulas, kimi

log = logging.getLogger(__name__)

# Rounds of calls one answer may make; the last round's calls are answered with ENOUGH.
MAX_ROUNDS = 8
# What Kimi is told (in English: it is read by Kimi, not by the user).
UNAVAILABLE = "The tool is unavailable right now. Answer without it, from what you already have."
ENOUGH = "No more tool calls for this answer: answer now from what you already have."
PAGE_LABEL = 60  # characters of a page's address shown


@dataclass
class Call:
    """A call Kimi makes to a tool, joined from the pieces a stream sends."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class Offer:
    tools: list[dict]
    legacy: bool  # $web_search: Kimi runs it, the app hands its arguments back


def legacy_search(model: str) -> bool:
    """Whether `model` still takes the builtin $web_search round (kimi-k3 refuses its echo)."""
    return not catalogue.takes_effort(model)


async def offer(model: str) -> Offer | None:
    """What "Web search" declares for `model`; None for nothing (the answer goes without)."""
    try:
        declared = await formulas.declarations()
    except (openai.APIError, ValueError) as e:
        log.warning("Kimi's tools could not be read (%r): answering without them", e)
        return None
    if declared:
        return Offer(declared, legacy=False)
    if legacy_search(model):
        return Offer([kimi.WEB_SEARCH_TOOL], legacy=True)
    return None


def asked(calls: list[Call], reasoning: str) -> dict:
    """The assistant's turn that made the calls, as Kimi wants it back: with its reasoning
    (a thinking model refuses the turn without it)."""
    message: dict = {
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
    if reasoning:
        message["reasoning_content"] = reasoning
    return message


async def results(calls: list[Call], *, legacy: bool, enough: bool = False) -> list[dict]:
    """One tool message per call: the fiber's output as it came (run side by side), the
    call's own arguments for $web_search, ENOUGH once the rounds are used up, UNAVAILABLE
    for a call that failed."""
    if legacy:
        contents = [call.arguments for call in calls]
    elif enough:
        contents = [ENOUGH] * len(calls)
    else:
        contents = list(await asyncio.gather(*(_run(call) for call in calls)))
    return [
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}
        for call, content in zip(calls, contents, strict=True)
    ]


async def _run(call: Call) -> str:
    try:
        return await formulas.fiber(call.name, call.arguments)
    except formulas.FiberFailed as e:
        log.info("Tool call %s (%s) failed: %s", call.id, call.name, e)
        return UNAVAILABLE


def step(call: Call) -> dict | None:
    """What a call does, as the answer shows it: {"kind": "search", "text": query} or
    {"kind": "read", "text": url}; None for a call that says neither."""
    try:
        arguments = json.loads(call.arguments)
    except ValueError:
        return None
    if not isinstance(arguments, dict):
        return None
    if call.name == "$web_search":
        found = arguments.get("search_result")
        query = found.get("query") if isinstance(found, dict) else None
        return {"kind": "search", "text": query} if isinstance(query, str) else None
    value = arguments.get("query" if call.name == "web_search" else "url")
    if not isinstance(value, str) or not value.strip():
        return None
    return {"kind": "search" if call.name == "web_search" else "read", "text": value.strip()}


def step_text(step: dict) -> str:
    """A step as shown while it runs: "Searching: …", "Reading: example.org/…"."""
    if step["kind"] == "search":
        return _("Searching: %(query)s") % {"query": step["text"]}
    return _("Reading: %(page)s") % {"page": page_label(step["text"])}


def page_label(url: str) -> str:
    """A page's address without its scheme, shortened."""
    parts = urlsplit(url)
    label = (parts.netloc + parts.path).rstrip("/") or url
    return label if len(label) <= PAGE_LABEL else label[: PAGE_LABEL - 1] + "…"
