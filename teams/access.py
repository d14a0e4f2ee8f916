"""Access that involves teams: the provider's groups as team memberships (single sign-on),
and invitations that sign one person up into a team (SIGNUP=invite). accounts/adapter.py
holds the rest of the policy; these extend it from the layer that knows teams."""

from functools import reduce
from operator import or_

from allauth.core.exceptions import ImmediateHttpResponse
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import render

from accounts import adapter
from teams import services
from teams.models import Invite, Membership, Team


class SocialAccountAdapter(adapter.SocialAccountAdapter):
    def apply_groups(self, user, groups: list[str] | None) -> None:
        """Besides moderators: each group naming a team (an administrator made it, with the
        group's name) makes the person a member of it. Memberships are only added: a team's
        managers remove members as they always do."""
        super().apply_groups(user, groups)
        if not groups:
            return
        named = reduce(or_, (Q(name__iexact=group) for group in groups))
        teams = Team.objects.filter(named).exclude(memberships__user=user)
        Membership.objects.bulk_create(
            [Membership(team=team, user=user) for team in teams], ignore_conflicts=True
        )


# The invitation a visitor followed, kept in their session until they sign up.
INVITE_SESSION_KEY = "teams.invite"


class AccountAdapter(adapter.AccountAdapter):
    """Invitations: a valid one opens sign-up (unless SIGNUP=closed) for the one person who
    holds it, skips approval, and makes them a member of its team."""

    def _invite(self, request: HttpRequest) -> Invite | None:
        token = request.session.get(INVITE_SESSION_KEY)
        if not token or settings.SIGNUP == "closed":
            return None
        return Invite.objects.usable().filter(token=token).select_related("team").first()

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return super().is_open_for_signup(request) or self._invite(request) is not None

    def vouched(self, request: HttpRequest) -> bool:
        return self._invite(request) is not None

    @transaction.atomic
    def save_user(self, request: HttpRequest, user, form, commit: bool = True):
        token = request.session.get(INVITE_SESSION_KEY) if self.vouched(request) else None
        user = super().save_user(request, user, form, commit=commit)
        if commit and token:
            if services.invite_use(token=token, user=user) is None:
                # Spent by someone else in the meantime: no account (the transaction ends).
                raise ImmediateHttpResponse(
                    render(request, "teams/invite_invalid.html", status=410)
                )
            del request.session[INVITE_SESSION_KEY]
        return user
