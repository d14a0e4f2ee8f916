"""One rule for whether a user may have another answer now, from the chat or the API alike:
the account's standing (active, tokens today against its quota), its answers being written
(at most USER_MAX_CONCURRENT at once, one per conversation) and those asked for in the last
minute (at most USER_MESSAGES_PER_MINUTE). A chat's answers and the API's calls count
together.

The apps that write answers say how theirs are counted (`counts_answers`, from their
AppConfig.ready: this app sits below them and imports none); `standing` reads everything in
one statement, because it runs before every answer: built by the ORM, it cost more than the
rest of taking a message in (a burst of messages waits on it)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import TokenQuota, Usage

# How an app counts a user's answers: SQL selecting one row of three counts, `live` (being
# written now), `here` (being written in conversation %(conversation)s) and `recent` (asked
# for since %(minute_ago)s), for user %(user)s; and its own parameters (prefixed with its
# name). %(now)s is given too.
Counter = Callable[[], tuple[str, dict[str, Any]]]
_counters: dict[str, Counter] = {}


def counts_answers(name: str, counter: Counter) -> None:
    _counters[name] = counter


@dataclass
class Standing:
    """What decides whether a user may ask for another answer now."""

    active: bool
    used: int  # tokens today
    quota: int  # tokens a day; 0 for no limit
    live: int = 0  # answers being written now, the chat's and the API's
    here: int = 0  # of them, in the conversation asked in
    recent: int = 0  # answers asked for in the last minute

    @property
    def over_quota(self) -> bool:
        return bool(self.quota) and self.used >= self.quota


@dataclass
class Refusal:
    """Why an answer is refused: one of the reasons below, and the sentence that says so."""

    reason: str  # "suspended", "quota", "answering_here", "concurrency", "rate"
    message: str


def refusal(standing: Standing) -> Refusal | None:
    """The rule: None where the answer may go ahead."""
    if not standing.active:
        return Refusal("suspended", _("Your account is suspended."))
    if standing.over_quota:
        return Refusal(
            "quota",
            _(
                "You have used today's quota of %(quota)s tokens. It renews at midnight "
                "(%(zone)s); an administrator can raise it."
            )
            % {"quota": f"{standing.quota:,}", "zone": settings.TIME_ZONE},
        )
    if standing.here:
        return Refusal("answering_here", _("Kimi is still answering. Wait for it or press Stop."))
    if standing.live >= settings.USER_MAX_CONCURRENT:
        return Refusal(
            "concurrency",
            _(
                "You already have %(count)s answers being written, the most at once. "
                "Wait for one to finish."
            )
            % {"count": settings.USER_MAX_CONCURRENT},
        )
    if standing.recent >= settings.USER_MESSAGES_PER_MINUTE:
        return Refusal(
            "rate",
            _(
                "You have asked for %(count)s answers in the last minute, the most allowed. "
                "Please wait a moment and send again."
            )
            % {"count": settings.USER_MESSAGES_PER_MINUTE},
        )
    return None


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def standing(user_id: int, conversation_id: int | None = None) -> Standing:
    """The user's standing and answers, in one statement."""
    now = timezone.now()
    dates = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "user": user_id,
        "conversation": conversation_id,
        "day": connection.ops.adapt_datefield_value(timezone.localdate(now)),
        "now": dates(now),
        "minute_ago": dates(now - timedelta(minutes=1)),
    }
    joins: list[str] = []
    sums: dict[str, list[str]] = {"live": [], "here": [], "recent": []}
    for name, counter in _counters.items():
        sql, own = counter()
        params.update(own)
        joins.append(f"CROSS JOIN ({sql}) {name}")
        for count, terms in sums.items():
            terms.append(f"{name}.{count}")
    counted = ", ".join(" + ".join(terms) or "0" for terms in sums.values())
    sql = f"""
        SELECT u.is_active, used.tokens, quota.daily_tokens, {counted}
        FROM {_table(get_user_model())} u
        CROSS JOIN (
            SELECT SUM(prompt_tokens + completion_tokens) AS tokens
            FROM {_table(Usage)} WHERE user_id = %(user)s AND day = %(day)s
        ) used
        LEFT JOIN {_table(TokenQuota)} quota ON quota.user_id = u.id
        {" ".join(joins)}
        WHERE u.id = %(user)s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return Standing(active=False, used=0, quota=0)
    active, used, quota, live, here, recent = row
    return Standing(
        active=bool(active),
        used=int(used or 0),  # PostgreSQL sums big integers as numeric (a Decimal)
        quota=settings.USER_DAILY_TOKENS if quota is None else quota,
        live=live or 0,
        here=here or 0,
        recent=recent or 0,
    )
