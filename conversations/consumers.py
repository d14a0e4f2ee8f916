"""The chat page's websocket: reads the page's frames (a message, Stop, Regenerate, Edit, a
version switch, catching up after a reconnect), hands them to services, starts answers, and
relays a conversation's frames to the page. What may be answered, and how, is services'."""

import json
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connection
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext as _

from conversations import generation, services
from conversations.models import Conversation, Message, stale_before
from conversations.services import Answering, Refused
from kimichat import limits, live
from teams.models import Team
from uploads.consumers import FileStatusConsumer

MAX_SYNC_MESSAGES = 10
MAX_ATTACHED = 20
THREAD_ACTIONS = ("regenerate", "edit", "select", "continue")
THROTTLE_NOTICE_SECONDS = 2
MAX_FRAME_CHARS = 64 * 1024
# Text of a part of an answer, added to it on the page (#msg-<id>-body, #msg-<id>-thinking).
TOKENS_FRAME = '<div hx-swap-oob="beforeend:#msg-{}-{}">{}</div>'


class ChatConsumer(FileStatusConsumer, AsyncJsonWebsocketConsumer):
    conversation: Conversation | None = None
    throttled_at = 0.0  # when the page was last told its actions come too fast

    async def connect(self) -> None:
        if not await self.admitted():
            return
        # How much of each part of each streaming answer this socket's page already shows.
        self.offsets: dict[tuple[int, str], int] = {}
        # Parts of answers whose missed text was asked of their generation, not come yet.
        self.resend_asked: set[tuple[int, str]] = set()
        conversation_id = self.scope["url_route"]["kwargs"].get("conversation_id")
        if conversation_id is not None:
            self.conversation = await (
                Conversation.objects.for_user(self.user).filter(pk=conversation_id).afirst()
            )
            if self.conversation is None or self.conversation.is_hidden:
                await self.close(live.CLOSE_NOT_FOUND)
                return
            await self.join([live.conversation_group(self.conversation.pk)])
        # Files attached or referred to here show their status as it changes; a suspension
        # closes the socket. (Leaving, the socket leaves its groups; an answer goes on: it
        # belongs to the conversation, not the socket.)
        await self.join([live.files_group(self.user.pk), live.user_group(self.user.pk)])
        await self.accept()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """A frame from the page: JSON text. Anything else (a binary frame, text that is not
        JSON, half a character, brackets nested past reason) is refused with a message, and
        the socket goes on."""
        content = _frame(text_data)
        if content is NOT_UNDERSTOOD:
            if not limits.allow(self.user.pk, "other"):
                await self.throttled()
                return
            with translation.override(self.language):
                await self.composer_error(_("That is not a message KimiChat understands."))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action", "send") if isinstance(content, dict) else None
        action = action if isinstance(action, str) else "other"
        if not limits.allow(self.user.pk, action):
            await self.throttled()
            return
        if not isinstance(content, dict):
            return
        with translation.override(self.language):
            if action == "send":
                await self.take_message(content)
            elif action in THREAD_ACTIONS and self.conversation is not None:
                await self.change_thread(action, content)
            elif action == "stop" and self.conversation is not None:
                await self.stop()
            elif action == "sync" and isinstance(content.get("streaming", {}), dict):
                await self.sync(content.get("streaming", {}), _id(content.get("last"), low=0))
            elif action == "statuses":
                await self.send_statuses(_ids(content))

    async def take_message(self, content: dict) -> None:
        try:
            answering, html, header = await admission(self.accept_message)(content)
        except Refused as e:
            await self.composer_error(str(e))
            return
        if answering is None:
            return
        if self.conversation is None:
            self.conversation = answering.conversation
            await self.join([live.conversation_group(self.conversation.pk)])
            await self.send(text_data=header)
        await self.start_answer(answering, html)

    def accept_message(self, content: dict) -> tuple[Answering | None, str, str]:
        """One trip to the database: the message taken (or None), its frame, and for a new
        chat the header its page gets."""
        answering = services.answer_request(
            user=self.user,
            conversation=self.conversation,
            text=str(content.get("message", "")),
            client_id=_client_id(content),
            options=content,
            attached=_ids(content),
        )
        if answering is None:
            return None, "", ""
        exchange = answering.exchange
        html = render_to_string(
            "conversations/_append_frame.html", {"messages": [exchange.question, exchange.answer]}
        )
        header = ""
        if self.conversation is None:
            # Share among its buttons when the user is in a team.
            header = render_to_string(
                "conversations/_new_conversation_frame.html",
                {"conversation": answering.conversation, "teams": _teams(self.user)},
            )
        return answering, html, header

    async def throttled(self) -> None:
        """Say once in a while (not for every action refused) that actions come too fast."""
        now = time.monotonic()
        if now - self.throttled_at > THROTTLE_NOTICE_SECONDS:
            self.throttled_at = now
            with translation.override(self.language):
                await self.composer_error(_("That was too many actions at once. Wait a moment."))

    async def change_thread(self, action: str, content: dict) -> None:
        message_id = _id(content.get("message_id"))
        if message_id is None:
            return
        try:
            answering, html = await admission(self.accept_change)(action, message_id, content)
        except Refused as e:
            await self.composer_error(str(e))
            return
        if answering is not None:
            await self.start_answer(answering, html)
        elif html:
            await live.publish_html(self.conversation.pk, html)  # type: ignore[union-attr]

    def accept_change(
        self, action: str, message_id: int, content: dict
    ) -> tuple[Answering | None, str]:
        """Regenerate an answer, resend an edited question, or show another version: the
        answer to write (none for a version switch) and the new thread's frame; nothing
        for a request that no longer applies (a double click, a message gone)."""
        assert self.conversation is not None
        answering: Answering | None = None
        conversation: Conversation | None
        if action == "select":
            conversation = services.version_show(
                conversation=self.conversation, message_id=message_id
            )
        else:
            if action == "continue":
                answering = services.answer_continue(
                    user=self.user, conversation=self.conversation, message_id=message_id
                )
            elif action == "regenerate":
                answering = services.answer_regenerate(
                    user=self.user,
                    conversation=self.conversation,
                    message_id=message_id,
                    options=content,
                )
            else:
                answering = services.question_edit(
                    user=self.user,
                    conversation=self.conversation,
                    message_id=message_id,
                    text=str(content.get("message", "")),
                    client_id=_client_id(content),
                    options=content,
                )
            conversation = answering.conversation if answering else None
        if conversation is None:
            return None, ""
        html = _thread_frame(conversation)[0]
        return answering, html

    async def start_answer(self, answering: Answering, html: str) -> None:
        """Show the new messages on every page of the conversation, and start the answer."""
        conversation, answer = answering.conversation, answering.answer
        # The page shows the answer as saved (a Continue: its text so far).
        self.offsets[answer.pk, live.BODY] = len(answer.content)
        self.offsets[answer.pk, live.THINKING] = len(answer.reasoning)
        await live.publish_html(conversation.pk, html)
        generation.generation_start(answering=answering, user_id=self.user.pk)

    async def stop(self) -> None:
        assert self.conversation is not None
        running = generation.running(self.conversation.pk)
        if running:
            running.stop()
        else:
            # Running in another process (or about to finish): its listener takes it.
            await live.request_stop(self.conversation.pk)

    async def sync(self, streaming: dict, last: int | None = None) -> None:
        """After (re)connecting, bring the page up to date: `last` is the newest message it
        shows (a page that loaded just before a message was sent, or whose socket was away
        when one came, is sent the thread anew), `streaming` how much of each part of its
        streaming answers it shows, by "<id>" (the answer) and "<id>:thinking"."""
        if last is not None and self.conversation is not None:
            behind = await database_sync_to_async(_thread_since)(self.conversation.pk, last)
            if behind is not None:
                html, streaming = behind
                await self.send(text_data=html)
        seen = set()
        for key, shown in list(streaming.items())[: MAX_SYNC_MESSAGES * len(live.PARTS)]:
            message_key, _, part = str(key).partition(":")
            message_id, shown = _id(message_key), _id(shown, low=0)
            part = part or live.BODY
            if message_id is None or shown is None or part not in live.PARTS:
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
            elif part == live.BODY:
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

    async def composer_error(self, error: str) -> None:
        await self.send(
            text_data=render_to_string("conversations/_composer_error.html", {"error": error})
        )

    async def send_tokens(self, message_id: int, part: str, text: str) -> None:
        # Text that came all at once (a catch-up, a fast stream) goes in frames of a bounded
        # size: what waits for a slow page is counted in frames (kimichat/server.py).
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

    # Channel-layer events (kimichat/live.py) published by answers and by other sockets.

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

    async def conversation_hidden(self, event: dict) -> None:
        """A moderator removed a conversation: the page showing it says so, its text, title
        and buttons go; other pages of its owner show it as removed in their list."""
        hidden = event.get("conversation_id")
        shown = self.conversation.pk if self.conversation is not None else None
        if hidden is not None and hidden == shown:
            return  # this page is told by its conversation's own event
        with translation.override(self.language):
            html = render_to_string(
                "conversations/_removed_frame.html",
                {"conversation_id": hidden or shown, "whole_page": hidden is None},
            )
        await self.send(text_data=html)
        if hidden is None:
            await self.close(live.CLOSE_NOT_FOUND)

    async def account_suspended(self, event: dict) -> None:
        """The page ends: no composer, no Stop, no answer that looks as if it still streams."""
        with translation.override(self.language):
            await self.send(text_data=render_to_string("conversations/_suspended_frame.html"))
        await self.close(live.CLOSE_SUSPENDED)


# What a frame that is not one of the page's is taken as.
NOT_UNDERSTOOD = object()


def _frame(text: str | None) -> Any:
    """The JSON a text frame holds, or NOT_UNDERSTOOD: for a binary frame, for text that is
    not JSON, for JSON too deeply nested to read, and for half a character (an escaped lone
    surrogate, which JSON allows and no database or page can store)."""
    if text is None:
        return NOT_UNDERSTOOD
    try:
        content = json.loads(text)
        json.dumps(content, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return NOT_UNDERSTOOD
    return content


def admission(function: Any) -> Any:
    """`function` run where taking a message waits for no other socket's work: on a worker
    thread with a database connection of its own, where the database takes writers side by
    side (PostgreSQL); SQLite takes one writer at a time, so there it runs on the thread
    that every socket's database work shares."""
    side_by_side = connection.vendor != "sqlite"
    return database_sync_to_async(function, thread_sensitive=not side_by_side)


def _ids(content: dict) -> list[int]:
    """The ids of the files attached in the composer."""
    files = content.get("files", [])
    files = files if isinstance(files, list) else [files]
    ids = [_id(value) for value in files[:MAX_ATTACHED]]
    return [i for i in ids if i is not None]


def _id(value: Any, low: int = 1) -> int | None:
    """An id (or count) the page sent, or None for anything else: a database id fits in 63
    bits, and "1e309" is no number at all."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if low <= number < 2**63 else None


def _teams(user: Any) -> list[Team]:
    return list(Team.objects.for_user(user))


def _client_id(content: dict) -> str:
    """The browser's id for a send, so a send replayed after a reconnect is taken once."""
    return str(content.get("client_id", ""))[:64]


def _thread_frame(conversation: Conversation) -> tuple[str, list[Message]]:
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
    html, messages = _thread_frame(conversation)
    shown = {}
    for message in messages:
        if message.is_streaming:
            shown[str(message.pk)] = len(message.content)
            shown[f"{message.pk}:{live.THINKING}"] = len(message.reasoning)
    return html, shown


def _final_frame(message: Message) -> str:
    message.versions = message.sibling_versions()
    return render_to_string("conversations/_message_frame.html", {"message": message})


RELAY_EVENTS: dict[str, Any] = {
    live.TOKENS: ChatConsumer.chat_tokens,
    live.HTML: ChatConsumer.chat_html,
}
