"""The admin and the pages around it say what is so: a token quota is given to a user found
by name, each section has a name of its own, waiting sign-ups show on the admin's home, an
invitation's sign-up page promises no approval, and /favicon.ico is an icon."""

import json

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from accounts.models import Approval, TokenQuota
from teams.services import team_create
from tests.helpers.accounts import sign_up
from tests.test_accounts_invites import new_link


@pytest.fixture
def moderator(db) -> Client:
    user = User.objects.create_user("mod", password="password", is_staff=True)
    user.groups.add(Group.objects.get(name="Moderators"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="password"))
    return client


def test_a_token_quota_is_given_to_a_user_found_by_name(moderator, alice):
    form = moderator.get("/admin/accounts/tokenquota/add/").content.decode()
    assert 'class="admin-autocomplete' in form
    assert 'data-ajax--url="/admin/autocomplete/"' in form
    found = moderator.get(
        "/admin/autocomplete/",
        {"term": "ali", "app_label": "accounts", "model_name": "tokenquota", "field_name": "user"},
    )
    assert json.loads(found.content)["results"] == [{"id": str(alice.pk), "text": "alice"}]
    r = moderator.post("/admin/accounts/tokenquota/add/", {"user": alice.pk, "daily_tokens": 5000})
    assert r.status_code == 302
    assert TokenQuota.objects.get(user=alice).daily_tokens == 5000


def test_each_admin_section_has_a_name_of_its_own(root):
    page = root.get("/admin/").content.decode()
    assert page.count(">Accounts</a>") == 1
    assert ">E-mail addresses</a>" in page
    chinese = root.get("/admin/", headers={"Accept-Language": "zh-CN"}).content.decode()
    assert ">电子邮箱地址</a>" in chinese


def test_the_admin_home_says_how_many_sign_ups_wait(root, moderator, alice, settings):
    assert "wait for approval" not in root.get("/admin/").content.decode()
    settings.SIGNUP = "approval"
    sign_up(Client(), "carol")
    sign_up(Client(), "dave")
    for client in (root, moderator):
        page = client.get("/admin/").content.decode()
        assert '<a href="/admin/accounts/approval/">2 sign-ups wait for approval.</a>' in page
    chinese = root.get("/admin/", headers={"Accept-Language": "zh-CN"}).content.decode()
    assert "2 个注册等待批准。" in chinese
    Approval.objects.filter(user__username="carol").approve(actor=None)
    assert "1 sign-up waits for approval." in root.get("/admin/").content.decode()


def test_an_invitations_sign_up_page_promises_no_approval(alice, settings):
    settings.SIGNUP = "approval"
    hint = "A moderator approves new accounts before they can be used."
    assert hint in Client().get("/accounts/signup/").content.decode()
    owner = Client()
    owner.force_login(alice)
    url = new_link(owner, team_create(user=alice, name="Pump Crew"))
    guest = Client()
    page = guest.get(url, follow=True).content.decode()
    assert "You are invited to join the team" in page
    assert hint not in page
    assert User.objects.filter(username="carol").count() == 0
    sign_up(guest, "carol")
    assert User.objects.get(username="carol").is_active


def test_favicon_ico_is_the_icon(client, db):
    r = client.get("/favicon.ico")
    assert r.status_code == 301
    assert r.url.startswith("/static/img/kimichat") and r.url.endswith(".svg")
