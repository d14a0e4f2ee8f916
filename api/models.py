"""Personal API keys, and the calls made with them: who called, with which key, how many
tokens, and which calls are still running (the limits count them)."""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models
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
