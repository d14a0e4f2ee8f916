"""POST /v1/responses: OpenAI's Responses API over Kimi's chat completions, streamed (the
Responses API's events) or not. A response continues another (`previous_response_id`) of the
same key where API_KEEP_CONVERSATIONS keeps calls: each is then a conversation of its user's
too, as chat completions are."""

import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

import kimi
from api import translate
from api.errors import Refusal
from api.gateway import _db, call_open, finish, upstream_error
from api.http import bearer, endpoint, read_json, refusal_response
from api.models import ApiCall
from api.relay import Progress, answered, closed_if_dropped
from api.requests import chat_body
from api.services import Call, Outcome, key_user

log = logging.getLogger(__name__)


def _history(key_text: str, previous: Any) -> list[dict[str, Any]]:
    """The messages of the response `previous` continues, one of the same key's."""
    if previous is None:
        return []
    if not settings.API_KEEP_CONVERSATIONS:
        raise Refusal(
            400,
            "invalid_request_error",
            _(
                "This server keeps no responses (API_KEEP_CONVERSATIONS is off): send the "
                "whole conversation as “input” instead of “previous_response_id”."
            ),
            code="previous_response_not_found",
        )
    key, _user = key_user(text=key_text)
    found = (
        ApiCall.objects.filter(key=key, response_id=str(previous))
        .exclude(transcript=None)
        .values_list("transcript", flat=True)
        .first()
    )
    if not isinstance(found, list):
        raise Refusal(
            400,
            "invalid_request_error",
            _("No response %(id)s was kept for this key.") % {"id": str(previous)[:80]},
            code="previous_response_not_found",
        )
    return found


@endpoint("POST")
async def create(request: HttpRequest) -> HttpResponseBase:
    response_id = translate.new_id("resp")
    try:
        body = read_json(request)
        history = await _db(_history)(bearer(request), body.get("previous_response_id"))
        chat, _usage = chat_body(translate.chat_request(body, history))
        call = await call_open(request, chat, response_id)
    except Refusal as refusal:
        return refusal_response(refusal)
    created = int(time.time())
    outcome = Outcome(status=499, reached_kimi=True)  # stands if the client leaves
    relayed = opened = False
    try:
        upstream = await kimi.completion_open(body=chat)
        opened = True
        if chat["stream"]:
            relayed = True
            events = Events(
                upstream, call, chat, translate.response_object(body, response_id, created)
            )
            stream = closed_if_dropped(events.run(), events.progress, events.never_started)
            response = StreamingHttpResponse(stream, content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        try:
            data = await upstream.read()
        finally:
            await upstream.close()
        outcome = answered(data)
        tokens = await finish(call, chat, outcome)
        made = translate.response_object(body, response_id, created)
        made["output"] = translate.output_items(
            outcome.content, outcome.thinking, outcome.tool_calls
        )
        made["usage"] = translate.usage(tokens, outcome.thinking, outcome.raw_usage)
        made = translate.finished(made, outcome.finish_reason)
        return HttpResponse(json.dumps(made, ensure_ascii=False), content_type="application/json")
    except Exception as e:
        status, refused = upstream_error(e)
        outcome = Outcome(status=status, reached_kimi=opened)
        return refused
    finally:
        if not relayed and outcome.status != 200:
            await finish(call, chat, outcome)


class Events:
    """Kimi's stream read chunk by chunk and told as the Responses API's events: the
    reasoning as a summary, the answer's text, its function calls, then the whole response
    with its usage (or, where Kimi failed, the response failed)."""

    def __init__(self, upstream: Any, call: Call, chat: dict[str, Any], state: dict) -> None:
        self.upstream, self.call, self.chat, self.state = upstream, call, chat, state
        self.sequence = 0
        self.items: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the reasoning or message being written
        self.text = {"reasoning": "", "message": ""}
        self.calls: dict[int, dict[str, Any]] = {}
        self.outcome = Outcome(status=200, reached_kimi=True)
        self.progress = Progress()

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    async def never_started(self) -> None:
        await self.finish(499)

    async def run(self) -> AsyncGenerator[bytes, None]:
        self.progress.started = True
        yield self.event("response.created", response=self.state)
        yield self.event("response.in_progress", response=self.state)
        try:
            async for line in self.upstream.iter_lines():
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                chunk = kimi.event_chunk(line[5:].strip().encode(), self.upstream.http_request)
                for event in self.chunk(chunk):
                    yield event
            for event in self.close_open():
                yield event
            for event in self.close_calls():
                yield event
            tokens = await self.finish(200)
            self.state["output"] = self.items
            self.state["usage"] = translate.usage(
                tokens, self.outcome.thinking, self.outcome.raw_usage
            )
            done = translate.finished(self.state, self.outcome.finish_reason)
            kind = "response.completed" if done["status"] == "completed" else "response.incomplete"
            yield self.event(kind, response=done)
        except Exception as e:
            log.info("API response stream from Kimi failed: %r", e)
            status, refused = upstream_error(e)
            await self.finish(status)
            self.state["status"] = "failed"
            message = json.loads(refused.content)["error"]["message"]
            self.state["error"] = {"code": "server_error", "message": message}
            yield self.event("response.failed", response=self.state)
        finally:
            if not self.progress.finished:
                await self.finish(499)  # the client left

    async def finish(self, status: int) -> tuple[int, int, int]:
        self.progress.finished = True
        self.outcome.status = status
        self.outcome.content, self.outcome.thinking = self.text["message"], self.text["reasoning"]
        self.outcome.tool_calls = [self.calls[i] for i in sorted(self.calls)] or None
        tokens = await finish(self.call, self.chat, self.outcome)
        with contextlib.suppress(Exception):
            await self.upstream.close()
        return tokens

    def chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        self.outcome.model = str(chunk.get("model") or self.outcome.model)
        self.outcome.estimated_completion += 1
        choice = (chunk.get("choices") or [{}])[0]
        usage = chunk.get("usage") or (choice.get("usage") if isinstance(choice, dict) else None)
        if isinstance(usage, dict):
            self.outcome.usage, self.outcome.raw_usage = kimi.usage_of(usage), usage
        if not isinstance(choice, dict):
            return []
        if choice.get("finish_reason"):
            self.outcome.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        events = []
        for part, words in (
            ("reasoning", delta.get("reasoning_content")),
            ("message", delta.get("content")),
        ):
            if words:
                events += self.write(part, str(words))
        for piece in delta.get("tool_calls") or []:
            events += self.close_open()
            call = self.calls.setdefault(
                int(piece.get("index") or 0),
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            call["id"] = piece.get("id") or call["id"]
            function = piece.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""
        return events

    def write(self, part: str, words: str) -> list[bytes]:
        """Words of the reasoning or of the message: the item opened first where needed."""
        events = []
        if self.open is None or self.open["type"] != part_type(part):
            events += self.close_open()
            events += self.open_item(part)
        assert self.open is not None
        self.text[part] += words
        where = {"item_id": self.open["id"], "output_index": len(self.items)}
        if part == "reasoning":
            events.append(
                self.event(
                    "response.reasoning_summary_text.delta", summary_index=0, delta=words, **where
                )
            )
        else:
            events.append(
                self.event(
                    "response.output_text.delta", content_index=0, delta=words, logprobs=[], **where
                )
            )
        return events

    def open_item(self, part: str) -> list[bytes]:
        index = len(self.items)
        if part == "reasoning":
            self.open = translate.reasoning_item(translate.new_id("rs"), "")
            summary = {"type": "summary_text", "text": ""}
            return [
                self.event("response.output_item.added", output_index=index, item=self.open),
                self.event(
                    "response.reasoning_summary_part.added",
                    item_id=self.open["id"],
                    output_index=index,
                    summary_index=0,
                    part=summary,
                ),
            ]
        self.open = translate.message_item(translate.new_id("msg"), "", status="in_progress")
        text = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [
            self.event("response.output_item.added", output_index=index, item=self.open),
            self.event(
                "response.content_part.added",
                item_id=self.open["id"],
                output_index=index,
                content_index=0,
                part=text,
            ),
        ]

    def close_open(self) -> list[bytes]:
        if self.open is None:
            return []
        index, item_id = len(self.items), self.open["id"]
        if self.open["type"] == "reasoning":
            text = self.text["reasoning"]
            item = translate.reasoning_item(item_id, text)
            summary = {"type": "summary_text", "text": text}
            events = [
                self.event(
                    "response.reasoning_summary_text.done",
                    item_id=item_id,
                    output_index=index,
                    summary_index=0,
                    text=text,
                ),
                self.event(
                    "response.reasoning_summary_part.done",
                    item_id=item_id,
                    output_index=index,
                    summary_index=0,
                    part=summary,
                ),
            ]
        else:
            text = self.text["message"]
            item = translate.message_item(item_id, text)
            events = [
                self.event(
                    "response.output_text.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                ),
                self.event(
                    "response.content_part.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    part=item["content"][0],
                ),
            ]
        events.append(self.event("response.output_item.done", output_index=index, item=item))
        self.items.append(item)
        self.open = None
        return events

    def close_calls(self) -> list[bytes]:
        events = []
        for position in sorted(self.calls):
            call, index = self.calls[position], len(self.items)
            item_id = translate.new_id("fc")
            arguments = call["function"]["arguments"]
            events += [
                self.event(
                    "response.output_item.added",
                    output_index=index,
                    item=translate.call_item(item_id, call, status="in_progress"),
                ),
                self.event(
                    "response.function_call_arguments.delta",
                    item_id=item_id,
                    output_index=index,
                    delta=arguments,
                ),
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    arguments=arguments,
                    name=call["function"]["name"],
                ),
            ]
            item = translate.call_item(item_id, call)
            events.append(self.event("response.output_item.done", output_index=index, item=item))
            self.items.append(item)
        return events


def part_type(part: str) -> str:
    return "reasoning" if part == "reasoning" else "message"
