"""What a user does with a chat as a whole: rename, pin, archive, share it with a team, copy a
shared one to continue it, and its title named after its first answer. Keyword-only
`<entity>_<action>` functions."""

import logging

import openai
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

import kimi
from accounts.models import Usage
from conversations import parts
from conversations.models import Conversation, Message
from kimi import params
from realtime import live
from teams.models import Team

log = logging.getLogger(__name__)


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


def conversation_pin(*, conversation: Conversation, pinned: bool) -> None:
    """Keep it at the top of the list, or not. Its place by date does not change (updated_at
    is left alone)."""
    conversation.pinned_at = timezone.now() if pinned else None
    conversation.save(update_fields=["pinned_at"])


def conversation_archive(*, conversation: Conversation, archived: bool) -> None:
    """Out of the list, into the Archived view (unpinned), or back."""
    conversation.archived_at = timezone.now() if archived else None
    conversation.pinned_at = None
    conversation.save(update_fields=["archived_at", "pinned_at"])


def conversation_share(*, conversation: Conversation, team: Team | None) -> None:
    """Let a team's members read the conversation (None: stop sharing it)."""
    conversation.team = team
    conversation.save(update_fields=["team"])


def conversation_copy(*, conversation: Conversation, user: User) -> Conversation:
    """The thread shown of a shared conversation, as a new conversation of `user`'s to
    continue. Files referred to come along; those `user` may not read are left out of what
    is sent to Kimi, as ever."""
    thread = conversation.thread()
    originals = Message.objects.filter(id__in=thread.ids).order_by("id").prefetch_related("files")
    with transaction.atomic():
        copy = Conversation.objects.create(
            owner=user,
            title=conversation.title,
            title_is_custom=conversation.title_is_custom,
            model=conversation.model,
            system_prompt=conversation.system_prompt,
            temperature=conversation.temperature,
            top_p=conversation.top_p,
            max_tokens=conversation.max_tokens,
            stop=conversation.stop,
            thinking=conversation.thinking,
            web_search=conversation.web_search,
            reasoning_effort=conversation.reasoning_effort,
            copied_from=conversation,
        )
        parent = None
        for original in originals:
            parent = Message.objects.create(
                conversation=copy,
                parent=parent,
                role=original.role,
                **parts.copied(original),
                # An answer still being written there is, here, as far as it had come.
                state=Message.State.INTERRUPTED if original.is_streaming else original.state,
                model=original.model,
                finish_reason=original.finish_reason,
                prompt_tokens=original.prompt_tokens,
                completion_tokens=original.completion_tokens,
                error_code=original.error_code,
                error=original.error,
                sources=original.sources,
                file_names=original.file_names,
            )
            parent.files.set(original.files.all())
        copy.leaf = parent
        copy.save(update_fields=["leaf"])
    return copy


async def conversation_title(
    *, user_id: int, conversation_id: int, model: str, question: str, answer: str
) -> None:
    """Name a new conversation after its first answer (asked of Kimi, counted in the user's
    ledger), and tell its pages; the first line stays on failure, and a name its owner gave
    meanwhile wins."""
    try:
        title = await kimi.title(
            model=model, question=question, answer=answer, params=params.title_params(model)
        )
    except (openai.APIError, kimi.NoKeyConfigured) as e:
        log.info("No title for conversation %s: %s", conversation_id, e)
        return
    saved = await database_sync_to_async(_title_save)(
        user_id=user_id, conversation_id=conversation_id, model=model, title=title
    )
    if saved:
        html = render_to_string(
            "conversations/_title_frame.html",
            {"conversation_id": conversation_id, "title": Conversation.title_from(title.text)},
        )
        await live.publish_html(conversation_id, html)


def _title_save(*, user_id: int, conversation_id: int, model: str, title: kimi.Title) -> bool:
    if title.usage is not None:
        Usage.objects.record(
            user_id=user_id,
            model=model,
            prompt_tokens=title.usage.prompt_tokens or 0,
            completion_tokens=title.usage.completion_tokens or 0,
            cached_tokens=title.usage.cached_tokens or 0,
            answers=0,
        )
    return bool(title.text) and conversation_autotitle(
        conversation_id=conversation_id, title=title.text
    )
