"""A user's standing: the tokens they spend a day (a ledger that outlives conversations) and
the quota that caps them. Checked before every answer, recorded after it."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, transaction
from django.db.models import F, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
    def record(
        self,
        *,
        user_id: int,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        searches: int = 0,
        answers: int = 1,
    ) -> None:
        """Add one request's tokens to the user's day (an answer, or a title: `answers=0`):
        one UPDATE, an INSERT the first time."""
        day = timezone.localdate()
        row = self.filter(user_id=user_id, day=day, model=model)
        counts = {
            "messages": answers,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached_tokens": cached_tokens,
            "searches": searches,
        }
        added = {name: F(name) + value for name, value in counts.items()}
        if row.update(**added):
            return
        try:
            with transaction.atomic():
                self.create(user_id=user_id, day=day, model=model, **counts)
        except IntegrityError:
            # Another answer of the same user made today's row meanwhile.
            row.update(**added)

    def standing(self, user) -> Standing:
        """One query: whether the account is active, its tokens today and its quota."""
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
    # Of the prompt tokens, those Kimi served from its context cache.
    cached_tokens = models.PositiveBigIntegerField(_("cached tokens"), default=0)
    searches = models.PositiveIntegerField(_("web searches"), default=0)

    objects = UsageQuerySet.as_manager()

    class Meta:
        ordering = ["-day", "user_id", "model"]
        verbose_name = _("usage")
        verbose_name_plural = _("usage")
        constraints = [
            models.UniqueConstraint(fields=["user", "day", "model"], name="one_usage_row")
        ]
        indexes = [models.Index(fields=["day"], name="usage_day_idx")]

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
