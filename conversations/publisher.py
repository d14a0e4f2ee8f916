"""The frames of one answer being written, for every page of its conversation: each part's
text as it comes (the first at once, then at most one frame per FRAME_INTERVAL, thinking
first), the status line (retrying, waiting for files, a tool round), how long Kimi thought,
and after a takeover the answer as saved. What it sends goes through realtime/live.py."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from conversations.models import Message
from conversations.parts import PARTS
from realtime import live

# First token goes out at once; after that, tokens are coalesced into one frame per interval.
FRAME_INTERVAL = 0.04


@dataclass(eq=False)
class Streamed:
    """A part's text as it streams: what was sent to the pages, and what came since."""

    published: list[str] = field(default_factory=list)
    published_len: int = 0
    pending: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.published) + "".join(self.pending)

    def published_text(self) -> str:
        return "".join(self.published)


class Publisher:
    """Turns the parts of one answer into frames, while its writer holds the answer."""

    def __init__(
        self, conversation_id: int, answer: Message, holds_lease: Callable[[], Awaitable[bool]]
    ) -> None:
        self.conversation_id = conversation_id
        self.answer = answer
        self.holds_lease = holds_lease
        # Part name → its text; an answer that goes on (Continue, a takeover) starts from its
        # saved text, as the pages show it.
        self.parts = {
            p.name: Streamed(published=[t], published_len=len(t)) for p, t in _saved(answer)
        }
        self._wake = asyncio.Event()
        self._closing = False
        self._status_shown = False  # a status line is on the page (retrying, searching, …)
        self._resting: asyncio.Future | None = None  # the pump's wait between two frames
        self._thinking_time_due = False  # the answer began: the pages fold the thinking

    def received(self, part: str, text: str) -> None:
        self.parts[part].pending.append(text)
        self._wake.set()

    def text(self, part: str) -> str:
        return self.parts[part].text

    def published_text(self, part: str) -> str:
        return self.parts[part].published_text()

    def saved(self) -> dict[str, str]:
        """Every part's text so far, by the Message field it is saved in."""
        return {part.field: self.parts[part.name].text for part in PARTS}

    def thinking_ended(self, seconds: float) -> None:
        """The first words of the answer came after thinking: the pages fold the thinking and
        say for how long, right after those words (sent at once)."""
        self.answer.thinking_seconds = seconds
        self._thinking_time_due = True
        if self._resting is not None:
            _settle(self._resting)

    def close(self) -> None:
        """The stream ended: the pump sends what is left, then ends."""
        self._closing = True
        self._wake.set()

    async def pump(self) -> None:
        """Send pending text: at once when idle, otherwise at most once per FRAME_INTERVAL.
        Ends once the stream has ended and nothing is left to send."""
        streamed = [(name, self.parts[name]) for name in (part.name for part in PARTS)]
        while not (self._closing and not any(part.pending for _, part in streamed)):
            await self._wake.wait()
            self._wake.clear()
            if not await self.holds_lease():
                return  # another process writes it now: what is pending is its to send
            # Taken together before any is sent: a thought that comes while the answer's
            # words are being sent waits for the next frame, never overtakes them.
            frames = []
            for name, part in streamed:
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
            if self._thinking_time_due:
                self._thinking_time_due = False
                await self._thinking_time()
            if not self._closing:
                await self._rest()

    async def status(self, text: str) -> None:
        """The line under the answer that says what it waits for ("" takes it away)."""
        if not text and not self._status_shown:
            return
        self._status_shown = bool(text)
        html = render_to_string(
            "conversations/_status_frame.html", {"message": self.answer, "status": text}
        )
        await live.publish_html(self.conversation_id, html)

    async def rewind(self) -> None:
        """Taken over: every page shows the answer as saved, and goes on from there."""
        html = await database_sync_to_async(render_frame)(self.answer)
        offsets = {name: part.published_len for name, part in self.parts.items()}
        await live.publish_rewind(
            self.conversation_id, message_id=self.answer.pk, offsets=offsets, html=html
        )

    async def resend(self, *, part: str, start: int, reply_to: str) -> None:
        """A part's text from `start` on, to one socket that missed it."""
        if part in self.parts and await self.holds_lease():
            await live.send_tokens(
                reply_to,
                message_id=self.answer.pk,
                part=part,
                start=start,
                text=self.published_text(part)[start:],
            )

    async def _thinking_time(self) -> None:
        html = render_to_string("conversations/_thinking_time_frame.html", {"message": self.answer})
        await live.publish_html(self.conversation_id, html)

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


def render_frame(answer: Message) -> str:
    """The answer as saved, as a frame that replaces it on every page."""
    answer.versions = answer.sibling_versions()
    return render_to_string("conversations/_message_frame.html", {"message": answer})


def _saved(answer: Message) -> list[tuple]:
    return [(part, getattr(answer, part.field)) for part in PARTS]


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
