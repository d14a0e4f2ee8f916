"""The chat page's websocket: reads the page's frames (a message, Stop, Regenerate, Edit, a
version switch, catching up after a reconnect), hands them to services, starts answers, and
relays a conversation's frames to the page. What may be answered, and how, is services'."""

import json
import time
from typing import Any

from channels.db import database_sync_to_async
from django.db import connection
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from conversations import generation, services
from conversations.checks import Refused
from conversations.models import Conversation
from conversations.relay import AnswerRelay, sent_id, thread_frame
from conversations.services import Answering
from realtime import limits, live
from teams.models import Team
from uploads import references
from uploads.consumers import FileStatusConsumer

MAX_ATTACHED = 20
THREAD_ACTIONS = ("regenerate", "edit", "select", "continue")
THROTTLE_NOTICE_SECONDS = 2


class ChatConsumer(AnswerRelay, FileStatusConsumer):
    conversation: Conversation | None = None
    throttled_at = 0.0  # when the page was last told its actions come too fast

    async def connect(self) -> None:
        if not await self.admitted():
            return
        self.relay_start()
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
                await self.sync(content.get("streaming", {}), sent_id(content.get("last"), low=0))
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
        message_id = sent_id(content.get("message_id"))
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
        html = thread_frame(conversation)[0]
        return answering, html

    async def start_answer(self, answering: Answering, html: str) -> None:
        """Show the new messages on every page of the conversation, and start the answer."""
        conversation, answer = answering.conversation, answering.answer
        self.shows(answer)  # as saved (a Continue: its text so far)
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

    async def composer_error(self, error: str) -> None:
        await self.send(
            text_data=render_to_string("realtime/_composer_error.html", {"error": error})
        )

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
    ids = [sent_id(references.plain_id(value)) for value in files[:MAX_ATTACHED]]
    return [i for i in ids if i is not None]


def _teams(user: Any) -> list[Team]:
    return list(Team.objects.for_user(user))


def _client_id(content: dict) -> str:
    """The browser's id for a send, so a send replayed after a reconnect is taken once."""
    return str(content.get("client_id", ""))[:64]
