"""Kimi's side of one answer: its rounds. A round opens a stream (with retries, kimi's),
reads its chunks into the parts of the answer (conversations/parts.py), and joins the tool
calls Kimi asks for; a tool round answers them (kimi/tools.py) and asks again, up to
tools.MAX_ROUNDS rounds. Where the request carries passages (a team library, documents too
long to send whole), Kimi may also search those files again itself (search_library,
uploads/library_search.py), beside web search or alone. The reader counts the tokens Kimi
says it spent and how long it thought; what it reads goes to the publisher (the pages) and
the writer (the saves)."""

import logging
import time
from collections.abc import Sequence
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils.translation import gettext as _

import kimi
from conversations.models import Message
from conversations.parts import BODY, PARTS, STEPS, THINKING
from conversations.publisher import Publisher
from conversations.writer import Writer
from kimi import catalogue, tools
from kimi.params import DISABLED
from uploads import library_search, retrieval

log = logging.getLogger(__name__)


class Reader:
    """Runs Kimi's rounds for one answer."""

    def __init__(
        self,
        answer: Message,
        messages: list[dict],
        params: dict[str, Any],
        *,
        publisher: Publisher,
        writer: Writer,
        web: bool = False,
        library: Sequence[int] = (),
    ) -> None:
        self.answer = answer
        self.messages = messages  # the request; built once the files waited for are read
        self.params = params
        self.publisher = publisher
        self.writer = writer
        self.web = web  # "Web search" on: Kimi may search and read pages (kimi/tools.py)
        # The files the request's passages came from: Kimi may search them (and only them).
        self.library = list(library)
        self.reached_upstream = False  # Kimi took the request: its tokens count as spent
        # Searches Kimi ran (each billed), and what its tools did, over every round (an
        # answer that goes on carries them on).
        self.tool_calls = answer.searches
        self.steps: list[dict] = list(answer.steps)
        # Tokens Kimi counted for this answer's requests (each round adds up).
        self.spent: dict[str, int] = {}
        self.thinking_since: float | None = None  # when the first thought came
        self.thinking_seconds: float | None = None  # how long it thought, once it answered

    async def rounds(self) -> dict[str, Any]:
        """Stream the answer to its end, through any tool rounds (up to tools.MAX_ROUNDS):
        how it ended, as fields of the answer (its state, finish reason, error)."""
        fields: dict[str, Any] = {}
        messages, params = list(self.messages), dict(self.params)
        declared = await tools.offered(self.answer.model) if self.web else None
        optional = catalogue.thinking(self.answer.model) == "optional"
        if declared == [tools.WEB_SEARCH_TOOL] and optional:
            params["extra_body"] = DISABLED  # Kimi's guides never think with $web_search
        if self.library:
            declared = [*(declared or []), library_search.TOOL]
        if declared:
            params["tools"] = declared
        for round_ in range(tools.MAX_ROUNDS + 1):
            if round_ == tools.MAX_ROUNDS:
                params["tool_choice"] = "none"  # enough tool rounds: now it answers
            stream = await kimi.stream_open(
                model=self.answer.model, messages=messages, params=params, on_retry=self._retrying
            )
            self.reached_upstream = True
            try:
                if round_ == 0:
                    await self.publisher.status("")
                calls, thinking = await self._stream(stream, fields)
            finally:
                # Closes the HTTP response, so Kimi stops generating (and billing) at once.
                await stream.close()
            if fields.get("finish_reason") != "tool_calls" or not calls or not declared:
                break
            last = round_ == tools.MAX_ROUNDS - 1
            messages += await self.tool_round(calls, thinking, last=last)
        if fields.get("finish_reason") in ("stop", "length"):
            fields["state"] = Message.State.DONE
        else:
            fields.update(state=Message.State.ERROR, error_code="cut_off")
        return fields

    async def tool_round(
        self, calls: list[tools.ToolCall], thinking: str, *, last: bool = False
    ) -> list[dict[str, Any]]:
        """Answer the calls Kimi asked for, each step shown as it goes ("Searching: …",
        "Searching the library: …", "Reading: …", a part of the answer: saved, and caught up
        with, like its thinking): the messages that hand Kimi its turn and the results back.
        Only web searches count as searches (Kimi bills them)."""
        steps = [step for step in map(tools.step, calls) if step is not None]
        self.steps += steps
        self.tool_calls += sum(step["kind"] == "search" for step in steps)
        for step in steps:
            self.publisher.received(STEPS.name, tools.step_text(step) + "\n")
        if steps:
            await self.publisher.status(tools.step_text(steps[-1]))
        own = {tools.LIBRARY: self._search_library} if self.library else {}
        results = await tools.run_all(calls, last=last, runners=own)
        return tools.turn(calls, results, thinking)

    async def _search_library(self, call: tools.ToolCall) -> str:
        """A search_library call, answered from the request's files and no other; the
        passages Kimi is given join the answer's sources (each once)."""
        try:
            text, found = await database_sync_to_async(library_search.library_search)(
                file_ids=self.library, arguments=call.arguments
            )
        except DatabaseError as e:
            log.warning("Answer %s could not search its library: %r", self.answer.pk, e)
            return tools.UNAVAILABLE
        self.answer.sources = retrieval.unique_sources([*self.answer.sources, *found])
        return text

    async def _stream(
        self, stream: kimi.ChunkStream, fields: dict[str, Any]
    ) -> tuple[list[tools.ToolCall], str]:
        """Read one response: its text into the parts, its tool calls joined, its usage
        added up; the calls and this round's thinking."""
        self.writer.round_started()
        calls = tools.Calls()
        before = len(self.publisher.text(THINKING.name))
        answering = False
        fields.pop("finish_reason", None)
        async for chunk in stream:
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta") or {}
                for part in PARTS:
                    text = delta.get(part.delta)
                    if not text:
                        continue
                    if part is BODY and not answering:
                        answering = True
                        await self._answer_begins()
                    self._received(part.name, text)
                calls.add(delta.get("tool_calls") or ())
                if choice.get("finish_reason"):
                    fields["finish_reason"] = choice["finish_reason"]
            usage = kimi.chunk_usage(chunk)
            if usage:
                self._count(usage)
            self.writer.save_soon(self.publisher.saved)
        return calls.all(), self.publisher.text(THINKING.name)[before:]

    def _received(self, part: str, text: str) -> None:
        if part == THINKING.name and self.thinking_since is None:
            self.thinking_since = time.monotonic()
        self.publisher.received(part, text)

    async def _answer_begins(self) -> None:
        """The first words of the answer (this round's): the thinking folds on every page,
        and a status line (searching the web) goes."""
        if self.thinking_since is not None and self.thinking_seconds is None:
            self.thinking_seconds = time.monotonic() - self.thinking_since
            self.publisher.thinking_ended(self.thinking_seconds)
        await self.publisher.status("")

    def thinking_time(self) -> float | None:
        """How long Kimi thought (so far, where it was stopped mid-thought)."""
        if self.thinking_since is not None and self.thinking_seconds is None:
            self.thinking_seconds = time.monotonic() - self.thinking_since
        return self.thinking_seconds

    def _count(self, usage: kimi.Usage) -> None:
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens"):
            self.spent[name] = self.spent.get(name, 0) + (getattr(usage, name) or 0)
        self.spent["counted"] = 1

    async def _retrying(self, delay: float, attempt: int) -> None:
        await self.publisher.status(
            _("Kimi is busy. Trying again in %(seconds)s s (attempt %(n)s of %(of)s)…")
            % {"seconds": f"{delay:.0f}", "n": attempt + 1, "of": settings.KIMI_MAX_RETRIES + 1}
        )

    def usage(self, user_id: int, written: str) -> dict[str, Any] | None:
        """The tokens this answer's rounds spent, for the ledger: Kimi's count, or an
        estimate where the stream was stopped or broke before Kimi counted (it bills what it
        generated); `written` is the text this writer received."""
        if not self.reached_upstream:
            return None
        if self.spent.get("counted"):
            prompt, completion = self.spent["prompt_tokens"], self.spent["completion_tokens"]
        else:
            prompt = sum(catalogue.estimate_tokens(str(m["content"])) for m in self.messages)
            completion = catalogue.estimate_tokens(written)
        return {
            "user_id": user_id,
            "model": self.answer.model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cached_tokens": self.spent.get("cached_tokens", 0),
            "searches": self.tool_calls,
        }
