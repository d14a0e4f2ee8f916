"""Answers outlive the process writing them.

Every answer being written holds a lease (`Message.lease_owner`, `lease_expires`), taken when
it is saved empty and renewed every third of ANSWER_LEASE by its process. A process that
stops (SIGTERM) lets its answers finish for up to SHUTDOWN_GRACE seconds, then saves the rest
and gives their leases up; a process that dies leaves them to lapse. Either way, the next
process to look (every live one looks every few seconds, and one starting looks at once)
takes each over with one conditional UPDATE, which only one of them can win, and goes on
from the saved text in Kimi's partial mode: the pages are shown the answer as saved, then
the rest streams. One that cannot go on (no key, the model gone, the thread moved on, taken
over ANSWER_MAX_RESUMES times already) is left interrupted, its words kept, to Continue.

What a crash costs: the text received after the last save (about a second, SAVE_INTERVAL)
is written anew, and the tokens the dead process was sent are counted by estimate."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Usage
from conversations import context, generation, parts, writer
from conversations.models import Message, lapsed_answers, lease_until, live_answers
from conversations.services import Answering, Exchange
from kimi import catalogue, params
from realtime import lifecycle, live

log = logging.getLogger(__name__)

# Answers one process takes over in one look (the rest wait for the next look, or another).
TAKE_AT_ONCE = 20
# Seconds a handed-over answer may take to save before the process exits regardless.
HAND_OVER_SAVE = 10.0


@dataclass
class _Watch:
    loop: asyncio.AbstractEventLoop
    task: asyncio.Task


_watch: _Watch | None = None


def keep_watch() -> None:
    """Renew this process's leases and take over lapsed answers, in the background of this
    event loop, unless that is under way already (cheap: the ASGI application calls it for
    every connection, as Daphne has no start-up hook)."""
    global _watch
    loop = asyncio.get_running_loop()
    watch = _watch
    if watch is None or watch.task.done() or watch.loop is not loop:
        _watch = _Watch(loop, loop.create_task(_watch_loop()))
        lifecycle.on_drain(drain)


async def _watch_loop() -> None:
    while True:
        try:
            await leases_renew()
            if not lifecycle.draining():
                await answers_take_over()
        except Exception:
            # The database is restarting, say: the answers stream on, and the next look
            # renews their leases (one missed look is well inside a lease).
            log.exception("Renewing leases or taking answers over failed; trying again")
        await asyncio.sleep(settings.ANSWER_LEASE / 3)


async def leases_renew() -> None:
    """Renew the lease of every answer this process writes (conversations/writer.py)."""
    await writer.leases_renew([g.writer for g in generation.all_running()])


async def answers_take_over() -> list[generation.Generation]:
    """Take over the answers whose lease lapsed, and go on with each: the answers now
    written here."""
    taken = await database_sync_to_async(answers_claim)()
    started = []
    for answer, answering, html in taken:
        if answering is None:
            await live.publish_html(answer.conversation_id, html)
            continue
        log.info("Taking over answer %s (resumed %s times)", answer.pk, answer.resumes)
        started.append(
            generation.generation_start(
                answering=answering, user_id=answering.conversation.owner_id, resumed=True
            )
        )
    return started


def answers_claim(limit: int = TAKE_AT_ONCE) -> list[tuple[Message, Answering | None, str]]:
    """Claim lapsed answers for this process, each with one UPDATE that only one process
    can win; for each, what to go on with (None: left interrupted, with its frame). Never
    its own: one it writes is renewed, and one it took in but has not started yet (a process
    seconds behind, under a burst of messages) is about to be written here."""
    claimed = []
    lapsed = (
        Message.objects.filter(lapsed_answers())
        .exclude(lease_owner=lifecycle.PROCESS)
        .values_list("pk", "lease_owner")
    )
    for pk, owner in lapsed[:limit]:
        won = Message.objects.filter(lapsed_answers(), pk=pk).update(
            lease_owner=lifecycle.PROCESS,
            lease_expires=lease_until(),
            updated_at=timezone.now(),
            resumes=F("resumes") + 1,
        )
        if not won:
            continue  # another process was quicker
        answer = Message.objects.select_related("conversation", "parent").get(pk=pk)
        # A writer that handed the answer over (emptying the owner) counted its tokens.
        claimed.append(answer_resume(answer=answer, writer_died=bool(owner)))
    return claimed


def answer_resume(*, answer: Message, writer_died: bool) -> tuple[Message, Answering | None, str]:
    """What to go on with for an answer just claimed: its request in partial mode (the
    text so far as the start of Kimi's reply), the tokens its dead writer spent counted by
    estimate; or, where it cannot go on, the answer left interrupted and its frame."""
    conversation, question = answer.conversation, answer.parent
    # The thread moved on while it had no writer: a message after it, a newer version of
    # it, or another answer being written.
    moved_on = (
        conversation.messages.filter(live_answers()).exclude(pk=answer.pk)
        | conversation.messages.filter(parent=answer.pk)
        | conversation.messages.filter(parent=answer.parent_id, pk__gt=answer.pk)
    )
    reason = ""
    if answer.resumes > settings.ANSWER_MAX_RESUMES:
        reason = "taken over too many times"
    elif not settings.MOONSHOT_API_KEY:
        reason = "no Kimi key"
    elif question is None or conversation.is_hidden or moved_on.exists():
        reason = "the conversation moved on"
    elif not catalogue.is_offered(answer.model):
        reason = "its model is no longer offered"
    request = None
    if not reason:
        assert question is not None
        try:
            request = context.build(
                conversation=conversation, thread=conversation.thread(), until=question.pk
            )
        except context.TooLong:
            reason = "its documents no longer fit"
    if request is None:
        log.info("Answer %s cannot be resumed (%s): left interrupted", answer.pk, reason)
        if writer_died:
            _count_lost(answer, [])  # what it wrote, at least (its request is not rebuilt)
        return answer, None, _interrupt(answer)
    assert question is not None
    waiting = [f for f in question.files.all() if f.is_processing]
    if writer_died:
        _count_lost(answer, request.messages)
    if answer.content:
        request.messages.append(parts.partial_reply(answer))
    request.model = answer.model
    fresh = not any(parts.texts(answer).values())
    answering = Answering(
        exchange=Exchange(conversation, None, answer, created=True),
        request=None if waiting else request,
        waiting=waiting,
        params=(params.request_params if fresh else params.continue_params)(
            conversation, answer.model
        ),
        title_wanted=False,
        web=conversation.searches_web,
    )
    return answer, answering, ""


def _count_lost(answer: Message, messages: list[dict[str, Any]]) -> None:
    """The tokens a dead process was sent for this answer, by estimate (Kimi reports them
    only at the end of a stream), into the user's ledger and onto the answer."""
    prompt = sum(catalogue.estimate_tokens(str(m["content"])) for m in messages)
    written = catalogue.estimate_tokens("".join(parts.texts(answer).values()))
    completion = max(0, written - (answer.completion_tokens or 0))
    Usage.objects.record(
        user_id=answer.conversation.owner_id,
        model=answer.model,
        prompt_tokens=prompt,
        completion_tokens=completion,
    )
    answer.prompt_tokens = (answer.prompt_tokens or 0) + prompt
    answer.completion_tokens = (answer.completion_tokens or 0) + completion
    Message.objects.filter(pk=answer.pk).update(
        prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens
    )


def _interrupt(answer: Message) -> str:
    Message.objects.filter(pk=answer.pk).update(
        state=Message.State.INTERRUPTED, lease_owner="", updated_at=timezone.now()
    )
    answer.state = Message.State.INTERRUPTED
    answer.versions = answer.sibling_versions()
    return render_to_string("conversations/_message_frame.html", {"message": answer})


async def drain(grace: float) -> None:
    """This process stops: its answers finish within `grace` seconds; those still running
    then are saved and handed over (another process goes on with them at once)."""
    tasks = [g.task for g in generation.all_running() if g.task]
    if tasks and grace > 0:
        log.info("Stopping: letting %d answer(s) finish (up to %s s)", len(tasks), grace)
        await asyncio.wait(tasks, timeout=grace)
    left = [g for g in generation.all_running() if g.task and not g.task.done()]
    for running in left:
        log.info("Stopping: handing answer %s over", running.answer.pk)
        running.hand_over()
    if left:
        await asyncio.wait([g.task for g in left if g.task], timeout=HAND_OVER_SAVE)
    if _watch is not None:
        _watch.task.cancel()
