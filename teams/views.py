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
from teams.models import Invite, Membership
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


@login_required
@require_GET
def team(request: AuthenticatedRequest, team_id: int) -> HttpResponse:
    membership = _membership(request, team_id)
    team = membership.team
    # The library and the conversations shared here, through the team's relations: those
    # apps build on teams, not teams on them.
    files = team.files.select_related("owner").defer("text")
    deletable = set(files.deletable_by(request.user).values_list("pk", flat=True))
    ctx = {
        "team": team,
        "membership": membership,
        "members": [
            (m, membership.manages and m.pk != membership.pk and membership.may_change(m))
            for m in team.memberships.select_related("user")
        ],
        "files": [(f, f.pk in deletable) for f in files],
        "conversations": team.conversations.visible().select_related("owner"),
        "roles": Membership.Role.choices,
        # The last owner cannot leave: not offered.
        "can_leave": not membership.is_last_owner(),
        "form": MemberForm(),
        "max_bytes": settings.UPLOAD_MAX_BYTES,
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
