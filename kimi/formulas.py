"""Kimi's official tools ("formulas"): web search and reading a page, declared by Kimi and run
by Kimi, the app only passing calls and results between the two (docs/how-it-works.md, "Kimi
today").

A formula declares its functions (GET /formulas/<uri>/tools); Kimi's answer calls them like
any function; each call runs as a fiber (POST /formulas/<uri>/fibers) with the arguments
exactly as Kimi wrote them, and its output goes back to Kimi as it came. web-search's output
is encrypted: only Kimi reads it."""

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import openai

import kimi

log = logging.getLogger(__name__)

# The formulas "Web search" offers, by the function each declares.
FORMULAS = {"web_search": "moonshot/web-search:latest", "fetch": "moonshot/fetch:latest"}
# Declarations change rarely: read once an hour per process.
DECLARATIONS_FOR = 3600.0
TIMEOUT = 60.0  # seconds a fiber may take (a page read, a search)


class FiberFailed(Exception):
    """A call that did not succeed: Kimi is told the tool is unavailable."""


@dataclass(frozen=True)
class _Declared:
    tools: list[dict] | None  # None: Kimi has no formulas (404)
    at: float


_declared: _Declared | None = None


def forget() -> None:
    """Read the declarations anew on the next answer (tests)."""
    global _declared
    _declared = None


def missing() -> bool:
    """Whether Kimi said, when last asked, that it has no formulas here (a 404)."""
    read = _declared
    return read is not None and read.tools is None


async def declarations() -> list[dict] | None:
    """The functions to declare for "Web search", as Kimi declares them; None where Kimi has
    no formulas. Read from Kimi, then from this process's copy for an hour. Raises the SDK's
    errors for anything but a 404, ValueError for a shape not documented."""
    global _declared
    read = _declared
    if read is not None and time.monotonic() - read.at < DECLARATIONS_FOR:
        return read.tools
    tools: list[dict] | None = []
    try:
        tools = [tool for uri in FORMULAS.values() for tool in await _declared_by(uri)]
    except openai.NotFoundError:
        log.info("Kimi has no formulas here: web search falls back to $web_search")
        tools = None
    _declared = _Declared(tools, time.monotonic())
    return tools


async def _declared_by(uri: str) -> list[dict]:
    body = await kimi.client().get(f"/formulas/{uri}/tools", cast_to=object)
    tools = body.get("tools") if isinstance(body, dict) else None
    if not isinstance(tools, list):
        raise ValueError("Kimi declared its tools in an unexpected shape")
    return tools


async def fiber(name: str, arguments: str) -> str:
    """Run one call Kimi made: its output (or encrypted output), verbatim. Raises FiberFailed."""
    uri = FORMULAS.get(name)
    if uri is None:
        raise FiberFailed(f"no formula declares {name}")
    try:
        async with asyncio.timeout(TIMEOUT):
            body: Any = await kimi.client().post(
                f"/formulas/{uri}/fibers",
                body={"name": name, "arguments": arguments},
                cast_to=object,
            )
    except (openai.APIError, TimeoutError) as e:
        raise FiberFailed(repr(e)) from e
    context = body.get("context") if isinstance(body, dict) else None
    if body.get("status") != "succeeded" or not isinstance(context, dict):
        raise FiberFailed(str(body.get("error") or (context or {}).get("error") or "failed"))
    for key in ("output", "encrypted_output"):
        if isinstance(context.get(key), str):
            return context[key]
    raise FiberFailed("no output")
