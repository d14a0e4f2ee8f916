"""How a chat page's socket keeps up with the answers being written: the text of each part
as it streams (conversations/parts.py), from where the page is; catching up after a
reconnect; the text a page missed, asked of whichever process writes the answer; an answer
taken over by another process. The frames come through realtime/live.py's events."""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import render_to_string
from django.utils.html import format_html

from conversations import generation
from conversations.models import Conversation, Message, stale_before
from conversations.parts import BODY, BY_NAME, PARTS
from realtime import live

MAX_SYNC_MESSAGES = 10
MAX_FRAME_CHARS = 64 * 1024
# Text of a part of an answer, added to it on the page (#msg-<id>-<part>: conversations/parts.py).
TOKENS_FRAME = '<div hx-swap-oob="beforeend:#msg-{}-{}">{}</div>'


class AnswerRelay(AsyncJsonWebsocketConsumer):
    """The part of the chat socket that relays answers (mixed into ChatConsumer)."""

    conversation: Conversation | None
    # How much of each part of each streaming answer this socket's page already shows, and
    # the parts whose missed text was asked of their generation, not come yet.
    offsets: dict[tuple[int, str], int]
    resend_asked: set[tuple[int, str]]

    def relay_start(self) -> None:
        self.offsets = {}
        self.resend_asked = set()

    def shows(self, answer: Message) -> None:
        """The page shows the answer as saved (a Continue: its text so far)."""
        for part in PARTS:
            self.offsets[answer.pk, part.name] = len(getattr(answer, part.field))

    async def sync(self, streaming: dict, last: int | None = None) -> None:
        """After (re)connecting, bring the page up to date: `last` is the newest message it
        shows (a page that loaded just before a message was sent, or whose socket was away
        when one came, is sent the thread anew), `streaming` how much of each part of its
        streaming answers it shows, by "<id>:<part>" ("<id>" alone: the answer's body)."""
        if last is not None and self.conversation is not None:
            behind = await database_sync_to_async(_thread_since)(self.conversation.pk, last)
            if behind is not None:
                html, streaming = behind
                await self.send(text_data=html)
        seen = set()
        for key, shown in list(streaming.items())[: MAX_SYNC_MESSAGES * len(PARTS)]:
            message_key, _, part = str(key).partition(":")
            message_id, shown = sent_id(message_key), sent_id(shown, low=0)
            part = part or BODY.name
            if message_id is None or shown is None or part not in BY_NAME:
                continue
            if (message_id, part) in seen:
                continue  # "7" and "007" are one message: it is sent once
            seen.add((message_id, part))
            running = generation.running(self.conversation.pk) if self.conversation else None
            if running and running.answer.pk == message_id:
                text = running.published_text(part)
                self.offsets[message_id, part] = len(text)
                await self.send_tokens(message_id, part, text[shown:])
                continue
            message = await self.conversation_message(message_id)
            if message is None:
                continue
            if message.is_streaming:
                # Streaming in another process: it sends the missing text, then frames follow.
                self.offsets[message_id, part] = shown
                await self.ask_resend(message_id, part)
            elif part == BODY.name:
                await self.send(text_data=await database_sync_to_async(_final_frame)(message))

    async def conversation_message(self, message_id: int) -> Message | None:
        if self.conversation is None:
            return None
        messages = Message.objects.filter(conversation=self.conversation, pk=message_id)
        message = await messages.afirst()
        if message is not None and message.is_streaming and message.updated_at < stale_before():
            # Left streaming by a process that died: shown, and kept, as interrupted.
            await database_sync_to_async(messages.mark_interrupted)()
            message = await messages.afirst()
        return message

    async def send_tokens(self, message_id: int, part: str, text: str) -> None:
        # Text that came all at once (a catch-up, a fast stream) goes in frames of a bounded
        # size: what waits for a slow page is counted in frames (realtime/server.py).
        for start in range(0, len(text), MAX_FRAME_CHARS):
            # The one frame built without a template: it is sent for every few tokens to
            # every page, and format_html (escaping as a template does) costs a third.
            html = format_html(
                TOKENS_FRAME, message_id, part, text[start : start + MAX_FRAME_CHARS]
            )
            await self.send(text_data=html)

    async def ask_resend(self, message_id: int, part: str) -> None:
        assert self.conversation is not None
        if (message_id, part) not in self.resend_asked:
            self.resend_asked.add((message_id, part))
            await live.request_resend(
                self.conversation.pk,
                message_id=message_id,
                part=part,
                start=self.offsets[message_id, part],
                reply_to=self.channel_name,
            )

    async def dispatch(self, message: dict) -> None:
        if message["type"] in RELAY_EVENTS:
            # Channels closes stale database connections before every event, a trip to the
            # database thread each time. Relay events (one per frame per socket, the hot path)
            # touch no database, so they skip it.
            await RELAY_EVENTS[message["type"]](self, message)
        else:
            await super().dispatch(message)

    async def chat_tokens(self, event: live.TokensEvent) -> None:
        key = event["message_id"], event["part"]
        start, text = event["start"], event["text"]
        known = self.offsets.get(key)
        if event.get("resend"):
            self.resend_asked.discard(key)
        if known is not None and start > known:
            # Text is missing before this frame (this socket joined between two saves, or
            # frames were dropped): the generation sends it from where the page is; frames
            # until then are part of that answer.
            await self.ask_resend(*key)
            return
        if known is not None and start < known:
            # Part of this frame is already on the page (sent by sync): send only the rest.
            text = text[known - start :]
            start = known
        self.offsets[key] = start + len(text)
        await self.send_tokens(*key, text)

    async def chat_html(self, event: live.HtmlEvent) -> None:
        await self.send(text_data=event["html"])

    async def chat_rewind(self, event: live.RewindEvent) -> None:
        """An answer taken over by another process (conversations/resume.py): the page shows
        it as saved, dropping what it showed past the last save, and its text goes on from
        there."""
        for part, length in event["offsets"].items():
            key = event["message_id"], part
            self.offsets[key] = length
            self.resend_asked.discard(key)
        await self.send(text_data=event["html"])


def thread_frame(conversation: Conversation) -> tuple[str, list[Message]]:
    """The thread as shown now (its newest page), as a frame that replaces the page's."""
    messages, has_older = conversation.thread().page()
    html = render_to_string(
        "conversations/_thread_frame.html",
        {"conversation": conversation, "messages": messages, "has_older": has_older},
    )
    return html, messages


def _thread_since(conversation_id: int, last: int) -> tuple[str, dict[str, int]] | None:
    """For a page whose newest message is `last`: None when that is the thread's newest;
    otherwise the thread's frame, and how much of each streaming answer it shows."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return None
    ids = conversation.thread().ids
    if not ids or ids[-1] == last:
        return None
    html, messages = thread_frame(conversation)
    shown = {}
    for message in messages:
        if message.is_streaming:
            for part in PARTS:
                shown[f"{message.pk}:{part.name}"] = len(getattr(message, part.field))
    return html, shown


def _final_frame(message: Message) -> str:
    message.versions = message.sibling_versions()
    return render_to_string("conversations/_message_frame.html", {"message": message})


def sent_id(value: Any, low: int = 1) -> int | None:
    """An id (or count) the page sent, or None for anything else: a database id fits in 63
    bits, and "1e309" is no number at all."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if low <= number < 2**63 else None


RELAY_EVENTS: dict[str, Any] = {
    live.TOKENS: AnswerRelay.chat_tokens,
    live.HTML: AnswerRelay.chat_html,
}
