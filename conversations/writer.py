"""The saves of one answer being written, and the lease that makes them this process's.

An answer is saved about once a second beside its stream (never in its way) and once at the
end, with the tokens it spent into the user's ledger; every save is made only while this
process holds the answer's lease (conversations/resume.py takes over answers whose lease
lapsed). This module also renews the leases of the answers this process writes."""

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from accounts.models import Usage
from conversations import parts
from conversations.models import Message, lease_until
from conversations.publisher import render_frame
from realtime import lifecycle

log = logging.getLogger(__name__)

SAVE_INTERVAL = 1.0
# While the database is unreachable, try the final save again this often, for this long.
RETRY_EVERY = 2.0
FINAL_SAVE_FOR = 120.0
# Of a lease, the part its writer counts on (the rest allows for clocks and delays): past
# it with no renewal heard, the writer sends the pages nothing until one is.
LEASE_COUNTED_ON = 0.75
TOKENS = ("prompt_tokens", "completion_tokens", "cached_tokens")

# Renewals have a thread (and database connection) of their own: on the thread every socket
# shares, a busy minute would hold them up until the leases lapse under live answers.
_renewing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leases")
# Once this process renews its answers' leases (`leases_renew`): how long after its lease
# was taken or renewed an answer surely still holds it. Past that, nothing more of it goes
# to the pages until a renewal says it holds, so two processes never stream one answer.
_holds_for: float | None = None


class Writer:
    """Owns one answer's lease and its saves."""

    def __init__(self, answer: Message) -> None:
        self.answer = answer
        self.lost = False  # another process holds its lease now: this one writes nothing more
        self.holds_until = math.inf  # time.monotonic(): see `_holds_for`
        self._renewed = asyncio.Event()
        self.on_lost: Callable[[], None] | None = None  # ends the answer's task
        self._next_save = 0.0
        self._saving: asyncio.Task | None = None
        # Going on from saved text: the tokens spent so far, and how much of each part was
        # written, so the count ends whole.
        self.carried = {name: getattr(answer, name) or 0 for name in TOKENS}
        self.carried_text = {name: len(text) for name, text in parts.texts(answer).items()}

    def lose(self) -> None:
        """Its lease lapsed and another process took it (this one could not renew it in
        time): nothing more is written or sent."""
        self.lost = True
        self._renewed.set()
        if self.on_lost is not None:
            self.on_lost()

    def lease_renewed(self, since: float) -> None:
        """Its lease was taken or renewed at `since` (time.monotonic(), taken before)."""
        if _holds_for is not None:
            until = since + _holds_for
            held = self.holds_until
            self.holds_until = until if math.isinf(held) else max(held, until)
        self._renewed.set()

    async def holds_lease(self) -> bool:
        """Whether this process still writes the answer: at once while its lease surely
        holds, otherwise once the next renewal (or the loss of the answer) says."""
        while not self.lost and time.monotonic() >= self.holds_until:
            self._renewed.clear()
            await self._renewed.wait()
        return not self.lost

    def save_soon(self, texts: Callable[[], dict[str, str]]) -> None:
        """Save the text so far if a second has passed since the last save: beside the
        stream, never in its way (tokens keep flowing meanwhile)."""
        now = time.monotonic()
        if now >= self._next_save and (self._saving is None or self._saving.done()):
            self._next_save = now + SAVE_INTERVAL
            self._saving = asyncio.create_task(self._save(texts()))

    def round_started(self) -> None:
        """A stream opened: its first save comes a second after."""
        self._next_save = time.monotonic() + SAVE_INTERVAL

    async def _save(self, texts: dict[str, str]) -> None:
        try:
            saved = await database_sync_to_async(answer_progress)(
                answer_id=self.answer.pk, texts=texts
            )
        except DatabaseError as e:
            # The database is restarting, say: the next save (or the final one) catches up.
            log.warning("Saving answer %s failed for now: %r", self.answer.pk, e)
            return
        if not saved and not self.lost:
            log.warning("Answer %s was taken over by another process", self.answer.pk)
            self.lose()

    async def finish(self, fields: dict[str, Any], usage: dict[str, Any] | None) -> str | None:
        """The final save (the answer's text and state in `fields`), tried again while the
        database is unreachable (a PostgreSQL restart under a running answer) for up to
        FINAL_SAVE_FOR seconds; the answer's frame (None: another process took the answer
        over, and says how it ends)."""
        for name, value in fields.items():
            setattr(self.answer, name, value)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + FINAL_SAVE_FOR
        retry = False
        while True:
            try:
                # Markdown rendering is CPU work: done beside the save, off the event loop,
                # so other streams' tokens keep flowing. Runs after any save in flight.
                return await database_sync_to_async(_finish_and_render)(
                    self.answer, fields, usage, retry
                )
            except DatabaseError as e:
                if loop.time() > give_up:
                    raise
                log.warning("Saving answer %s failed; trying again: %r", self.answer.pk, e)
                retry = True
                await asyncio.sleep(RETRY_EVERY)

    def tokens(self, spent: dict[str, int]) -> dict[str, int]:
        """The answer's token counts, with what it had spent before this writer."""
        return {name: self.carried[name] + spent.get(name, 0) for name in TOKENS}


def _finish_and_render(
    answer: Message, fields: dict[str, Any], usage: dict | None, retry: bool = False
) -> str | None:
    if retry:
        close_old_connections()  # the broken connection goes; the save opens a new one
    if not answer_finish(answer=answer, fields=fields, usage=usage):
        return None
    return render_frame(answer)


def answer_progress(*, answer_id: int, texts: dict[str, str]) -> bool:
    """Save the text so far of an answer this process writes (about once a second: `texts`,
    each part's by its field), as long as it holds the answer's lease: whether it did."""
    return Message.objects.progress_save(answer_id, owner=lifecycle.PROCESS, texts=texts)


def answer_write(*, answer_id: int, **fields) -> bool:
    """Save an answer this process writes, as long as it holds the answer's lease: whether
    it did (if not, another process took the answer over and writes it now)."""
    mine = Message.objects.filter(pk=answer_id, lease_owner=lifecycle.PROCESS)
    return bool(mine.update(updated_at=timezone.now(), **fields))


def answer_finish(*, answer: Message, fields: dict[str, Any], usage: dict[str, Any] | None) -> bool:
    """The final save of an answer this process writes (its text in `answer.content`), and
    the tokens it spent into the user's ledger: whether it was still this process's to
    save (the process that took it over counts what this one spent)."""
    with transaction.atomic():
        if not answer_write(answer_id=answer.pk, **{"content": answer.content, **fields}):
            return False
        if usage:
            Usage.objects.record(**usage)
    return True


async def leases_renew(writers: list[Writer]) -> None:
    """Renew the lease of every answer this process writes; one whose lease another process
    took meanwhile (this one could not renew it in time) ends here without a word more."""
    global _holds_for
    _holds_for = settings.ANSWER_LEASE * LEASE_COUNTED_ON
    writing = {w.answer.pk: w for w in writers if not w.lost}
    if not writing:
        return
    since = time.monotonic()
    held = await asyncio.get_running_loop().run_in_executor(_renewing, _renew, list(writing))
    for pk, writer in writing.items():
        if pk in held:
            writer.lease_renewed(since)
        else:
            log.warning("Answer %s was taken over by another process", pk)
            writer.lose()


def leases_forget() -> None:
    """No renewals here any more (tests: a process that renews no lease counts on its own)."""
    global _holds_for
    _holds_for = None


def _renew(ids: list[int]) -> set[int]:
    # A connection of its own, closed after: no broken one is kept across a database
    # restart, and none is left open between renewals a few seconds apart.
    try:
        now = timezone.now()
        mine = Message.objects.filter(pk__in=ids, lease_owner=lifecycle.PROCESS)
        streaming = mine.filter(state=Message.State.STREAMING)
        streaming.update(lease_expires=lease_until(), updated_at=now)
        return set(mine.values_list("pk", flat=True))
    finally:
        connection.close()
