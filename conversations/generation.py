"""One answer streamed from Kimi, owned by the server rather than by a socket.

A generation runs in its own asyncio task and keeps going when the tab that asked closes.
Its jobs are three: the reader runs Kimi's rounds (conversations/reader.py), the publisher
turns the parts of the answer into frames for every page (conversations/publisher.py), the
writer holds the answer's lease and saves it (conversations/writer.py). The generation
starts them, hears Stop, resend requests and files being read from any socket in any
process, and ends the answer. What comes before and after the answer is services'."""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import openai
from channels.db import database_sync_to_async
from django.utils import timezone
from django.utils.translation import gettext as _

import kimi
from conversations import chats, services
from conversations.models import Message
from conversations.parts import BODY
from conversations.publisher import Publisher
from conversations.reader import Reader
from conversations.services import Answering, Refused
from conversations.writer import RETRY_EVERY, Writer
from realtime import live
from uploads.models import UploadedFile

log = logging.getLogger(__name__)

# While waiting for files to be read, look again this often should a "read" event be lost.
FILES_RECHECK = 5.0
# While the channel layer is unreachable, try to hear Stop (and send a final frame) again
# this often, the final frame for this long.
RELISTEN = RETRY_EVERY
REPUBLISH_FOR = 120.0

# Conversation id → the generation running for it in this process.
_running: dict[int, "Generation"] = {}


@dataclass(eq=False)
class Generation:
    conversation_id: int
    answer: Message
    user_id: int  # whose answer: the files waited for and the tokens spent are theirs
    reader: Reader
    publisher: Publisher
    writer: Writer
    waiting: list[UploadedFile]
    # Taken over from a process that stopped (resume.py): the pages are shown the answer as
    # saved first, and a failure leaves it interrupted, to Continue, rather than failed.
    resumed: bool = False
    task: asyncio.Task | None = None
    stop_requested: bool = False
    handing_over: bool = False  # this process stops: saved, and left for another to go on

    def __post_init__(self) -> None:
        self.listening = asyncio.Event()  # Stop can reach it now
        self._files_changed = asyncio.Event()

    @property
    def lost(self) -> bool:
        return self.writer.lost

    @property
    def text(self) -> str:
        return self.publisher.text(BODY.name)

    def published_text(self, part: str = BODY.name) -> str:
        return self.publisher.published_text(part)

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
        """Another process took the answer: end without a word more, written or sent."""
        self.writer.lose()

    def _lost(self) -> None:
        if self.task:
            self.task.cancel()

    async def run(self) -> Message:
        """Stream the answer to its end (or Stop, or an error), through any tool rounds, and
        save it: the answer as saved."""
        fields: dict[str, Any] = {}
        pump = asyncio.create_task(self.publisher.pump())
        listener = asyncio.create_task(self._listen())
        try:
            if self.resumed:
                await self.publisher.rewind()
            if self.waiting:
                await self._wait_for_files()
            fields.update(await self.reader.rounds())
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
            try:
                await self._finish(pump, fields)
            finally:
                if _running.get(self.conversation_id) is self:
                    del _running[self.conversation_id]
            await asyncio.gather(listener, return_exceptions=True)
        return self.answer

    async def _finish(self, pump: asyncio.Task, fields: dict[str, Any]) -> None:
        self.publisher.close()
        await pump
        if self.writer.lost:
            return
        reader, writer = self.reader, self.writer
        texts = self.publisher.saved()
        fields.update(texts, thinking_seconds=reader.thinking_time(), searches=reader.tool_calls)
        # With what Kimi's own library searches found (reader.py).
        fields.update(steps=reader.steps, sources=self.answer.sources)
        if reader.spent.get("counted"):
            fields.update(writer.tokens(reader.spent))
        written = "".join(text[writer.carried_text.get(name, 0) :] for name, text in texts.items())
        usage = reader.usage(self.user_id, written)
        if self.handing_over and usage and not reader.spent.get("counted"):
            # The next writer carries these on: the answer's count ends whole.
            fields.update(
                {
                    name: writer.carried[name] + usage[name]
                    for name in ("prompt_tokens", "completion_tokens")
                }
            )
        html = await writer.finish(fields, usage)
        if html is None:
            log.warning("Answer %s was taken over by another process", self.answer.pk)
        elif not await live.publish_html(self.conversation_id, html):
            # Redis is away: the pages are shown the end once it is back.
            _later.add(asyncio.create_task(_publish_when_back(self.conversation_id, html)))

    async def _wait_for_files(self) -> None:
        """Wait (visibly) until every file the question refers to is read, then build the
        request with their text."""
        names = ", ".join(f"“{f.name}”" for f in self.waiting)
        await self.publisher.status(_("Waiting for %(names)s to be read…") % {"names": names})
        await self.listening.wait()  # hears when a file is read from now on
        while True:
            self._files_changed.clear()
            request = await database_sync_to_async(services.request_when_ready)(answer=self.answer)
            if request is not None:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._files_changed.wait(), FILES_RECHECK)
        self.reader.messages = request.messages
        self.answer.model = request.model
        self.answer.sources = request.sources
        self.reader.library = request.library
        await self.publisher.status("")

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
                    await self.publisher.resend(
                        part=event.get("part", BODY.name),
                        start=event["start"],
                        reply_to=event["reply_to"],
                    )


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


def generation_start(*, answering: Answering, user_id: int, resumed: bool = False) -> Generation:
    """Write the answer in a task of its own; a new chat is named after its first answer.
    An answer that has text already (Continue) goes on from it: the pages show it, and its
    offsets and tokens carry on."""
    request, answer = answering.request, answering.answer
    conversation_id = answering.conversation.pk
    writer = Writer(answer)
    publisher = Publisher(conversation_id, answer, writer.holds_lease)
    reader = Reader(
        answer,
        request.messages if request else [],
        answering.params,
        publisher=publisher,
        writer=writer,
        web=answering.web,
        library=request.library if request else (),
    )
    # Continue: the thinking was done before; its "Thought for N s" stays.
    reader.thinking_seconds = answer.thinking_seconds
    generation = Generation(
        conversation_id=conversation_id,
        answer=answer,
        user_id=user_id,
        reader=reader,
        publisher=publisher,
        writer=writer,
        waiting=answering.waiting,
        resumed=resumed,
    )
    writer.on_lost = generation._lost
    writer.lease_renewed(answering.leased_at)
    _running[conversation_id] = generation
    generation.task = asyncio.create_task(_answer_then_title(generation, answering))
    return generation


async def _answer_then_title(generation: Generation, answering: Answering) -> None:
    answer = await generation.run()
    if answer.state == Message.State.DONE and answering.title_wanted:
        question = generation.reader.messages[-1]["content"]
        if isinstance(question, list):  # with images: its text part
            question = " ".join(p.get("text", "") for p in question if p.get("type") == "text")
        await chats.conversation_title(
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
