"""Writes that orchestrate several rows: keyword-only `<entity>_<action>` functions."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import context
from conversations.models import Conversation, Message, live_answers
from kimichat import kimi
from moderation.models import Usage
from uploads.models import UploadedFile


@dataclass
class Exchange:
    conversation: Conversation
    question: Message | None  # None when an answer is regenerated
    answer: Message
    created: bool  # False when the send was a replay of one already taken


class Refused(Exception):
    """A message that may not be answered now; the text says why."""


def generation_check(*, user, conversation: Conversation | None) -> None:
    """Refuse a new answer while one is being written here, in a conversation a moderator
    removed, or past the user's limits (suspension, daily tokens, rate, concurrency)."""
    if conversation is not None and conversation.is_hidden:
        raise Refused(_("A moderator removed this conversation. It cannot be continued."))
    standing = Usage.objects.standing(user)
    if not standing.active:
        raise Refused(_("Your account is suspended."))
    if standing.over_quota:
        raise Refused(
            _(
                "You have used today's quota of %(quota)s tokens. It renews at midnight "
                "(%(zone)s); an administrator can raise it."
            )
            % {"quota": f"{standing.quota:,}", "zone": settings.TIME_ZONE}
        )
    minute_ago = timezone.now() - timedelta(minutes=1)
    live = live_answers()
    recent = Q(role=Message.Role.ASSISTANT, created_at__gte=minute_ago)
    # One query for all three counts: it runs before every answer.
    counts = (
        Message.objects.of_user(user)
        .filter(live | recent)
        .aggregate(
            live=Count("id", filter=live),
            here=Count("id", filter=live & Q(conversation=conversation)),
            recent=Count("id", filter=recent),
        )
    )
    if conversation is not None and counts["here"]:
        raise Refused(_("Kimi is still answering. Wait for it or press Stop."))
    if counts["live"] >= settings.USER_MAX_CONCURRENT:
        raise Refused(
            _(
                "You already have %(count)s answers being written, the most at once. "
                "Wait for one to finish."
            )
            % {"count": settings.USER_MAX_CONCURRENT}
        )
    if counts["recent"] >= settings.USER_MESSAGES_PER_MINUTE:
        raise Refused(
            _(
                "You have asked for %(count)s answers in the last minute, the most allowed. "
                "Please wait a moment and send again."
            )
            % {"count": settings.USER_MESSAGES_PER_MINUTE}
        )


def files_check(*, files: list[UploadedFile], model: str) -> None:
    """Refuse files that cannot be read, and images for a model that cannot see them."""
    for file in files:
        if file.status == UploadedFile.Status.FAILED:
            raise Refused(
                _("“%(name)s” could not be read: %(reason)s")
                % {"name": file.name, "reason": file.error_text}
            )
        if file.is_image and not kimi.accepts_images(model):
            vision = [m for m in settings.KIMI_MODELS if kimi.accepts_images(m)]
            raise Refused(
                _(
                    "“%(name)s” is an image, and %(model)s cannot see images. Pick a model "
                    "that can: %(models)s."
                )
                % {"name": file.name, "model": model, "models": ", ".join(vision) or "—"}
            )


def request_when_ready(*, answer: Message) -> "context.Request | None":
    """The request for an answer whose question refers to files still being read: None while
    any is; then the files are checked and the request built (the answer keeps the model
    picked for it). Raises Refused or context.TooLong."""
    question = answer.parent
    files = list(question.files.all())
    if any(f.is_processing for f in files):
        return None
    conversation = Conversation.objects.get(pk=answer.conversation_id)
    files_check(files=files, model=conversation.model)
    request = context.build(
        conversation=conversation, thread=conversation.thread(), until=question.pk
    )
    answer_save(
        answer_id=answer.pk,
        model=request.model,
        context_trimmed=request.trimmed,
        sources=request.sources,
    )
    return request


def exchange_create(
    *,
    user,
    conversation: Conversation | None,
    settings_values: dict,
    text: str,
    client_id: str,
    parent_id: int | None,
    model: str,
    context_trimmed: int = 0,
    files: list[UploadedFile] = (),
    sources: list[dict] = (),
) -> Exchange:
    """Save the user's message (after `parent_id`, referring to `files`) and an empty
    streaming answer, creating
    the conversation if new. A few inserts in one transaction: kept small, as it runs before
    the upstream call."""
    if conversation is not None:
        replay = exchange_replayed(conversation=conversation, client_id=client_id)
        if replay:
            return replay
    try:
        with transaction.atomic():
            if conversation is None:
                conversation = Conversation.objects.create(
                    owner=user, title=Conversation.title_from(text), **settings_values
                )
            else:
                for name, value in settings_values.items():
                    setattr(conversation, name, value)
            question = Message.objects.create(
                conversation=conversation,
                parent_id=parent_id,
                role=Message.Role.USER,
                content=text,
                client_id=client_id,
            )
            if files:
                question.files.set(files)
            answer = _answer_create(conversation, question, model, context_trimmed, sources)
    except IntegrityError:
        # A concurrent replay of the same send won the race.
        replay = exchange_replayed(conversation=conversation, client_id=client_id)
        if replay is None:
            raise
        return replay
    return Exchange(conversation, question, answer, created=True)


def answer_create(
    *,
    conversation: Conversation,
    question: Message,
    model: str,
    context_trimmed: int = 0,
    sources: list[dict] = (),
) -> Exchange:
    """A new version of the answer to `question` (Regenerate, Retry); the old ones stay."""
    with transaction.atomic():
        answer = _answer_create(conversation, question, model, context_trimmed, sources)
    return Exchange(conversation, None, answer, created=True)


def _answer_create(
    conversation: Conversation,
    question: Message,
    model: str,
    context_trimmed: int,
    sources: list[dict],
) -> Message:
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        state=Message.State.STREAMING,
        model=model,
        context_trimmed=context_trimmed,
        sources=list(sources),
    )
    conversation.leaf = answer
    # Also bumps updated_at, so the conversation moves to the top of the list.
    conversation.save()
    return answer


def exchange_replayed(*, conversation: Conversation, client_id: str) -> Exchange | None:
    """The exchange a send with this client_id already made, if any."""
    if not client_id:
        return None
    question = Message.objects.filter(conversation=conversation, client_id=client_id).first()
    if question is None:
        return None
    answer = question.children.order_by("id").first()
    return Exchange(conversation, question, answer, created=False)


def version_select(*, conversation: Conversation, message: Message) -> None:
    """Show `message` (one version among its siblings) and the thread that follows from it."""
    conversation.leaf_id = conversation.thread().latest_leaf(message.pk)
    conversation.save(update_fields=["leaf"])


def answer_save(*, answer_id: int, **fields) -> None:
    # update() skips auto_now; updated_at is what tells a live answer from an abandoned one.
    Message.objects.filter(pk=answer_id).update(updated_at=timezone.now(), **fields)


def conversation_rename(*, conversation: Conversation, title: str) -> None:
    conversation.title = title
    conversation.title_is_custom = True
    conversation.save(update_fields=["title", "title_is_custom"])


def conversation_autotitle(*, conversation_id: int, title: str) -> bool:
    """Set a generated title, unless the user has named the conversation meanwhile."""
    title = Conversation.title_from(title)
    updated = Conversation.objects.filter(pk=conversation_id, title_is_custom=False).update(
        title=title
    )
    return bool(updated)
