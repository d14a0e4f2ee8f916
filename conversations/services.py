"""Writes that orchestrate several rows: keyword-only `<entity>_<action>` functions."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Conversation, Message


@dataclass
class Exchange:
    conversation: Conversation
    question: Message
    answer: Message
    created: bool  # False when the send was a replay of one already taken


def exchange_create(
    *, user, conversation: Conversation | None, settings_values: dict, text: str, client_id: str
) -> Exchange:
    """Save the user's message and an empty streaming answer, creating the conversation if new.

    Two or three inserts in one transaction: kept small, as it runs before the upstream call.
    """
    if conversation is not None and client_id:
        replay = _replayed(conversation, client_id)
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
                # Also bumps updated_at, so the conversation moves to the top of the list.
                conversation.save()
            question = Message.objects.create(
                conversation=conversation,
                role=Message.Role.USER,
                content=text,
                client_id=client_id,
            )
            answer = Message.objects.create(
                conversation=conversation,
                role=Message.Role.ASSISTANT,
                state=Message.State.STREAMING,
                model=conversation.model,
            )
    except IntegrityError:
        # A concurrent replay of the same send won the race.
        replay = _replayed(conversation, client_id) if conversation else None
        if replay is None:
            raise
        return replay
    return Exchange(conversation, question, answer, created=True)


def _replayed(conversation: Conversation, client_id: str) -> Exchange | None:
    question = Message.objects.filter(conversation=conversation, client_id=client_id).first()
    if question is None:
        return None
    answer = (
        Message.objects.filter(
            conversation=conversation, id__gt=question.id, role=Message.Role.ASSISTANT
        )
        .order_by("id")
        .first()
    )
    return Exchange(conversation, question, answer, created=False)


def answer_save(*, answer_id: int, **fields) -> None:
    # update() skips auto_now; updated_at is what tells a live answer from an abandoned one.
    Message.objects.filter(pk=answer_id).update(updated_at=timezone.now(), **fields)
