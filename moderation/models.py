"""What moderators and admins oversee: reports on messages, the log of what they did, and the
tokens each user spends a day (with the quotas that cap it)."""

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Report(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        RESOLVED = "resolved", _("resolved")

    message = models.ForeignKey(
        "conversations.Message", models.CASCADE, related_name="reports", verbose_name=_("message")
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name=_("reported by")
    )
    reason = models.TextField(_("reason"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    resolution = models.TextField(_("resolution note"), blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    created_at = models.DateTimeField(_("reported at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        indexes = [models.Index(fields=["status", "-created_at"])]
        constraints = [
            # Reporting a message again updates the reason instead of queueing it twice.
            models.UniqueConstraint(fields=["message", "reporter"], name="one_report_per_user")
        ]

    def __str__(self) -> str:
        return f"Report #{self.pk}"


class ModerationAction(models.Model):
    """One thing a moderator did, kept after its target is gone."""

    class Kind(models.TextChoices):
        HIDE = "hide", _("hid a conversation")
        UNHIDE = "unhide", _("unhid a conversation")
        DELETE = "delete", _("deleted a conversation")
        SUSPEND = "suspend", _("suspended a user")
        REACTIVATE = "reactivate", _("reactivated a user")
        RESOLVE = "resolve", _("resolved a report")
        REOPEN = "reopen", _("reopened a report")
        QUOTA = "quota", _("set a token quota")

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("moderator"),
    )
    kind = models.CharField(_("action"), max_length=16, choices=Kind.choices)
    # What it was done to, as it was then: the row may be deleted since.
    target_type = models.CharField(_("target type"), max_length=32)
    target_id = models.BigIntegerField(_("target id"))
    target = models.CharField(_("target"), max_length=300)
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("moderation action")
        verbose_name_plural = _("moderation log")
        permissions = [("suspend_user", "Can suspend and reactivate users")]

    def __str__(self) -> str:
        return f"{self.actor} {self.get_kind_display()}: {self.target}"


@dataclass
class Standing:
    """What decides whether a user may ask for another answer now."""

    active: bool
    used: int  # tokens today
    quota: int  # tokens a day; 0 for no limit

    @property
    def over_quota(self) -> bool:
        return bool(self.quota) and self.used >= self.quota


class UsageQuerySet(models.QuerySet):
    def record(self, *, user_id: int, model: str, prompt_tokens: int, completion_tokens: int):
        """Add one answer's tokens to the user's day: one UPDATE, an INSERT the first time."""
        day = timezone.localdate()
        row = self.filter(user_id=user_id, day=day, model=model)
        added = {
            "messages": F("messages") + 1,
            "prompt_tokens": F("prompt_tokens") + prompt_tokens,
            "completion_tokens": F("completion_tokens") + completion_tokens,
        }
        if row.update(**added):
            return
        try:
            with transaction.atomic():
                self.create(
                    user_id=user_id,
                    day=day,
                    model=model,
                    messages=1,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                )
        except IntegrityError:
            # Another answer of the same user made today's row meanwhile.
            row.update(**added)

    def standing(self, user) -> Standing:
        """One query: whether the account is active, its tokens today and its quota."""
        from django.contrib.auth import get_user_model

        today = self.filter(user=OuterRef("pk"), day=timezone.localdate())
        used = today.values("user").annotate(t=Sum(F("prompt_tokens") + F("completion_tokens")))
        quota = TokenQuota.objects.filter(user=OuterRef("pk")).values("daily_tokens")
        row = (
            get_user_model()
            .objects.filter(pk=user.pk)
            .values("is_active")
            .annotate(used=Subquery(used.values("t")), quota=Subquery(quota))
            .first()
        )
        if row is None:
            return Standing(active=False, used=0, quota=0)
        daily = settings.USER_DAILY_TOKENS if row["quota"] is None else row["quota"]
        return Standing(active=row["is_active"], used=row["used"] or 0, quota=daily)


class Usage(models.Model):
    """Answers and tokens per user, day and model: a ledger that outlives the messages."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="usage", verbose_name=_("user")
    )
    day = models.DateField(_("day"))
    model = models.CharField(_("model"), max_length=100)
    messages = models.PositiveIntegerField(_("answers"), default=0)
    prompt_tokens = models.PositiveBigIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveBigIntegerField(_("completion tokens"), default=0)

    objects = UsageQuerySet.as_manager()

    class Meta:
        ordering = ["-day", "user_id", "model"]
        verbose_name = _("usage")
        verbose_name_plural = _("usage")
        constraints = [
            models.UniqueConstraint(fields=["user", "day", "model"], name="one_usage_row")
        ]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.user} {self.day} {self.model}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class TokenQuota(models.Model):
    """A user's own daily token quota, in place of USER_DAILY_TOKENS."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="token_quota", verbose_name=_("user")
    )
    daily_tokens = models.PositiveBigIntegerField(
        _("tokens a day"), help_text=_("Prompt and completion tokens together; 0 for no limit.")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("token quota")
        verbose_name_plural = _("token quotas")

    def __str__(self) -> str:
        return f"{self.user}: {self.daily_tokens}"
