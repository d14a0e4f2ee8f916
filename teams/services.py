"""Teams' writes: keyword-only `<entity>_<action>` functions. Each raises TeamError, with a
sentence for the page, when the change is not allowed."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from teams.models import Invite, Membership, Team


class TeamError(Exception):
    pass


def team_create(*, user, name: str) -> Team:
    """A new team, with its creator as its owner."""
    name = " ".join(name.split())[:80]
    base = slugify(name, allow_unicode=True)[:80] or "team"
    with transaction.atomic():
        slug, n = base, 1
        while Team.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        team = Team.objects.create(name=name, slug=slug)
        Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    return team


def member_add(*, actor: Membership, username: str) -> Membership:
    if not actor.manages:
        raise TeamError(_("Only the team's owners and admins can add members."))
    User = get_user_model()
    user = User._default_manager.filter(
        **{User.USERNAME_FIELD: username.strip()}, is_active=True
    ).first()
    if user is None:
        raise TeamError(_("There is no user “%(name)s”.") % {"name": username.strip()})
    try:
        with transaction.atomic():
            return Membership.objects.create(team=actor.team, user=user)
    except IntegrityError:
        raise TeamError(
            _("%(name)s is already a member.") % {"name": user.get_username()}
        ) from None


def member_change(*, actor: Membership, membership: Membership, role: str) -> None:
    if role not in Membership.Role.values or not actor.may_change(membership, role):
        raise TeamError(_("You cannot give that role."))
    if role != Membership.Role.OWNER and membership.is_last_owner():
        raise TeamError(_("A team needs an owner: make someone else owner first."))
    membership.role = role
    membership.save(update_fields=["role"])


def member_remove(*, actor: Membership, membership: Membership) -> None:
    """Remove a member (owners and admins), or leave (anyone)."""
    if not actor.may_change(membership):
        raise TeamError(_("You cannot remove that member."))
    if membership.is_last_owner():
        raise TeamError(_("A team needs an owner: make someone else owner first."))
    membership.delete()


def invite_create(*, team: Team, actor) -> Invite:
    """A new invitation link to `team`, made by one of its owners or admins, or a moderator."""
    manages = Membership.objects.filter(
        team=team, user=actor, role__in=Membership.MANAGERS
    ).exists()
    if not (manages or actor.has_perm("teams.add_invite")):
        raise TeamError(_("Only the team's owners and admins can invite people."))
    expires = timezone.now() + timedelta(days=Invite.LIFETIME_DAYS)
    return Invite.objects.create(team=team, created_by=actor, expires_at=expires)


def invite_use(*, token: str, user) -> Team | None:
    """Spend the invitation on `user` (logged in already): they join its team. None when it
    was used meanwhile or has expired."""
    with transaction.atomic():
        invite = invite_spend(token=token)
        if invite is None:
            return None
        invite_join(invite=invite, user=user)
    return invite.team


def team_owner_after(*, team_id: int, leaving) -> int | None:
    """The owner `team_id` keeps once `leaving` goes (the longest-standing remaining member,
    admins first, becomes one where `leaving` was the last): its user's id, or None where
    nobody else is in the team."""
    others = Membership.objects.filter(team=team_id).exclude(user=leaving)
    owner = others.filter(role=Membership.Role.OWNER).first()
    if owner is None:
        # "admin" sorts before "member": admins first, then by how long they have been in.
        owner = others.order_by("role", "created_at", "id").first()
        if owner is None:
            return None
        owner.role = Membership.Role.OWNER
        owner.save(update_fields=["role"])
    return owner.user_id


def invite_spend(*, token: str) -> Invite | None:
    """Mark the invitation used, in one conditional write, before anything is made of it: of
    several people on one link at the same moment, one gets it, on any database (no row lock
    needed). None when it was used meanwhile or has expired."""
    spent = Invite.objects.usable().filter(token=token).update(used_at=timezone.now())
    if not spent:
        return None
    return Invite.objects.select_related("team").get(token=token)


def invite_join(*, invite: Invite, user) -> None:
    """Who spent the invitation (in the same transaction) joins its team."""
    invite.used_by = user
    invite.save(update_fields=["used_by"])
    Membership.objects.get_or_create(team=invite.team, user=user)
