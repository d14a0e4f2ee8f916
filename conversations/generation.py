"""One completion's life, owned by the server rather than by a socket.

A generation streams from Kimi in its own asyncio task, publishes what it receives to the
conversation's channel-layer group (every socket watching that conversation, in any tab), saves
the text about once a second and at the end, and keeps going when the tab that asked closes.
"""

import asyncio
import logging
from dataclasses import dataclass, field

import openai
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from conversations import services
from conversations.models import Message
from kimichat import kimi

log = logging.getLogger(__name__)

# First token goes out at once; after that, tokens are coalesced into one frame per interval.
FRAME_INTERVAL = 0.04
SAVE_INTERVAL = 1.0

# Conversation id → the generation running for it in this process.
_running: dict[int, "Generation"] = {}


def group_name(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


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
    stop_requested: bool = False
    task: asyncio.Task | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False

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
        stream = None
        try:
            stream = await kimi.client().chat.completions.create(
                model=answer.model,
                messages=self.messages,
                stream=True,
                stream_options={"include_usage": True},
                **self.params,
            )
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
                fields["state"] = Message.State.ERROR
                fields["error"] = _("The answer was cut off before Kimi finished it.")
        except asyncio.CancelledError:
            # Stop keeps the partial answer; any other cancel is the process shutting down.
            fields["state"] = (
                Message.State.STOPPED if self.stop_requested else Message.State.INTERRUPTED
            )
        except (openai.APIError, kimi.NoKeyConfigured) as e:
            fields["state"] = Message.State.ERROR
            fields["error"] = kimi.error_message(e)
        except Exception as e:
            log.exception("Generation for message %s failed", answer.pk)
            fields["state"] = Message.State.ERROR
            fields["error"] = kimi.error_message(e)
        finally:
            if stream is not None:
                # Closes the HTTP response, so Kimi stops generating (and billing) at once.
                await stream.close()
            await self._finish(pump, fields)

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
            html = await database_sync_to_async(_save_and_render)(answer, fields)
            await publish(self.conversation_id, {"type": "chat.html", "html": html})
        finally:
            if _running.get(self.conversation_id) is self:
                del _running[self.conversation_id]

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


def _save_and_render(answer: Message, fields: dict) -> str:
    services.answer_save(answer_id=answer.pk, content=answer.content, **fields)
    return render_to_string("conversations/_message_frame.html", {"message": answer})


def generation_start(
    *, conversation_id: int, answer: Message, messages: list[dict], params: dict
) -> Generation:
    generation = Generation(conversation_id, answer, messages, params)
    _running[conversation_id] = generation
    generation.task = asyncio.create_task(generation.run())
    return generation


def running(conversation_id: int) -> Generation | None:
    return _running.get(conversation_id)
