"""Teams: a shared library of documents, and conversations shared with the members."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kimichat.names import validate_name


class TeamQuerySet(models.QuerySet):
    def for_user(self, user) -> "TeamQuerySet":
        """The teams `user` belongs to (any role)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Team(models.Model):
    name = models.CharField(_("team name"), max_length=80, validators=[validate_name])
    # How a message refers to the whole library: "@<slug>".
    slug = models.SlugField(_("reference"), max_length=90, unique=True, allow_unicode=True)
    # The single sign-on group whose people join this team, exactly as the provider names it;
    # set by an administrator only (a team's name decides nothing: anyone may name a team).
    sso_group = models.CharField(
        _("single sign-on group"),
        max_length=150,
        blank=True,
        db_index=True,
        help_text=_(
            "People in this group at the identity provider (exactly this name) join the "
            "team when they log in with single sign-on. Leave empty for none."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("team", args=[self.pk])

    @property
    def reference(self) -> str:
        return f"@{self.slug}"


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        MEMBER = "member", _("Member")

    # Owners and admins add and remove members, change roles, and delete the team's files.
    MANAGERS = (Role.OWNER, Role.ADMIN)

    team = models.ForeignKey(Team, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=8, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def manages(self) -> bool:
        return self.role in self.MANAGERS

    def is_last_owner(self) -> bool:
        """A team needs an owner: its last one may neither leave nor step down."""
        if self.role != self.Role.OWNER:
            return False
        owners = Membership.objects.filter(team=self.team_id, role=self.Role.OWNER)
        return not owners.exclude(pk=self.pk).exists()

    def may_change(self, other: "Membership", role: str | None = None) -> bool:
        """Whether this member may change `other` (to `role`, or remove them): owners may do
        anything; admins may not touch owners nor make one; members only leave."""
        if other.pk == self.pk and role is None:
            return True  # leaving
        if self.role == self.Role.OWNER:
            return True
        if self.role == self.Role.ADMIN:
            return other.role != self.Role.OWNER and role != self.Role.OWNER
        return False


def _invite_token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


class InviteQuerySet(models.QuerySet):
    def usable(self) -> "InviteQuerySet":
        from django.utils import timezone

        return self.filter(used_at__isnull=True, expires_at__gt=timezone.now())


class Invite(models.Model):
    """A link that lets one person sign up and join a team (also when SIGNUP=invite): used
    once, and only until it expires."""

    # How long a new link works.
    LIFETIME_DAYS = 7

    token = models.CharField(max_length=64, unique=True, default=_invite_token, editable=False)
    team = models.ForeignKey(Team, models.CASCADE, related_name="invites", verbose_name=_("team"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("made by"),
    )
    created_at = models.DateTimeField(_("made"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("used by"),
    )

    objects = InviteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return f"{self.team} ({self.created_at:%Y-%m-%d})"

    def get_absolute_url(self) -> str:
        return reverse("invite", args=[self.token])
