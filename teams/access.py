"""Access that involves teams: the provider's groups as team memberships (single sign-on),
and invitations that sign one person up into a team (SIGNUP=invite). accounts/adapter.py
holds the rest of the policy; these extend it from the layer that knows teams."""

from allauth.core.exceptions import ImmediateHttpResponse
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import render

from accounts import adapter
from teams import services
from teams.models import Invite, Membership, Team


class SocialAccountAdapter(adapter.SocialAccountAdapter):
    spent: Invite | None = None  # the invitation this sign-up spent

    def vouched(self, request: HttpRequest, sociallogin) -> bool:
        return super().vouched(request, sociallogin) or self.spent is not None

    @transaction.atomic
    def save_user(self, request: HttpRequest, sociallogin, form=None):
        """A first log-in by single sign-on spends the invitation the person followed, as
        signing up by the form does (and joins its team)."""
        if settings.OIDC_ALLOWED_DOMAINS:
            open_anyway = adapter.domain_allowed(sociallogin)
        else:
            open_anyway = adapter.signup_open()
        self.spent = invite_spend(request, open_anyway=open_anyway)
        user = super().save_user(request, sociallogin, form)
        if self.spent is not None:
            services.invite_join(invite=self.spent, user=user)
        return user

    def apply_groups(self, user, groups: list[str] | None) -> None:
        """Besides moderators: each group linked to a team by an administrator (the team's
        single sign-on group, the same name exactly) makes the person a member of it. A
        team's name links nothing: anyone may make a team called like a group. Memberships
        are only added: a team's managers remove members as they always do."""
        super().apply_groups(user, groups)
        if not groups:
            return
        linked = Team.objects.exclude(sso_group="").filter(sso_group__in=groups)
        teams = linked.exclude(memberships__user=user)
        Membership.objects.bulk_create(
            [Membership(team=team, user=user) for team in teams], ignore_conflicts=True
        )


# The invitation a visitor followed, kept in their session until they sign up.
INVITE_SESSION_KEY = "teams.invite"


def invite_held(request: HttpRequest) -> Invite | None:
    """The usable invitation this visitor followed, if any (never under SIGNUP=closed)."""
    token = request.session.get(INVITE_SESSION_KEY)
    if not token or settings.SIGNUP == "closed":
        return None
    return Invite.objects.usable().filter(token=token).select_related("team").first()


def invite_spend(request: HttpRequest, *, open_anyway: bool) -> Invite | None:
    """Spend the invitation this visitor holds, before their account is made (in the same
    transaction): the one door for sign-up by form and by single sign-on. Spent by someone
    else meanwhile, the sign-up is refused, unless it is open to this person anyway."""
    token = request.session.get(INVITE_SESSION_KEY)
    if not token or settings.SIGNUP == "closed":
        return None
    invite = services.invite_spend(token=token)
    if invite is None:
        if open_anyway:
            return None
        raise ImmediateHttpResponse(render(request, "teams/invite_invalid.html", status=410))
    del request.session[INVITE_SESSION_KEY]
    return invite


class AccountAdapter(adapter.AccountAdapter):
    """Invitations: a valid one opens sign-up (unless SIGNUP=closed) for the one person who
    holds it, skips approval, and makes them a member of its team."""

    spent: Invite | None = None  # the invitation this sign-up spent

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return super().is_open_for_signup(request) or invite_held(request) is not None

    def vouched(self, request: HttpRequest) -> bool:
        # Spent by this sign-up, or (for the page, before it is sent) held in this session.
        return self.spent is not None or invite_held(request) is not None

    @transaction.atomic
    def save_user(self, request: HttpRequest, user, form, commit: bool = True):
        if commit:
            self.spent = invite_spend(request, open_anyway=adapter.signup_open())
        user = super().save_user(request, user, form, commit=commit)
        if commit and self.spent is not None:
            services.invite_join(invite=self.spent, user=user)
        return user
