"""The real-time protocol, in one place: the channel-layer groups, the events sent through them
and their builders, the websocket close codes, and the functions that publish.

Every socket and every answer being written, in any process, meets through these groups (the
in-memory layer in one process, Redis across several). Apps publish through here and never
import a consumer."""

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.http import HttpRequest
from django.utils import translation

# Close codes a page understands (4000 + the HTTP status they stand for).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_SUSPENDED = 4403
CLOSE_NOT_FOUND = 4404
# Past USER_MAX_SOCKETS: the page says so rather than reconnect at once.
CLOSE_TOO_MANY = 4429

# Event types. Channels calls the consumer's method of the same name, dots as underscores.
TOKENS: Final = "chat.tokens"  # text of an answer, from a position on
HTML: Final = "chat.html"  # a frame of HTML (out-of-band swaps) for every page of a conversation
HIDDEN: Final = "conversation.hidden"  # a moderator removed the conversation
SUSPENDED: Final = "account.suspended"  # a moderator suspended the user
SIGNED_OUT: Final = "account.signed_out"  # every session ended (or the account deleted)
FILE_CHANGED: Final = "file.changed"  # a file's status changed
STOP: Final = "stop"  # to an answer being written: stop
RESEND: Final = "resend"  # to an answer being written: send one socket the text from `start` on
# An answer taken over by another process: pages show it as saved, and its text goes on from
# there (what a page showed past the last save is written anew).
REWIND: Final = "chat.rewind"

log = logging.getLogger(__name__)
# When an unreachable channel layer was last logged (once a minute is enough to see it).
_outage_logged = 0.0


class TokensEvent(TypedDict):
    type: Literal["chat.tokens"]
    message_id: int
    part: str  # which part of the answer (conversations/parts.py), each with its own offsets
    start: int
    text: str
    resend: NotRequired[bool]


class HtmlEvent(TypedDict):
    type: Literal["chat.html"]
    html: str


class ResendEvent(TypedDict):
    type: Literal["resend"]
    message_id: int
    part: str
    start: int
    reply_to: str


class RewindEvent(TypedDict):
    type: Literal["chat.rewind"]
    message_id: int
    offsets: dict[str, int]  # part → its length as saved, where the tokens go on from
    html: str  # the answer as saved


class FileEvent(TypedDict):
    type: Literal["file.changed"]
    file_id: int


def conversation_group(conversation_id: int) -> str:
    """Every socket showing the conversation, in any process."""
    return f"conversation-{conversation_id}"


def control_group(conversation_id: int) -> str:
    """The answer being written for the conversation, in whichever process writes it."""
    return f"conversation-{conversation_id}-control"


def user_group(user_id: int) -> str:
    """Every socket of one user, in any process."""
    return f"user-{user_id}"


def session_group(session_key: str) -> str:
    """Every socket of one browser session, in any process (named by a digest of the key:
    group names are seen in Redis, session keys must not be)."""
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:32]


def files_group(user_id: int) -> str:
    """Every page of a user's that shows files (chat pages, the Files page), and every answer
    waiting for one of them to be read."""
    return f"files-{user_id}"


def tokens_event(
    *, message_id: int, part: str, start: int, text: str, resend: bool = False
) -> TokensEvent:
    event = TokensEvent(type=TOKENS, message_id=message_id, part=part, start=start, text=text)
    if resend:
        event["resend"] = True
    return event


def html_event(html: str) -> HtmlEvent:
    return HtmlEvent(type=HTML, html=html)


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS is always configured (kimichat/settings.py)"
    return layer


async def _group_send(group: str, event: Mapping[str, Any]) -> bool:
    """Whether the event went out. Redis carries frames, not answers: while it is
    unreachable, answers go on and are saved, and pages catch up when it is back."""
    layer = _layer()
    if isinstance(layer, InMemoryChannelLayer):
        # One process, so every member is here: its queue gets the event at once. Channels'
        # group_send starts a task per member and waits for them all, which made every frame
        # of every answer cost three times as much (docs/benchmarks.md).
        message = {**event}
        for channel in list(layer.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):  # as group_send: a full queue misses it
                await layer.send(channel, message)
        return True
    try:
        await layer.group_send(group, {**event})
    except Exception as e:  # any failure of the layer's transport (Redis down)
        _outage(e)
        return False
    return True


def _outage(error: Exception) -> None:
    global _outage_logged
    if time.monotonic() - _outage_logged > 60:
        _outage_logged = time.monotonic()
        log.warning("The channel layer is unreachable; frames are dropped meanwhile: %r", error)


def scope_language(scope: Mapping[str, Any]) -> str:
    """The page's language, chosen as Django chooses it for a request (cookie, then
    Accept-Language), so frames speak the language of the page they land in."""
    request = HttpRequest()
    request.COOKIES = scope.get("cookies", {})
    headers = dict(scope.get("headers", []))
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get(b"accept-language", b"").decode("latin-1")
    return translation.get_language_from_request(request)


# Publishing, from the event loop.


async def publish_html(conversation_id: int, html: str) -> bool:
    """Whether it went out (False while the channel layer is unreachable)."""
    return await _group_send(conversation_group(conversation_id), html_event(html))


async def publish_tokens(
    conversation_id: int, *, message_id: int, part: str, start: int, text: str
) -> None:
    event = tokens_event(message_id=message_id, part=part, start=start, text=text)
    await _group_send(conversation_group(conversation_id), event)


async def publish_rewind(
    conversation_id: int, *, message_id: int, offsets: dict[str, int], html: str
) -> None:
    event = RewindEvent(type=REWIND, message_id=message_id, offsets=offsets, html=html)
    await _group_send(conversation_group(conversation_id), event)


async def send_tokens(channel: str, *, message_id: int, part: str, start: int, text: str) -> None:
    """A part of an answer from `start` on, to one socket that asked for it."""
    event = tokens_event(message_id=message_id, part=part, start=start, text=text, resend=True)
    try:
        await _layer().send(channel, {**event})
    except Exception as e:  # the page asks again when it reconnects
        _outage(e)


async def request_stop(conversation_id: int) -> None:
    """Stop the answer being written for the conversation, wherever it runs."""
    await _group_send(control_group(conversation_id), {"type": STOP})


async def request_resend(
    conversation_id: int, *, message_id: int, part: str, start: int, reply_to: str
) -> None:
    """Ask the answer being written, wherever it runs, for a part of its text from `start`
    on, sent to one socket."""
    event = ResendEvent(
        type=RESEND, message_id=message_id, part=part, start=start, reply_to=reply_to
    )
    await _group_send(control_group(conversation_id), event)


# Publishing, from synchronous code (views, admin actions, file readers).


def stop_answers(conversation_ids: Iterable[int]) -> None:
    """Stop the answers being written in these conversations, wherever they run."""
    for conversation_id in set(conversation_ids):
        async_to_sync(request_stop)(conversation_id)


def conversations_hidden(
    conversation_ids: Iterable[int], *, owners: Mapping[int, int] | None = None
) -> None:
    """Pages showing these conversations say they were removed, and close; the other pages
    of their owners (`owners`: conversation id → owner id) mark them removed in their list."""
    for conversation_id in conversation_ids:
        group = conversation_group(conversation_id)
        async_to_sync(_group_send)(group, {"type": HIDDEN})
        if owners and conversation_id in owners:
            event = {"type": HIDDEN, "conversation_id": conversation_id}
            async_to_sync(_group_send)(user_group(owners[conversation_id]), event)


def users_suspended(user_ids: Iterable[int]) -> None:
    """Every socket of these users closes."""
    for user_id in user_ids:
        async_to_sync(_group_send)(user_group(user_id), {"type": SUSPENDED})


def users_signed_out(user_ids: Iterable[int], *, keep: str | None = None) -> None:
    """Every socket of these users closes as a logged-out one: their sessions are gone (all
    but the session `keep`, if given: the one that changed the password)."""
    event = {"type": SIGNED_OUT, "keep": session_group(keep) if keep else ""}
    for user_id in user_ids:
        async_to_sync(_group_send)(user_group(user_id), event)


def sessions_ended(session_keys: Iterable[str]) -> None:
    """Every socket of these browser sessions closes as a logged-out one (a log-out, a
    session ended from another)."""
    for key in session_keys:
        async_to_sync(_group_send)(session_group(key), {"type": SIGNED_OUT})


def file_changed(file_id: int, *, readers: Iterable[int]) -> None:
    """Every page of the readers showing the file, and every answer waiting for it."""
    event = FileEvent(type=FILE_CHANGED, file_id=file_id)
    for user_id in readers:
        async_to_sync(_group_send)(files_group(user_id), event)


class Listener:
    """A channel of its own in some groups, for a task that is no socket (an answer being
    written hears Stop, resend requests and files being read)::

        async with Listener([control_group(id)]) as listener:
            event = await listener.receive()
    """

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups
        self.channel = ""

    async def __aenter__(self) -> "Listener":
        layer = _layer()
        self.channel = await layer.new_channel()
        for group in self.groups:
            await layer.group_add(group, self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        layer = _layer()
        for group in self.groups:
            # Left even when the task is being cancelled: a stale member costs every send.
            await asyncio.shield(layer.group_discard(group, self.channel))

    async def receive(self) -> dict[str, Any]:
        return await _layer().receive(self.channel)
