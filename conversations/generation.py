"""One answer streamed from Kimi, owned by the server rather than by a socket.

A generation streams in its own asyncio task, publishes what it receives to every page of the
conversation (kimichat/live.py), saves the text about once a second and at the end, and keeps
going when the tab that asked closes. Stop and resend requests reach it from any socket in any
process. Opening the stream (with retries) is kimichat/kimi.py's; what comes before and after
the answer is services'."""

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import services
from conversations.models import Message
from conversations.services import Answering, Refused
from kimichat import catalogue, kimi, live
from uploads.models import UploadedFile

log = logging.getLogger(__name__)

# First token goes out at once; after that, tokens are coalesced into one frame per interval.
FRAME_INTERVAL = 0.04
SAVE_INTERVAL = 1.0
# While waiting for files to be read, look again this often should a "read" event be lost.
FILES_RECHECK = 5.0
# While the channel layer is unreachable, try to hear Stop (and send a final frame) again
# this often, the final frame for this long.
RELISTEN = 2.0
REPUBLISH_FOR = 120.0
FINAL_SAVE_FOR = 120.0

# Conversation id → the generation running for it in this process.
_running: dict[int, "Generation"] = {}

# While this process renews its answers' leases (conversations/resume.py sets it): how long
# after its lease was taken or renewed an answer surely still holds it. Past that, nothing
# more of it goes to the pages until a renewal says it holds, so two processes never stream
# one answer (a renewal held up on a busy machine lets another take the answer over).
lease_holds_for: float | None = None


@dataclass(eq=False)
class Part:
    """A part of the answer as it streams (what Kimi thinks, or the answer): the text sent to
    the pages, and the text received since."""

    published: list[str] = field(default_factory=list)
    published_len: int = 0
    pending: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.published) + "".join(self.pending)

    def published_text(self) -> str:
        return "".join(self.published)


@dataclass
class ToolCall:
    """A call Kimi makes to a tool, joined from the pieces a stream sends."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(eq=False)
class Generation:
    conversation_id: int
    answer: Message
    messages: list[dict]  # the request; built once `waiting` files are read
    params: dict[str, Any]
    user_id: int  # whose answer: the files waited for and the tokens spent are theirs
    waiting: list[UploadedFile] = field(default_factory=list)
    task: asyncio.Task | None = None
    parts: dict[str, Part] = field(default_factory=lambda: {p: Part() for p in live.PARTS})
    stop_requested: bool = False
    listening: asyncio.Event = field(default_factory=asyncio.Event)  # Stop can reach it now
    reached_upstream: bool = False  # Kimi took the request: its tokens count as spent
    searches: int = 0
    thinking_since: float | None = None  # when the first thought came
    thinking_seconds: float | None = None  # how long it thought, once the answer began
    # Tokens Kimi counted for this generation's requests (each web search round adds up).
    spent: dict[str, int] = field(default_factory=dict)
    # Continuing an answer: the tokens it had spent, and how much of each part was written.
    carried: dict[str, int] = field(default_factory=dict)
    carried_text: dict[str, int] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _files_changed: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False
    _status_shown: bool = False  # a status line is on the page (retrying, searching, …)
    _resting: asyncio.Future | None = None  # the pump's wait between two frames
    _thought_due: bool = False  # the answer began: the pages fold the thinking
    # Taken over from a process that stopped (resume.py): the pages are shown the answer as
    # saved first, and a failure leaves it interrupted, to Continue, rather than failed.
    resumed: bool = False
    handing_over: bool = False  # this process stops: saved, and left for another to go on
    lost: bool = False  # another process holds its lease now: this one writes nothing more
    lease_holds_until: float = math.inf  # time.monotonic(): see `lease_holds_for`
    _renewed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def text(self) -> str:
        return self.parts[live.BODY].text

    def published_text(self, part: str = live.BODY) -> str:
        return self.parts[part].published_text()

    def stop(self) -> None:
        self.stop_requested = True
        if self.task:
            self.task.cancel()

    def hand_over(self) -> None:
        """End here, saved and still streaming, with its lease given up: another process
        takes it over at once and goes on from the saved text."""
        self.handing_over = True
        if self.task:
            self.task.cancel()

    def lose(self) -> None:
        """Its lease lapsed and another process took it (this one could not renew it in
        time): end without a word more, written or sent."""
        self.lost = True
        self._renewed.set()
        if self.task:
            self.task.cancel()

    def lease_renewed(self, since: float) -> None:
        """Its lease was taken or renewed at `since` (time.monotonic(), taken before)."""
        if lease_holds_for is not None:
            until = since + lease_holds_for
            held = self.lease_holds_until
            self.lease_holds_until = until if math.isinf(held) else max(held, until)
        self._renewed.set()

    async def _holds_lease(self) -> bool:
        """Whether this process still writes the answer: at once while its lease surely
        holds, otherwise once the next renewal (or the loss of the answer) says."""
        while not self.lost and time.monotonic() >= self.lease_holds_until:
            self._renewed.clear()
            await self._renewed.wait()
        return not self.lost

    async def run(self) -> Message:
        """Stream the answer to its end (or Stop, or an error), through any web search
        rounds, and save it: the answer as saved."""
        fields: dict[str, Any] = {}
        pump = asyncio.create_task(self._pump())
        listener = asyncio.create_task(self._listen())
        try:
            if self.resumed:
                await self._rewind()
            if self.waiting:
                await self._wait_for_files()
            await self._rounds(fields)
        except asyncio.CancelledError:
            if self.handing_over and not self.stop_requested:
                # Left streaming, its lease lapsed now: the next process goes on with it.
                fields.update(lease_owner="", lease_expires=timezone.now())
            else:
                # Stop keeps the partial answer; any other cancel is the process shutting down.
                fields["state"] = (
                    Message.State.STOPPED if self.stop_requested else Message.State.INTERRUPTED
                )
        except Refused as e:
            # A file it refers to could not be read, or the files are too long for the model.
            fields.update(state=Message.State.ERROR, error_code="refused", error=str(e))
        except Exception as e:
            if not isinstance(e, openai.APIError | kimi.NoKeyConfigured):
                log.exception("Generation for message %s failed", self.answer.pk)
            code, detail = kimi.error_code(e)
            fields.update(state=Message.State.ERROR, error_code=code, error=detail)
            if self.resumed and self.text:
                # Kimi would not go on (no key, a refusal): the words so far stay, to Continue.
                fields["state"] = Message.State.INTERRUPTED
        finally:
            listener.cancel()
            await self._finish(pump, fields)
            await asyncio.gather(listener, return_exceptions=True)
        return self.answer

    async def _rounds(self, fields: dict[str, Any]) -> None:
        """One request, and one more after each web search Kimi asks for (the search's
        arguments handed back as they came), up to KIMI_SEARCH_ROUNDS."""
        messages, params = list(self.messages), dict(self.params)
        for round_ in range(settings.KIMI_SEARCH_ROUNDS + 1):
            if round_ == settings.KIMI_SEARCH_ROUNDS:
                params.pop("tools", None)  # enough searching: now it answers
            stream = await kimi.stream_open(
                model=self.answer.model, messages=messages, params=params, on_retry=self._retrying
            )
            self.reached_upstream = True
            try:
                if round_ == 0:
                    await self._status("")
                calls, reasoning = await self._stream(stream, fields)
            finally:
                # Closes the HTTP response, so Kimi stops generating (and billing) at once.
                await stream.close()
            if fields.get("finish_reason") != "tool_calls" or not calls:
                break
            await self._status(_("Searching the web…"))
            self.searches += len(calls)
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
            if reasoning:
                asked["reasoning_content"] = reasoning  # Kimi refuses the turn without it
            messages.append(asked)
            messages += [
                {
                    "role": "tool",
                    "tool_call_id": call.id,
                    "name": call.name,
                    # Kimi ran the search itself: its arguments go back unchanged.
                    "content": call.arguments,
                }
                for call in calls
            ]
        if fields.get("finish_reason") in ("stop", "length"):
            fields["state"] = Message.State.DONE
        else:
            fields.update(state=Message.State.ERROR, error_code="cut_off")

    async def _stream(
        self, stream: kimi.ChunkStream, fields: dict[str, Any]
    ) -> tuple[list[ToolCall], str]:
        """Read one response: its text into the parts, its tool calls joined by index, its
        usage added up; the calls and this round's reasoning."""
        loop = asyncio.get_running_loop()
        next_save = loop.time() + SAVE_INTERVAL
        saving: asyncio.Task | None = None
        calls: dict[int, ToolCall] = {}
        thought = len(self.parts[live.THINKING].text)
        answering = False
        fields.pop("finish_reason", None)
        async for chunk in stream:
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta") or {}
                # Kimi's own field (kimi-api.md §2).
                reasoning = delta.get("reasoning_content")
                if reasoning:
                    self._received(live.THINKING, reasoning)
                content = delta.get("content")
                if content:
                    if not answering:
                        answering = True
                        await self._answer_begins()
                    self._received(live.BODY, content)
                for piece in delta.get("tool_calls") or ():
                    call = calls.setdefault(piece.get("index", 0), ToolCall())
                    call.id += piece.get("id") or ""
                    function = piece.get("function")
                    if function:
                        call.name += function.get("name") or ""
                        call.arguments += function.get("arguments") or ""
                if choice.get("finish_reason"):
                    fields["finish_reason"] = choice["finish_reason"]
            usage = kimi.chunk_usage(chunk)
            if usage:
                self._count(usage)
            if loop.time() >= next_save and (saving is None or saving.done()):
                # Saved beside the stream, never in its way: tokens keep flowing meanwhile.
                next_save = loop.time() + SAVE_INTERVAL
                saving = asyncio.create_task(self._save(**self._texts()))
        return list(calls.values()), self.parts[live.THINKING].text[thought:]

    def _received(self, part: str, text: str) -> None:
        if part == live.THINKING and self.thinking_since is None:
            self.thinking_since = time.monotonic()
        self.parts[part].pending.append(text)
        self._wake.set()

    async def _answer_begins(self) -> None:
        """The first words of the answer (this round's): the thinking folds on every page,
        and a status line (searching the web) goes."""
        if self.thinking_since is not None and self.thinking_seconds is None:
            self.thinking_seconds = time.monotonic() - self.thinking_since
            self._thought_due = True  # the pump sends it, after the first words
            self._hurry()
        await self._status("")

    def _count(self, usage: kimi.Usage) -> None:
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens"):
            self.spent[name] = self.spent.get(name, 0) + (getattr(usage, name) or 0)
        self.spent["counted"] = 1

    def _texts(self) -> dict[str, Any]:
        return {"content": self.text, "reasoning": self.parts[live.THINKING].text}

    async def _wait_for_files(self) -> None:
        """Wait (visibly) until every file the question refers to is read, then build the
        request with their text."""
        names = ", ".join(f"“{f.name}”" for f in self.waiting)
        await self._status(_("Waiting for %(names)s to be read…") % {"names": names})
        await self.listening.wait()  # hears when a file is read from now on
        while True:
            self._files_changed.clear()
            request = await database_sync_to_async(services.request_when_ready)(answer=self.answer)
            if request is not None:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._files_changed.wait(), FILES_RECHECK)
        self.messages = request.messages
        self.answer.model = request.model
        self.answer.sources = request.sources
        await self._status("")

    async def _retrying(self, delay: float, attempt: int) -> None:
        await self._status(
            _("Kimi is busy. Trying again in %(seconds)s s (attempt %(n)s of %(of)s)…")
            % {"seconds": f"{delay:.0f}", "n": attempt + 1, "of": settings.KIMI_MAX_RETRIES + 1}
        )

    async def _status(self, text: str) -> None:
        if not text and not self._status_shown:
            return
        self._status_shown = bool(text)
        html = render_to_string(
            "conversations/_status_frame.html", {"message": self.answer, "status": text}
        )
        await live.publish_html(self.conversation_id, html)

    async def _thought(self) -> None:
        self.answer.thinking_seconds = self.thinking_seconds
        html = render_to_string("conversations/_thought_frame.html", {"message": self.answer})
        await live.publish_html(self.conversation_id, html)

    async def _rewind(self) -> None:
        """Taken over: every page shows the answer as saved, and goes on from there."""
        html = await database_sync_to_async(_render_frame)(self.answer)
        offsets = {name: part.published_len for name, part in self.parts.items()}
        await live.publish_rewind(
            self.conversation_id, message_id=self.answer.pk, offsets=offsets, html=html
        )

    async def _listen(self) -> None:
        """Take Stop and resend requests from any socket, in any process; hear when a file
        waited for is read. While the channel layer is unreachable (Redis down), join again
        every few seconds: the answer goes on meanwhile."""
        while True:
            try:
                await self._listen_once()
                return
            except Exception as e:  # the layer's transport failed
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the answer ended: a cancel the transport took for an error
                log.info("Answer %s cannot hear Stop for now: %r", self.answer.pk, e)
                self.listening.set()  # waiting for files falls back on looking again
                await asyncio.sleep(RELISTEN)

    async def _listen_once(self) -> None:
        groups = [live.control_group(self.conversation_id)]
        if self.waiting:
            groups.append(live.files_group(self.user_id))
        async with live.Listener(groups) as listener:
            self.listening.set()
            while True:
                event = await listener.receive()
                if event["type"] == live.FILE_CHANGED:
                    self._files_changed.set()
                elif event["type"] == live.STOP:
                    self.stop()
                    return
                elif event["type"] == live.RESEND and event["message_id"] == self.answer.pk:
                    start, part = event["start"], event.get("part", live.BODY)
                    if part in self.parts and await self._holds_lease():
                        await live.send_tokens(
                            event["reply_to"],
                            message_id=self.answer.pk,
                            part=part,
                            start=start,
                            text=self.published_text(part)[start:],
                        )

    async def _save(self, *, content: str, reasoning: str) -> None:
        try:
            saved = await database_sync_to_async(services.answer_progress)(
                answer_id=self.answer.pk, content=content, reasoning=reasoning
            )
        except DatabaseError as e:
            # The database is restarting, say: the next save (or the final one) catches up.
            log.warning("Saving answer %s failed for now: %r", self.answer.pk, e)
            return
        if not saved and not self.lost:
            log.warning("Answer %s was taken over by another process", self.answer.pk)
            self.lose()

    async def _finish(self, pump: asyncio.Task, fields: dict[str, Any]) -> None:
        self._closing = True
        self._wake.set()
        await pump
        if self.lost:
            if _running.get(self.conversation_id) is self:
                del _running[self.conversation_id]
            return
        answer = self.answer
        if self.thinking_since is not None and self.thinking_seconds is None:
            self.thinking_seconds = time.monotonic() - self.thinking_since  # stopped mid-thought
        fields.update(self._texts(), thinking_seconds=self.thinking_seconds)
        fields.update(searches=self.searches)
        if self.spent.get("counted"):
            fields.update(
                {
                    name: self.carried.get(name, 0) + self.spent[name]
                    for name in ("prompt_tokens", "completion_tokens", "cached_tokens")
                }
            )
        usage = self._usage()
        if self.handing_over and usage and not self.spent.get("counted"):
            # The next writer carries these on: the answer's count ends whole.
            fields.update(
                prompt_tokens=self.carried.get("prompt_tokens", 0) + usage["prompt_tokens"],
                completion_tokens=(
                    self.carried.get("completion_tokens", 0) + usage["completion_tokens"]
                ),
            )
        for name, value in fields.items():
            setattr(answer, name, value)
        try:
            # Markdown rendering is CPU work: done beside the save, off the event loop, so
            # other streams' tokens keep flowing. Runs after any save still in flight.
            html = await _final_save(answer, fields, usage)
            if html is None:
                log.warning("Answer %s was taken over by another process", answer.pk)
            elif not await live.publish_html(self.conversation_id, html):
                # Redis is away: the pages are shown the end once it is back.
                _later.add(asyncio.create_task(_publish_when_back(self.conversation_id, html)))
        finally:
            if _running.get(self.conversation_id) is self:
                del _running[self.conversation_id]

    def _usage(self) -> dict[str, Any] | None:
        """The tokens this generation spent, for the ledger: Kimi's count, or an estimate
        where the stream was stopped or broke before Kimi counted (it bills what it
        generated)."""
        if not self.reached_upstream:
            return None
        if self.spent.get("counted"):
            prompt, completion = self.spent["prompt_tokens"], self.spent["completion_tokens"]
        else:
            prompt = sum(catalogue.estimate_tokens(str(m["content"])) for m in self.messages)
            written = "".join(
                part.text[self.carried_text.get(name, 0) :] for name, part in self.parts.items()
            )
            completion = catalogue.estimate_tokens(written)
        return {
            "user_id": self.user_id,
            "model": self.answer.model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cached_tokens": self.spent.get("cached_tokens", 0),
            "searches": self.searches,
        }

    async def _pump(self) -> None:
        """Send pending text: at once when idle, otherwise at most once per FRAME_INTERVAL.
        Ends once the stream has ended and nothing is left to send. Thinking goes first."""
        parts = [(name, self.parts[name]) for name in (live.THINKING, live.BODY)]
        while not (self._closing and not any(part.pending for _, part in parts)):
            await self._wake.wait()
            self._wake.clear()
            if not await self._holds_lease():
                return  # another process writes it now: what is pending is its to send
            # Taken together before any is sent: a thought that comes while the answer's
            # words are being sent waits for the next frame, never overtakes them.
            frames = []
            for name, part in parts:
                if part.pending:
                    text = "".join(part.pending)
                    part.pending.clear()
                    frames.append((name, part.published_len, text))
                    part.published.append(text)
                    part.published_len += len(text)
            for name, start, text in frames:
                await live.publish_tokens(
                    self.conversation_id,
                    message_id=self.answer.pk,
                    part=name,
                    start=start,
                    text=text,
                )
            if self._thought_due:
                self._thought_due = False
                await self._thought()
            if not self._closing:
                await self._rest()

    async def _rest(self) -> None:
        """Wait FRAME_INTERVAL before the next frame, unless hurried: the first words of the
        answer go at once, like the first thought did."""
        loop = asyncio.get_running_loop()
        self._resting = loop.create_future()
        timer = loop.call_later(FRAME_INTERVAL, _settle, self._resting)
        try:
            await self._resting
        finally:
            timer.cancel()
            self._resting = None

    def _hurry(self) -> None:
        if self._resting is not None:
            _settle(self._resting)


# Final frames waiting for the channel layer to come back (held so they are not collected).
_later: set[asyncio.Task] = set()


async def _publish_when_back(conversation_id: int, html: str) -> None:
    """Send an answer's final frame once the channel layer is reachable again (for up to
    REPUBLISH_FOR seconds; a page reconnecting later reads the answer from the database)."""
    try:
        for _ in range(int(REPUBLISH_FOR / RELISTEN)):
            await asyncio.sleep(RELISTEN)
            if await live.publish_html(conversation_id, html):
                return
    finally:
        task = asyncio.current_task()
        if task is not None:
            _later.discard(task)


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def _final_save(answer: Message, fields: dict[str, Any], usage: dict | None) -> str | None:
    """The final save, tried again while the database is unreachable (a PostgreSQL restart
    under a running answer), for up to FINAL_SAVE_FOR seconds; the answer's frame (None:
    another process took the answer over, and says how it ends)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + FINAL_SAVE_FOR
    retry = False
    while True:
        try:
            return await database_sync_to_async(_finish_and_render)(answer, fields, usage, retry)
        except DatabaseError as e:
            if loop.time() > give_up:
                raise
            log.warning("Saving answer %s failed; trying again: %r", answer.pk, e)
            retry = True
            await asyncio.sleep(RELISTEN)


def _finish_and_render(
    answer: Message, fields: dict[str, Any], usage: dict | None, retry: bool = False
) -> str | None:
    if retry:
        close_old_connections()  # the broken connection goes; the save opens a new one
    if not services.answer_finish(answer=answer, fields=fields, usage=usage):
        return None
    return _render_frame(answer)


def _render_frame(answer: Message) -> str:
    answer.versions = answer.sibling_versions()
    return render_to_string("conversations/_message_frame.html", {"message": answer})


def generation_start(*, answering: Answering, user_id: int, resumed: bool = False) -> Generation:
    """Write the answer in a task of its own; a new chat is named after its first answer.
    An answer that has text already (Continue) goes on from it: the pages show it, and its
    offsets and tokens carry on."""
    request, answer = answering.request, answering.answer
    generation = Generation(
        conversation_id=answering.conversation.pk,
        answer=answer,
        messages=request.messages if request else [],
        params=answering.params,
        user_id=user_id,
        waiting=answering.waiting,
        resumed=resumed,
        # Continue: the thinking was done before; its "Thought for N s" stays.
        thinking_seconds=answer.thinking_seconds,
    )
    for name, text in ((live.BODY, answer.content), (live.THINKING, answer.reasoning)):
        generation.parts[name] = Part(published=[text], published_len=len(text))
        generation.carried_text[name] = len(text)
    for name in ("prompt_tokens", "completion_tokens", "cached_tokens"):
        generation.carried[name] = getattr(answer, name) or 0
    generation.lease_renewed(answering.leased_at)
    _running[generation.conversation_id] = generation
    generation.task = asyncio.create_task(_answer_then_title(generation, answering))
    return generation


async def _answer_then_title(generation: Generation, answering: Answering) -> None:
    answer = await generation.run()
    if answer.state == Message.State.DONE and answering.title_wanted:
        question = generation.messages[-1]["content"]
        if isinstance(question, list):  # with images: its text part
            question = " ".join(p.get("text", "") for p in question if p.get("type") == "text")
        await services.conversation_title(
            user_id=generation.user_id,
            conversation_id=generation.conversation_id,
            model=answer.model,
            question=question,
            answer=answer.content,
        )


def running(conversation_id: int) -> Generation | None:
    return _running.get(conversation_id)


def all_running() -> list[Generation]:
    """Every answer this process is writing."""
    return list(_running.values())
