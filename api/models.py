"""Personal API keys, and the calls made with them: who called, with which key, how many
tokens, and which calls are still running (the limits count them)."""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Count, F, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# What a key starts with, so that a leaked one is recognisable (secret scanners, logs).
PREFIX = "kc-"
# Characters of a key shown on the API keys page and in the admin, to tell keys apart.
SHOWN = len(PREFIX) + 6


def digest(key: str) -> str:
    """What is stored of a key. A key is 256 random bits, so one round of SHA-256 is enough:
    nothing can be guessed from the digest, and no slow hash is needed per request."""
    return hashlib.sha256(key.encode()).hexdigest()


class BudgetPeriod(models.TextChoices):
    DAY = "day", _("a day")
    MONTH = "month", _("a month")


class ApiKeyQuerySet(models.QuerySet):
    def for_user(self, user) -> "ApiKeyQuerySet":
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at=None)

    def find(self, key: str) -> "ApiKey | None":
        """The active key `key` is, with its user (one query); None for any other string."""
        if not key.startswith(PREFIX) or len(key) > 200:
            return None
        return self.active().select_related("user").filter(digest=digest(key)).first()


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_keys", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=80)
    # The start of the key, shown to tell keys apart; the rest is only in its digest.
    prefix = models.CharField(_("key starts with"), max_length=20)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    # What an organisation may bound a key by (empty or 0: no bound of the key's own; the
    # user's own limits hold all the same).
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    allowed_models = models.JSONField(
        _("allowed models"),
        default=list,
        blank=True,
        help_text=_("The models this key may use; none listed: all those offered."),
    )
    token_budget = models.PositiveBigIntegerField(
        _("token budget"), default=0, help_text=_("Tokens the key may spend a period; 0: none.")
    )
    budget_period = models.CharField(
        _("budget period"), max_length=5, choices=BudgetPeriod.choices, default=BudgetPeriod.DAY
    )
    requests_per_minute = models.PositiveIntegerField(
        _("requests a minute"), default=0, help_text=_("0: only the account's own limit.")
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @staticmethod
    def generate() -> str:
        return PREFIX + secrets.token_urlsafe(32)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def budget_start(self) -> datetime:
        """Where the key's budget period began: today's or this month's first moment."""
        now = timezone.localtime()
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.replace(day=1) if self.budget_period == BudgetPeriod.MONTH else start

    def spent_since(self, start: datetime) -> int:
        """Tokens the key's calls spent since `start`, and those the calls running now may
        still spend (their worst case is held until they end)."""
        live = Q(finished_at=None, started_at__gte=stale_before())
        totals = self.calls.filter(Q(started_at__gte=start) | live).aggregate(
            spent=Sum(F("prompt_tokens") + F("completion_tokens"), filter=~live),
            held=Sum("reserved_tokens", filter=live),
        )
        # int(): PostgreSQL sums big integers as numeric (a Decimal), which JSON cannot take.
        return int(totals["spent"] or 0) + int(totals["held"] or 0)


def stale_before() -> datetime:
    """A call still open after this long belongs to a process that died: the stream's own
    timeouts end a live one well before (Kimi's server gives up after five minutes)."""
    return timezone.now() - timedelta(minutes=15)


def calls_counted() -> tuple[str, dict[str, Any]]:
    """A user's API calls, as the admission rule counts them (accounts/admission.py): running
    now, and started in the last minute."""
    live = "a.finished_at IS NULL AND a.started_at >= %(api_stale)s"
    recent = "a.started_at >= %(minute_ago)s"
    sql = f"""
        SELECT COUNT(CASE WHEN {live} THEN 1 END) AS live, 0 AS here,
            COUNT(CASE WHEN {recent} THEN 1 END) AS recent
        FROM {connection.ops.quote_name(ApiCall._meta.db_table)} a
        WHERE a.user_id = %(user)s AND (({live}) OR ({recent}))
    """
    return sql, {"api_stale": connection.ops.adapt_datetimefield_value(stale_before())}


class ApiCallQuerySet(models.QuerySet):
    def counts(self, user) -> dict:
        """The user's calls running now, the tokens they may still spend, and the calls
        started in the last minute with the first of them (one query)."""
        live = Q(finished_at=None, started_at__gte=stale_before())
        recent = Q(started_at__gte=timezone.now() - timedelta(minutes=1))
        return (
            self.filter(user=user)
            .filter(live | recent)
            .aggregate(
                live=Count("id", filter=live),
                held=Sum("reserved_tokens", filter=live),
                recent=Count("id", filter=recent),
                first=Min("started_at", filter=recent),
            )
        )

    def of_key_recent(self, key) -> tuple[int, "datetime | None"]:
        """The key's calls started in the last minute, and the first of them."""
        totals = self.filter(key=key, started_at__gte=timezone.now() - timedelta(minutes=1))
        got = totals.aggregate(n=Count("id"), first=Min("started_at"))
        return got["n"], got["first"]

    def month_by_key(self, user) -> dict[int, int]:
        """Each of the user's keys' tokens this month (one query)."""
        start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        rows = (
            self.filter(user=user, started_at__gte=start, key__isnull=False)
            .values("key")
            .annotate(tokens=Sum(F("prompt_tokens") + F("completion_tokens")))
        )
        return {row["key"]: int(row["tokens"] or 0) for row in rows}


class ApiCall(models.Model):
    """One request to /v1/chat/completions that passed the checks and went to Kimi."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_calls", verbose_name=_("user")
    )
    # Kept when the key is deleted: the ledger outlives it.
    key = models.ForeignKey(
        ApiKey, models.SET_NULL, null=True, related_name="calls", verbose_name=_("API key")
    )
    model = models.CharField(_("model"), max_length=100)
    stream = models.BooleanField(_("streamed"), default=False)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The HTTP status Kimi answered with (200), or KimiChat's where Kimi was not reached or the
    # client left (499, as nginx logs it).
    status = models.PositiveSmallIntegerField(_("status"), null=True, blank=True)
    prompt_tokens = models.PositiveBigIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveBigIntegerField(_("completion tokens"), default=0)
    cached_tokens = models.PositiveBigIntegerField(_("cached tokens"), default=0)
    # The most the call may spend (its prompt and its answer's cap): held against the user's
    # and the key's budgets while it runs, so that calls at once cannot overshoot them.
    reserved_tokens = models.PositiveBigIntegerField(_("tokens held"), default=0)
    # A call to /v1/responses: the response's id, and, where API_KEEP_CONVERSATIONS keeps
    # calls, the exchange as chat messages, for a later call's `previous_response_id`.
    response_id = models.CharField(_("response id"), max_length=64, blank=True, db_index=True)
    transcript = models.JSONField(_("transcript"), null=True, blank=True, editable=False)

    objects = ApiCallQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("API call")
        verbose_name_plural = _("API usage")
        indexes = [models.Index(fields=["user", "-started_at"], name="apicall_user_started_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.model} {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
