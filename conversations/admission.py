"""What a chat's answers add to the one admission rule (accounts/admission.py): registered by
ConversationsConfig.ready, read in SQL with the API's calls in one statement."""

from typing import Any

from django.db import connection, models

from conversations.models import Conversation, Message, stale_before


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def answers_counted() -> tuple[str, dict[str, Any]]:
    """A user's chat answers, as the admission rule counts them (accounts/admission.py): being
    written (`live_answers`, in SQL), in the conversation asked in, and asked for in the last
    minute. Answers of API calls kept as conversations count once, as calls (api/models.py)."""
    live = (
        "m.state = %(chat_streaming)s AND (m.lease_expires > %(now)s OR "
        "(m.lease_expires IS NULL AND m.updated_at >= %(chat_stale)s))"
    )
    recent = "m.role = %(chat_assistant)s AND m.created_at >= %(minute_ago)s"
    sql = f"""
        SELECT COUNT(CASE WHEN {live} THEN 1 END) AS live,
            COUNT(CASE WHEN {live} AND m.conversation_id = %(conversation)s THEN 1 END) AS here,
            COUNT(CASE WHEN {recent} THEN 1 END) AS recent
        FROM {table(Message)} m
        JOIN {table(Conversation)} c ON c.id = m.conversation_id
        WHERE c.owner_id = %(user)s AND NOT c.from_api AND (({live}) OR ({recent}))
    """
    params = {
        "chat_stale": connection.ops.adapt_datetimefield_value(stale_before()),
        "chat_streaming": Message.State.STREAMING.value,
        "chat_assistant": Message.Role.ASSISTANT.value,
    }
    return sql, params
