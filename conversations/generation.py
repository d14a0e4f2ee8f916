"""One completion's life, owned by the server rather than by a socket.

A generation streams from Kimi in its own asyncio task, publishes what it receives to the
conversation's channel-layer group (every socket watching that conversation, in any tab), saves
the text about once a second and at the end, and keeps going when the tab that asked closes.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import openai
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from conversations import context, services
from conversations.models import Conversation, Message
from kimichat import kimi
from moderation.models import Usage
from uploads.models import UploadedFile
from uploads.services import files_group

log = logging.getLogger(__name__)

# First token goes out at once; after that, tokens are coalesced into one frame per interval.
FRAME_INTERVAL = 0.04
SAVE_INTERVAL = 1.0
# While waiting for files to be read, look again this often should a "read" event be lost.
FILES_RECHECK = 5.0

# Conversation id → the generation running for it in this process.
_running: dict[int, "Generation"] = {}


def group_name(conversation_id: int) -> str:
    """Every socket showing the conversation, in any process."""
    return f"conversation-{conversation_id}"


def control_group(conversation_id: int) -> str:
    """The generation running for the conversation, in whichever process runs it."""
    return f"conversation-{conversation_id}-control"


async def request_stop(conversation_id: int) -> None:
    await get_channel_layer().group_send(control_group(conversation_id), {"type": "stop"})


async def request_resend(conversation_id: int, *, message_id: int, start: int, reply_to: str):
    """Ask the generation, wherever it runs, for its text from `start` on, sent to one socket."""
    event = {"type": "resend", "message_id": message_id, "start": start, "reply_to": reply_to}
    await get_channel_layer().group_send(control_group(conversation_id), event)


async def publish(conversation_id: int, event: dict) -> None:
    await get_channel_layer().group_send(group_name(conversation_id), event)


@dataclass(eq=False)
class Generation:
    conversation_id: int
    answer: Message
    messages: list[dict]
    params: dict
    published: list[str] = field(default_factory=list)  # text already sent to the sockets
    published_len: int = 0
    pending: list[str] = field(default_factory=list)  # text received, not yet sent
    title_wanted: bool = False  # the first answer of a new chat: name the chat after it
    waiting: list[UploadedFile] = field(default_factory=list)  # being read; the request after
    user_id: int | None = None  # whose files those are
    _files_changed: asyncio.Event = field(default_factory=asyncio.Event)
    stop_requested: bool = False
    task: asyncio.Task | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    listening: asyncio.Event = field(default_factory=asyncio.Event)  # Stop can reach it now
    _closing: bool = False
    reached_upstream: bool = False  # Kimi took the request: its tokens count as spent

    @property
    def text(self) -> str:
        return "".join(self.published) + "".join(self.pending)

    def published_text(self) -> str:
        return "".join(self.published)

    def stop(self) -> None:
        self.stop_requested = True
        if self.task:
            self.task.cancel()

    async def run(self) -> None:
        answer = self.answer
        fields: dict = {}
        pump = asyncio.create_task(self._pump())
        listener = asyncio.create_task(self._listen())
        stream = None
        try:
            if self.waiting:
                await self._wait_for_files()
            stream = await self._open()
            self.reached_upstream = True
            loop = asyncio.get_running_loop()
            next_save = loop.time() + SAVE_INTERVAL
            saving: asyncio.Task | None = None
            async for chunk in stream:
                if chunk.choices:
                    choice = chunk.choices[0]
                    if choice.delta.content:
                        self.pending.append(choice.delta.content)
                        self._wake.set()
                    if choice.finish_reason:
                        fields["finish_reason"] = choice.finish_reason
                usage = kimi.chunk_usage(chunk)
                if usage:
                    fields["prompt_tokens"] = usage.prompt_tokens
                    fields["completion_tokens"] = usage.completion_tokens
                if loop.time() >= next_save and (saving is None or saving.done()):
                    # Saved beside the stream, never in its way: tokens keep flowing meanwhile.
                    next_save = loop.time() + SAVE_INTERVAL
                    saving = asyncio.create_task(self._save(content=self.text))
            if fields.get("finish_reason"):
                fields["state"] = Message.State.DONE
            else:
                fields.update(state=Message.State.ERROR, error_code="cut_off")
        except asyncio.CancelledError:
            # Stop keeps the partial answer; any other cancel is the process shutting down.
            fields["state"] = (
                Message.State.STOPPED if self.stop_requested else Message.State.INTERRUPTED
            )
        except (services.Refused, context.TooLong) as e:
            # A file it refers to could not be read, or the files are too long for the model.
            fields.update(state=Message.State.ERROR, error_code="refused", error=str(e))
        except Exception as e:
            if not isinstance(e, openai.APIError | kimi.NoKeyConfigured):
                log.exception("Generation for message %s failed", answer.pk)
            code, detail = kimi.error_code(e)
            fields.update(state=Message.State.ERROR, error_code=code, error=detail)
        finally:
            listener.cancel()
            if stream is not None:
                # Closes the HTTP response, so Kimi stops generating (and billing) at once.
                await stream.close()
            await self._finish(pump, fields)
            await asyncio.gather(listener, return_exceptions=True)
        if fields["state"] == Message.State.DONE and self.title_wanted:
            await self._title()

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

    async def _open(self):
        """Start the stream, retrying what Kimi says is worth retrying (busy, 5xx)."""
        attempt = 0
        while True:
            try:
                stream = await kimi.client().chat.completions.create(
                    model=self.answer.model,
                    messages=self.messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    **self.params,
                )
            except (openai.APIStatusError, openai.APIConnectionError) as e:
                delay = kimi.retry_delay(e, attempt)
                if delay is None:
                    raise
                attempt += 1
                log.info("Kimi failed (%s); retry %s in %.1f s", type(e).__name__, attempt, delay)
                await self._status(
                    _("Kimi is busy. Trying again in %(seconds)s s (attempt %(n)s of %(of)s)…")
                    % {
                        "seconds": f"{delay:.0f}",
                        "n": attempt + 1,
                        "of": settings.KIMI_MAX_RETRIES + 1,
                    }
                )
                await asyncio.sleep(delay)
                continue
            if attempt:
                await self._status("")
            return stream

    async def _status(self, text: str) -> None:
        html = render_to_string(
            "conversations/_status_frame.html", {"message": self.answer, "status": text}
        )
        await publish(self.conversation_id, {"type": "chat.html", "html": html})

    async def _listen(self) -> None:
        """Take Stop and resend requests from any socket, in any process, through the
        channel layer."""
        layer = get_channel_layer()
        channel = await layer.new_channel()
        groups = [control_group(self.conversation_id)]
        if self.waiting:
            groups.append(files_group(self.user_id))
        for group in groups:
            await layer.group_add(group, channel)
        self.listening.set()
        try:
            while True:
                event = await layer.receive(channel)
                if event.get("type") == "file.changed":
                    self._files_changed.set()
                elif event.get("type") == "stop":
                    self.stop()
                    return
                if event.get("type") == "resend" and event.get("message_id") == self.answer.pk:
                    start = event["start"]
                    reply = {"type": "chat.tokens", "message_id": self.answer.pk, "start": start}
                    text = self.published_text()[start:]
                    await layer.send(event["reply_to"], {**reply, "text": text, "resend": True})
        finally:
            for group in groups:
                await asyncio.shield(layer.group_discard(group, channel))

    async def _title(self) -> None:
        """Name a new conversation after its first answer; the first line stays on failure."""
        question = self.messages[-1]["content"]
        if isinstance(question, list):  # with images: its text part
            question = " ".join(p.get("text", "") for p in question if p.get("type") == "text")
        try:
            title = await kimi.title(model=self.answer.model, question=question, answer=self.text)
        except (openai.APIError, kimi.NoKeyConfigured) as e:
            log.info("No title for conversation %s: %s", self.conversation_id, e)
            return
        if not title:
            return
        saved = await database_sync_to_async(services.conversation_autotitle)(
            conversation_id=self.conversation_id, title=title
        )
        if saved:
            html = render_to_string(
                "conversations/_title_frame.html",
                {"conversation_id": self.conversation_id, "title": Conversation.title_from(title)},
            )
            await publish(self.conversation_id, {"type": "chat.html", "html": html})

    async def _save(self, **fields) -> None:
        await database_sync_to_async(services.answer_save)(answer_id=self.answer.pk, **fields)

    async def _finish(self, pump: asyncio.Task, fields: dict) -> None:
        self._closing = True
        self._wake.set()
        await pump
        answer = self.answer
        for name, value in fields.items():
            setattr(answer, name, value)
        answer.content = self.text
        try:
            # Markdown rendering is CPU work: done beside the save, off the event loop, so
            # other streams' tokens keep flowing. Runs after any save still in flight.
            html = await database_sync_to_async(_save_and_render)(
                answer, fields, self._usage(fields)
            )
            await publish(self.conversation_id, {"type": "chat.html", "html": html})
        finally:
            if _running.get(self.conversation_id) is self:
                del _running[self.conversation_id]

    def _usage(self, fields: dict) -> dict | None:
        """The tokens this answer spent: Kimi's count, or an estimate where the stream was
        stopped or broke before Kimi counted (it bills what it generated)."""
        if not self.reached_upstream or self.user_id is None:
            return None
        prompt = fields.get("prompt_tokens")
        if prompt is None:
            prompt = sum(kimi.estimate_tokens(str(m["content"])) for m in self.messages)
        completion = fields.get("completion_tokens")
        if completion is None:
            completion = kimi.estimate_tokens(self.text)
        return {
            "user_id": self.user_id,
            "model": self.answer.model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
        }

    async def _pump(self) -> None:
        """Send pending text: at once when idle, otherwise at most once per FRAME_INTERVAL.
        Ends once the stream has ended and nothing is left to send."""
        while not (self._closing and not self.pending):
            await self._wake.wait()
            self._wake.clear()
            if self.pending:
                text = "".join(self.pending)
                self.pending.clear()
                start = self.published_len
                self.published.append(text)
                self.published_len += len(text)
                event = {"type": "chat.tokens", "message_id": self.answer.pk}
                await publish(self.conversation_id, {**event, "start": start, "text": text})
            if not self._closing:
                await asyncio.sleep(FRAME_INTERVAL)


def _save_and_render(answer: Message, fields: dict, usage: dict | None) -> str:
    services.answer_save(answer_id=answer.pk, content=answer.content, **fields)
    if usage:
        Usage.objects.record(**usage)
    answer.versions = answer.sibling_versions()
    return render_to_string("conversations/_message_frame.html", {"message": answer})


def generation_start(
    *,
    conversation_id: int,
    answer: Message,
    messages: list[dict],
    params: dict,
    title_wanted: bool = False,
    waiting: list[UploadedFile] = (),
    user_id: int | None = None,
) -> Generation:
    generation = Generation(
        conversation_id,
        answer,
        messages,
        params,
        title_wanted=title_wanted,
        waiting=list(waiting),
        user_id=user_id,
    )
    _running[conversation_id] = generation
    generation.task = asyncio.create_task(generation.run())
    return generation


def running(conversation_id: int) -> Generation | None:
    return _running.get(conversation_id)
