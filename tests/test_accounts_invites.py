"""Invitation links (SIGNUP=invite): made by a team's owners and admins or by moderators,
used once, until they expire."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from teams.models import Invite, Membership
from teams.services import team_create
from tests.helpers.accounts import sign_up


@pytest.fixture
def team(alice):
    return team_create(user=alice, name="Pump Crew")


def new_link(client: Client, team) -> str:
    page = client.post(f"/teams/{team.pk}/invites/").content.decode()
    return re.search(r'id="invite-link" type="text" value="([^"]+)"', page)[1]


def test_an_invitation_signs_one_person_up_into_the_team(alice, team, settings):
    settings.SIGNUP = "invite"
    owner = Client()
    owner.force_login(alice)
    assert "New invitation link" in owner.get(f"/teams/{team.pk}/").content.decode()
    url = new_link(owner, team)
    assert url.startswith("http://testserver/invite/")

    guest = Client()
    r = guest.get(url, follow=True)
    assert "You are invited to join the team “Pump Crew”. Sign up to accept." in r.content.decode()
    r = sign_up(guest, "carol")
    assert r.status_code == 302 and r.url == "/"
    carol = User.objects.get(username="carol")
    assert carol.is_active  # no approval needed: the invitation vouches
    assert Membership.objects.filter(team=team, user=carol, role="member").exists()
    assert Invite.objects.get().used_by == carol

    # Used once: the next person is refused.
    other = Client()
    r = other.get(url)
    assert r.status_code == 410 and "This invitation does not work" in r.content.decode()
    sign_up(other, "dave")
    assert not User.objects.filter(username="dave").exists()


def test_an_expired_invitation_does_not_work(alice, team, settings):
    settings.SIGNUP = "invite"
    owner = Client()
    owner.force_login(alice)
    url = new_link(owner, team)
    guest = Client()
    guest.get(url)
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    sign_up(guest, "carol")
    assert not User.objects.filter(username="carol").exists()
    assert Client().get(url).status_code == 410


def test_an_invitation_skips_approval_under_approval(alice, team, settings):
    settings.SIGNUP = "approval"
    owner = Client()
    owner.force_login(alice)
    guest = Client()
    guest.get(new_link(owner, team))
    sign_up(guest, "carol")
    assert User.objects.get(username="carol").is_active


def test_closed_means_closed_even_with_an_invitation(alice, team, settings):
    owner = Client()
    owner.force_login(alice)
    url = new_link(owner, team)
    settings.SIGNUP = "closed"
    guest = Client()
    assert guest.get(url).status_code == 410
    sign_up(guest, "carol")
    assert not User.objects.filter(username="carol").exists()


def test_plain_members_cannot_invite_but_moderators_can(alice, bob, team, settings):
    Membership.objects.create(team=team, user=bob)
    member = Client()
    member.force_login(bob)
    member.post(f"/teams/{team.pk}/invites/")
    assert not Invite.objects.exists()

    moderator = User.objects.create_user("mod", password="password", is_staff=True)
    moderator.groups.add(Group.objects.get(name="Moderators"))
    client = Client()
    client.force_login(moderator)
    r = client.post("/admin/teams/invite/add/", {"team": team.pk})
    assert r.status_code == 302
    invite = Invite.objects.get()
    assert invite.created_by == moderator and invite.expires_at > timezone.now()


def test_a_logged_in_person_joins_the_team_by_the_link(alice, bob, team):
    owner = Client()
    owner.force_login(alice)
    url = new_link(owner, team)
    client = Client()
    client.force_login(bob)
    r = client.get(url)
    assert r.status_code == 302 and r.url == f"/teams/{team.pk}/"
    assert Membership.objects.filter(team=team, user=bob).exists()
