from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from kimichat.http import AuthenticatedRequest
from teams import services
from teams.access import INVITE_SESSION_KEY
from teams.forms import MemberForm, RoleForm, TeamForm
from teams.models import Invite, Membership, Team
from teams.services import TeamError


def _membership(request: AuthenticatedRequest, team_id: int) -> Membership:
    """The one membership check: a team the user is not in is a 404, like a missing one."""
    memberships = Membership.objects.select_related("team")
    return get_object_or_404(memberships, team_id=team_id, user=request.user)


@login_required
def teams(request: AuthenticatedRequest) -> HttpResponse:
    """The user's teams, and "New team"."""
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = services.team_create(user=request.user, name=form.cleaned_data["name"])
        return redirect(team)
    memberships = request.user.memberships.select_related("team").order_by("team__name")
    return render(request, "teams/teams.html", {"memberships": memberships, "form": form})


# What other apps show on a team's page: its library (uploads), the conversations shared with
# it (conversations). Each app adds its section from its AppConfig.ready, as a function of
# the request and the team that gives its template and what that template shows: teams sits
# below those apps and knows none of them.
Section = dict[str, Any]
_sections: list[tuple[int, Callable[[AuthenticatedRequest, Team], Section]]] = []
MEMBERS_PLACE = 20  # where the team's own section, its members, comes among the others


def team_section(place: int, section: Callable[[AuthenticatedRequest, Team], Section]) -> None:
    """Show `section(request, team)` on every team's page, at `place` (members: 20)."""
    if (place, section) not in _sections:
        _sections.append((place, section))
        _sections.sort(key=lambda entry: entry[0])


@login_required
@require_GET
def team(request: AuthenticatedRequest, team_id: int) -> HttpResponse:
    membership = _membership(request, team_id)
    team = membership.team
    ctx = {
        "team": team,
        "membership": membership,
        "members": [
            (m, membership.manages and m.pk != membership.pk and membership.may_change(m))
            for m in team.memberships.select_related("user")
        ],
        "before": [s(request, team) for place, s in _sections if place < MEMBERS_PLACE],
        "after": [s(request, team) for place, s in _sections if place >= MEMBERS_PLACE],
        "roles": Membership.Role.choices,
        # The last owner cannot leave: not offered.
        "can_leave": not membership.is_last_owner(),
        "form": MemberForm(),
    }
    return render(request, "teams/team.html", ctx)


def _act(request: AuthenticatedRequest, action, success: str = "") -> None:
    try:
        action()
    except TeamError as e:
        messages.error(request, str(e))
    else:
        if success:
            messages.success(request, success)


@login_required
@require_POST
def member_add(request: AuthenticatedRequest, team_id: int) -> HttpResponse:
    actor = _membership(request, team_id)
    form = MemberForm(request.POST)
    if form.is_valid():
        username = form.cleaned_data["username"]
        _act(request, lambda: services.member_add(actor=actor, username=username))
    return redirect(actor.team)


@login_required
@require_POST
def member_role(request: AuthenticatedRequest, team_id: int, membership_id: int) -> HttpResponse:
    actor = _membership(request, team_id)
    membership = get_object_or_404(actor.team.memberships, pk=membership_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        role = form.cleaned_data["role"]
        _act(
            request,
            lambda: services.member_change(actor=actor, membership=membership, role=role),
        )
    return redirect(actor.team)


@login_required
@require_POST
def member_remove(request: AuthenticatedRequest, team_id: int, membership_id: int) -> HttpResponse:
    actor = _membership(request, team_id)
    membership = get_object_or_404(actor.team.memberships, pk=membership_id)
    leaving = membership.pk == actor.pk
    try:
        services.member_remove(actor=actor, membership=membership)
    except TeamError as e:
        messages.error(request, str(e))
        return redirect(actor.team)
    if leaving:
        return redirect("teams")
    return redirect(actor.team)


@login_required
@require_POST
def invite_new(request: AuthenticatedRequest, team_id: int) -> HttpResponse:
    """A new invitation link, shown once to copy and send."""
    membership = _membership(request, team_id)
    try:
        invite = services.invite_create(team=membership.team, actor=request.user)
    except TeamError as e:
        messages.error(request, str(e))
        return redirect(membership.team)
    url = request.build_absolute_uri(invite.get_absolute_url())
    return render(request, "teams/invite_new.html", {"invite": invite, "url": url})


def invite(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation followed: sign up (or, logged in already, join the team at once)."""
    found = Invite.objects.usable().select_related("team").filter(token=token).first()
    if found is None or settings.SIGNUP == "closed":
        return render(request, "teams/invite_invalid.html", status=410)
    if request.user.is_authenticated:
        team = services.invite_use(token=token, user=request.user)
        if team is None:
            return render(request, "teams/invite_invalid.html", status=410)
        return redirect(team)
    request.session[INVITE_SESSION_KEY] = token
    messages.info(
        request,
        _("You are invited to join the team “%(team)s”. Sign up to accept.")
        % {"team": found.team.name},
    )
    return redirect("signup")
