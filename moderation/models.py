"""What moderators oversee: reports on messages, and the log of what they did. (The tokens
each user spends, and the quotas that cap them, are the accounts app's.)"""

from typing import Any

from django.conf import settings
from django.db import models
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


def reported_by(user: Any, message_ids: list[int]) -> set[int]:
    """Which of these messages `user` has reported."""
    reports = Report.objects.filter(reporter=user, message_id__in=message_ids)
    return set(reports.values_list("message_id", flat=True))
