"""The answer pipeline and the writes that orchestrate several rows: keyword-only
`<entity>_<action>` functions.

A message, a regenerated answer and an edited question each go the same way: resolve the files
referred to, check the user may have an answer now, build the request within the model's window,
then save the question (if new) and an empty streaming answer. Any refusal is one `Refused`
(conversations/checks.py), with the sentence for the page. Streaming the answer is
generation.py's."""

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import context, parts
from conversations.checks import Refused, files_check, generation_check
from conversations.forms import (
    MAX_MESSAGE_CHARS,
    RETIRED,
    first_error,
    retired_model,
    settings_form_for_message,
)
from conversations.models import Conversation, Message, lease_until
from kimi import catalogue, params
from realtime import lifecycle
from uploads import references
from uploads.models import UploadedFile

log = logging.getLogger(__name__)


@dataclass
class Exchange:
    conversation: Conversation
    question: Message | None  # None when an answer is regenerated
    answer: Message
    created: bool  # False when the send was a replay of one already taken


@dataclass
class Answering:
    """An answer to write: saved, streaming, with what to send Kimi."""

    exchange: Exchange
    request: context.Request | None  # None while files it refers to are being read
    waiting: list[UploadedFile]  # those files
    params: dict[str, Any]  # sampling parameters from the conversation's settings
    title_wanted: bool  # the first answer of a chat not named by its owner
    web: bool = False  # "Web search" on: Kimi may search and read pages
    # When (time.monotonic()) its lease was taken, or a moment after: it holds from then on
    # for ANSWER_LEASE seconds, unless renewed (conversations/resume.py).
    leased_at: float = field(default_factory=time.monotonic)

    @property
    def conversation(self) -> Conversation:
        return self.exchange.conversation

    @property
    def answer(self) -> Message:
        return self.exchange.answer


def answer_request(
    *,
    user: User,
    conversation: Conversation | None,
    text: str,
    client_id: str = "",
    options: Mapping[str, Any] | None = None,
    attached: list[int] | None = None,
) -> Answering | None:
    """A new message at the end of the thread shown (starting a conversation when there is
    none), with its answer to write. None for nothing to do: an empty message, or a replayed
    send (the first one is already being answered). `options`: the conversation's settings
    as sent with the message; `attached`: files attached in the composer."""
    text = _question(text)
    if not text:
        return None
    conversation = _fresh(conversation)
    thread = conversation.thread() if conversation else None
    if thread is not None and client_id in thread.client_ids:
        return None  # a replayed send: the first one is being answered
    retired = retired_model(conversation)
    form = settings_form_for_message(options or {}, conversation or Conversation(owner=user))
    if not form.is_valid():
        raise Refused(first_error(form))
    leaf = thread.ids[-1] if thread and thread.ids else None
    # The user's limits first: they are cheap, and a refused message costs no more.
    generation_check(user=user, conversation=conversation)
    files = _resolve(user=user, text=text, attached=attached or [])
    request, waiting = _prepare(
        files=files,
        model=form.instance.model,
        build={"conversation": form.instance, "thread": thread, "until": leaf, "question": text},
    )
    exchange = exchange_create(
        user=user,
        conversation=conversation,
        settings_values={name: form.cleaned_data[name] for name in form.Meta.fields},
        text=text,
        client_id=client_id,
        parent_id=leaf,
        files=files,
        replaced_model=_replaced(retired, form.instance.model),
        **_answer_fields(request, form.instance.model),
    )
    if not exchange.created:
        return None
    return _answering(exchange, request, waiting)


def answer_regenerate(
    *,
    user: User,
    conversation: Conversation,
    message_id: int,
    options: Mapping[str, Any] | None = None,
) -> Answering | None:
    """A new version of an answer (Regenerate, Retry); the old ones stay. None where it no
    longer applies (the message is gone, or an answer is being written: a double click)."""
    conversation, answer = _changing(conversation, message_id, Message.Role.ASSISTANT)
    if answer is None or answer.parent is None:
        return None
    question = answer.parent
    retired = retired_model(conversation)
    _settings_save(conversation, options)
    generation_check(user=user, conversation=conversation)
    files = list(question.files.all())
    request, waiting = _prepare(
        files=files,
        model=conversation.model,
        build={"conversation": conversation, "thread": conversation.thread(), "until": question.pk},
    )
    exchange = answer_create(
        conversation=conversation,
        question=question,
        replaced_model=_replaced(retired, conversation.model),
        **_answer_fields(request, conversation.model),
    )
    return _answering(exchange, request, waiting)


def question_edit(
    *,
    user: User,
    conversation: Conversation,
    message_id: int,
    text: str,
    client_id: str = "",
    options: Mapping[str, Any] | None = None,
) -> Answering | None:
    """The question, edited, as a new version of it (the old one stays), with its answer.
    None where it no longer applies, or for an empty text or a replayed send."""
    text = _question(text)
    if not text:
        return None
    conversation, question = _changing(conversation, message_id, Message.Role.USER)
    if question is None or exchange_replayed(conversation=conversation, client_id=client_id):
        return None
    retired = retired_model(conversation)
    _settings_save(conversation, options)
    generation_check(user=user, conversation=conversation)
    # The edited question keeps the files it had, plus any it now names; of those, Kimi is
    # sent only what the owner may read now (context.readable: not a copied conversation's
    # writer's own files, nor a team's once its member left).
    files = _resolve(user=user, text=text, attached=[])
    files += [f for f in question.files.all() if f not in files]
    request, waiting = _prepare(
        files=files,
        model=conversation.model,
        build={
            "conversation": conversation,
            "thread": conversation.thread(),
            "until": question.parent_id,
            "question": text,
        },
    )
    exchange = exchange_create(
        user=user,
        conversation=conversation,
        settings_values={},
        text=text,
        client_id=client_id,
        parent_id=question.parent_id,
        files=files,
        replaced_model=_replaced(retired, conversation.model),
        **_answer_fields(request, conversation.model),
    )
    if not exchange.created:
        return None
    return _answering(exchange, request, waiting)


def answer_continue(*, user: User, conversation: Conversation, message_id: int) -> Answering | None:
    """Kimi goes on with an answer cut off by its max tokens, stopped or interrupted: the
    same answer streams again, Kimi asked in partial mode with the text so far as the start
    of its reply (which it does not repeat). None where it no longer applies."""
    conversation, answer = _changing(conversation, message_id, Message.Role.ASSISTANT)
    if answer is None or answer.parent is None or not answer.can_continue:
        return None
    question = answer.parent
    if not catalogue.is_offered(answer.model):
        raise Refused(RETIRED % {"model": answer.model})
    files_check(files=list(question.files.all()), model=answer.model)
    generation_check(user=user, conversation=conversation)
    try:
        request = context.build(
            conversation=conversation, thread=conversation.thread(), until=question.pk
        )
    except context.TooLong as e:
        raise Refused(str(e)) from e
    request.messages.append(parts.partial_reply(answer))
    request.model = answer.model
    answer_save(
        answer_id=answer.pk,
        state=Message.State.STREAMING,
        finish_reason="",
        error_code="",
        error="",
        lease_owner=lifecycle.PROCESS,
        lease_expires=lease_until(),
    )
    answer.state = Message.State.STREAMING
    return Answering(
        exchange=Exchange(conversation, None, answer, created=True),
        request=request,
        waiting=[],
        params=params.continue_params(conversation, answer.model),
        title_wanted=False,
        web=conversation.searches_web,
    )


def version_show(*, conversation: Conversation, message_id: int) -> Conversation | None:
    """Show another version of a message (and the thread that follows from it). None where
    it no longer applies; else the conversation, with its new thread."""
    conversation, message = _changing(conversation, message_id, None)
    if message is None:
        return None
    version_select(conversation=conversation, message=message)
    return conversation


def _question(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_MESSAGE_CHARS:
        raise Refused(_("The message is too long (at most 100,000 characters)."))
    return text


def _fresh(conversation: Conversation | None) -> Conversation | None:
    # Another tab may have moved the thread on (or changed settings) since the page loaded.
    if conversation is None:
        return None
    # With its owner, whose files the request may refer to.
    return Conversation.objects.select_related("owner").get(pk=conversation.pk)


def _changing(
    conversation: Conversation, message_id: int, role: str | None
) -> tuple[Conversation, Message | None]:
    """The conversation as it is now, and its message to change (of `role`): none while an
    answer is being written there (its buttons are hidden meanwhile)."""
    conversation = Conversation.objects.get(pk=conversation.pk)
    messages = conversation.messages.filter(pk=message_id)
    if role is not None:
        messages = messages.filter(role=role)
    message = messages.select_related("parent").first()
    if message is None or conversation.messages.live().exists():
        return conversation, None
    return conversation, message


def _settings_save(conversation: Conversation, options: Mapping[str, Any] | None) -> None:
    form = settings_form_for_message(options or {}, conversation)
    if not form.is_valid():
        raise Refused(first_error(form))
    form.save()


def _resolve(*, user: User, text: str, attached: list[int]) -> list[UploadedFile]:
    try:
        return references.resolve(user=user, text=text, attached=attached)
    except references.NotFound as e:
        raise Refused(str(e)) from e


def _prepare(
    *,
    files: list[UploadedFile],
    model: str,
    build: dict[str, Any],
) -> tuple[context.Request | None, list[UploadedFile]]:
    """The one step every answer takes before it is saved (after `generation_check`): the
    files must be readable by `model`, and the request must fit. With files still being read,
    no request yet (it is built when they are), and those files."""
    files_check(files=files, model=model)
    waiting = [f for f in files if f.is_processing]
    if "question" in build:
        build["files"] = files
    try:
        request = context.build(**build)
    except context.TooLong as e:
        raise Refused(str(e)) from e
    return (None if waiting else request), waiting


def _answer_fields(request: context.Request | None, model: str) -> dict[str, Any]:
    """What a new answer records of its request: the model it resolved to, the turns left out
    and the passages' sources; while files are read, the model picked (the rest comes when
    the request is built)."""
    if request is None:
        return {"model": model, "context_trimmed": 0, "sources": []}
    return {"model": request.model, "context_trimmed": request.trimmed, "sources": request.sources}


def _replaced(retired: str, model: str) -> str:
    """The retired model a conversation goes on without (the thread says so, once)."""
    return retired if retired and model != retired else ""


def _answering(
    exchange: Exchange, request: context.Request | None, waiting: list[UploadedFile]
) -> Answering:
    conversation, question = exchange.conversation, exchange.question
    return Answering(
        exchange=exchange,
        request=request,
        waiting=waiting,
        params=params.request_params(conversation, exchange.answer.model),
        web=conversation.searches_web,
        title_wanted=(
            settings.KIMI_AUTO_TITLE
            and question is not None
            and question.parent_id is None
            and not conversation.title_is_custom
        ),
    )


def request_when_ready(*, answer: Message) -> context.Request | None:
    """The request for an answer whose question refers to files still being read: None while
    any is; then the files are checked and the request built (the answer keeps the model
    picked for it). Raises Refused."""
    question = answer.parent
    assert question is not None, "an answer follows its question"
    files = list(question.files.all())
    if any(f.is_processing for f in files):
        return None
    conversation = Conversation.objects.get(pk=answer.conversation_id)
    files_check(files=files, model=conversation.model)
    try:
        request = context.build(
            conversation=conversation, thread=conversation.thread(), until=question.pk
        )
    except context.TooLong as e:
        raise Refused(str(e)) from e
    answer_save(
        answer_id=answer.pk,
        model=request.model,
        context_trimmed=request.trimmed,
        sources=request.sources,
    )
    return request


def exchange_create(
    *,
    user: User,
    conversation: Conversation | None,
    settings_values: dict,
    text: str,
    client_id: str,
    parent_id: int | None,
    model: str,
    context_trimmed: int = 0,
    files: Sequence[UploadedFile] = (),
    sources: Sequence[dict] = (),
    replaced_model: str = "",
) -> Exchange:
    """Save the user's message (after `parent_id`, referring to `files`) and an empty
    streaming answer, creating the conversation if new. A few inserts in one transaction:
    kept small, as it runs before the upstream call. (Callers look for a replayed send
    first; one that comes meanwhile is caught by the unique client id.)"""
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
                file_names=[[file.pk, file.name] for file in files],
            )
            if files:
                question.files.set(files)
            answer = _answer_create(
                conversation, question, model, context_trimmed, sources, replaced_model
            )
    except IntegrityError:
        # A concurrent replay of the same send won the race (in a conversation that exists).
        if conversation is None:
            raise
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
    sources: Sequence[dict] = (),
    replaced_model: str = "",
) -> Exchange:
    """A new version of the answer to `question` (Regenerate, Retry); the old ones stay."""
    with transaction.atomic():
        answer = _answer_create(
            conversation, question, model, context_trimmed, sources, replaced_model
        )
    return Exchange(conversation, None, answer, created=True)


def _answer_create(
    conversation: Conversation,
    question: Message,
    model: str,
    context_trimmed: int,
    sources: Sequence[dict],
    replaced_model: str = "",
) -> Message:
    takes_effort = catalogue.takes_effort(model)
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        state=Message.State.STREAMING,
        model=model,
        reasoning_effort=conversation.reasoning_effort if takes_effort else "",
        replaced_model=replaced_model,
        context_trimmed=context_trimmed,
        sources=list(sources),
        # Written by this process, which renews the lease while it writes (resume.py).
        lease_owner=lifecycle.PROCESS,
        lease_expires=lease_until(),
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
    if answer is None:  # saved together: cannot be, short of a hand-made row
        return None
    return Exchange(conversation, question, answer, created=False)


def version_select(*, conversation: Conversation, message: Message) -> None:
    """Show `message` (one version among its siblings) and the thread that follows from it."""
    conversation.leaf_id = conversation.thread().latest_leaf(message.pk)
    conversation.save(update_fields=["leaf"])


def answer_save(*, answer_id: int, **fields) -> None:
    # update() skips auto_now; updated_at is what tells a live answer from an abandoned one.
    Message.objects.filter(pk=answer_id).update(updated_at=timezone.now(), **fields)
