"""A user's tokens: those they spend a day (a ledger that outlives conversations) and the quota
that caps them. Recorded after every answer; checked before it (accounts/admission.py)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Why staff without two-factor are refused (MFA_REQUIRED_FOR_STAFF), wherever they knock.
TWO_FACTOR_REQUIRED = _(
    "Staff accounts must use two-factor authentication. Turn it on to continue."
)


def two_factor_missing(user) -> bool:
    """With MFA_REQUIRED_FOR_STAFF, whether `user` is staff without two-factor (TOTP) turned
    on: then they may do nothing but turn it on, through any door (pages, sockets, API keys).
    Asked only of staff: no query for anyone else."""
    if not (settings.MFA_REQUIRED_FOR_STAFF and user.is_authenticated and user.is_staff):
        return False
    from allauth.mfa.models import Authenticator

    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


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


class Usage(models.Model):
    """Answers and tokens per user, day and model: a ledger that outlives the messages."""

    # Empty once the person deleted their account: the ledger keeps what was spent.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        related_name="usage",
        verbose_name=_("user"),
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
        return f"{self.user or _('(deleted)')} {self.day} {self.model}"

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


class PreferencesQuerySet(models.QuerySet["Preferences"]):
    def for_user(self, user) -> "Preferences":
        """The user's preferences; the defaults (unsaved) for one who never chose."""
        found = self.filter(user=user).first() if user.is_authenticated else None
        return found or Preferences(user=user if user.is_authenticated else None)


class Preferences(models.Model):
    """What a user chose on the Account page: the theme, and how a new chat starts."""

    class Theme(models.TextChoices):
        SYSTEM = "system", _("System")
        LIGHT = "light", _("Light")
        DARK = "dark", _("Dark")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="preferences", verbose_name=_("user")
    )
    theme = models.CharField(_("theme"), max_length=10, choices=Theme, default=Theme.SYSTEM)
    # Blank: the server's default model (KIMI_DEFAULT_MODEL), whatever it is at the time.
    default_model = models.CharField(_("default model"), max_length=100, blank=True)
    # As a conversation starts when nobody chose (Conversation.thinking's default).
    default_thinking = models.BooleanField(_("Thinking on in new chats"), default=True)
    default_web_search = models.BooleanField(_("Web search on in new chats"), default=False)

    objects = PreferencesQuerySet.as_manager()

    class Meta:
        verbose_name = _("preferences")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return f"{self.user}"

    def new_chat_initial(self, offered: list[str]) -> dict:
        """The composer's starting values for a new chat (a model no longer offered is left
        to the server's default)."""
        initial: dict = {
            "thinking": self.default_thinking,
            "web_search": self.default_web_search,
        }
        if self.default_model in offered:
            initial["model"] = self.default_model
        return initial


class ApprovalQuerySet(models.QuerySet):
    def pending(self) -> "ApprovalQuerySet":
        # Someone let in another way (reactivated under Users) no longer waits, nor does anyone
        # who has logged in before: an inactive account of theirs is a suspended one.
        return self.filter(
            approved_at__isnull=True, user__is_active=False, user__last_login__isnull=True
        )

    def approve(self, *, actor) -> list:
        """Let the people of these requests in; the users let in (for telling them)."""
        pending = list(self.pending().select_related("user"))
        users = [approval.user for approval in pending]
        with transaction.atomic():
            get_user_model().objects.filter(pk__in=[u.pk for u in users]).update(is_active=True)
            # Not self.filter: self may be the pending ones, which these no longer are.
            self.model._default_manager.filter(pk__in=[a.pk for a in pending]).update(
                approved_at=timezone.now(), approved_by=actor
            )
        return users


class Approval(models.Model):
    """A sign-up waiting for a moderator (SIGNUP=approval): the account is inactive until then."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="approval", verbose_name=_("user")
    )
    requested_at = models.DateTimeField(_("signed up"), default=timezone.now)
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )

    objects = ApprovalQuerySet.as_manager()

    class Meta:
        ordering = ["approved_at", "-requested_at"]
        verbose_name = _("sign-up approval")
        verbose_name_plural = _("sign-up approvals")
        indexes = [models.Index(fields=["approved_at"], name="approval_pending_idx")]

    def __str__(self) -> str:
        return str(self.user)

    @property
    def pending(self) -> bool:
        return self.approved_at is None
