"""Single sign-on against a real OpenID Connect provider on loopback (django-oauth-toolkit in
a process of its own): discovery, authorization code with PKCE, token, userinfo, ID token."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import Group, User
from django.test import Client

from teams.models import Membership, Team
from tests.helpers.oidc import Provider

CALLBACK = "/accounts/oidc/oidc/login/callback/"
PEOPLE = [
    {
        "username": "erin",
        "email": "erin@acme.test",
        "password": "erin-pass",
        "groups": ["Research", "kimichat-moderators"],
    },
    {"username": "frank", "email": "frank@elsewhere.test", "password": "frank-pass"},
    {"username": "alice", "email": "alice@acme.test", "password": "alice-pass"},
]


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    redirects = [f"http://testserver{CALLBACK}", f"http://127.0.0.1{CALLBACK}"]
    with Provider(tmp_path_factory.mktemp("oidc"), PEOPLE, redirects) as running:
        yield running


@pytest.fixture
def sso(provider, settings):
    """KimiChat configured for the provider, as OIDC_* in the environment configure it."""
    settings.OIDC_NAME = "Acme ID"
    settings.OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_MODERATOR_GROUP = "kimichat-moderators"
    settings.OIDC_ALLOWED_DOMAINS = []
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "oidc",
                    "name": "Acme ID",
                    "client_id": provider.setup["client_id"],
                    "secret": provider.setup["client_secret"],
                    "settings": {
                        "server_url": provider.issuer,
                        "scope": ["openid", "profile", "email"],
                        "fetch_userinfo": True,
                    },
                }
            ],
        }
    }
    return provider


def single_sign_on(client: Client, username: str, password: str):
    """Press "Log in with Acme ID", log in at the provider, come back: KimiChat's answer."""
    page = client.get("/accounts/login/").content.decode()
    assert ">Log in with Acme ID</button>" in page
    start = re.search(
        r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="csrf', page
    )
    r = client.post(start[1])
    assert r.status_code == 302
    authorize = r.url
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]

    # At the provider, as a browser would be.
    browser = requests.Session()
    r = browser.get(authorize, allow_redirects=True)
    assert "Identity provider: log in" in r.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text)[1]
    r = browser.post(
        r.url,
        {
            "csrfmiddlewaretoken": token,
            "username": username,
            "password": password,
            "next": parse_qs(urlsplit(r.url).query)["next"][0],
        },
        allow_redirects=False,
    )
    while r.status_code == 302 and not r.headers["Location"].startswith("http://testserver"):
        r = browser.get(
            requests.compat.urljoin(r.url, r.headers["Location"]), allow_redirects=False
        )
    back = urlsplit(r.headers["Location"])
    assert back.path == CALLBACK and "code=" in back.query
    # KimiChat exchanges the code (with the PKCE verifier) and reads userinfo.
    return client.get(f"{back.path}?{back.query}")


def test_a_first_log_in_makes_the_account_and_a_second_finds_it(sso, db, alice, settings):
    settings.SIGNUP = "open"
    research = Team.objects.create(name="Research", slug="research", sso_group="Research")
    client = Client()
    r = single_sign_on(client, "erin", "erin-pass")
    assert r.status_code == 302 and r.url == "/"
    erin = User.objects.get(email="erin@acme.test")
    assert erin.username == "erin" and not erin.has_usable_password()
    assert client.get("/accounts/").status_code == 200
    account = SocialAccount.objects.get(user=erin)
    # What userinfo said, from the provider's endpoint.
    userinfo = account.extra_data["userinfo"]
    assert account.provider == "oidc" and userinfo["groups"] == ["Research", "kimichat-moderators"]
    assert account.extra_data["id_token"]["iss"] == sso.issuer
    # The groups: the team linked to one, and the moderators.
    assert Membership.objects.filter(team=research, user=erin, role="member").exists()
    assert erin.groups.filter(name="Moderators").exists() and erin.is_staff

    # Returning: the same account, nothing new.
    again = Client()
    r = single_sign_on(again, "erin", "erin-pass")
    assert r.status_code == 302
    assert User.objects.filter(email="erin@acme.test").count() == 1
    assert again.get("/accounts/").content.decode().count("erin") >= 1


def test_a_provider_name_of_a_local_account_does_not_take_it_over(sso, db, alice, settings):
    settings.SIGNUP = "open"
    client = Client()
    assert single_sign_on(client, "alice", "alice-pass").status_code == 302
    theirs = SocialAccount.objects.get(uid__isnull=False).user
    assert theirs != alice and theirs.username != "alice"
    assert theirs.email == "alice@acme.test"


def test_only_allowed_domains_get_an_account(sso, db, alice, settings):
    settings.SIGNUP = "closed"  # the domain list lets people in even so
    settings.OIDC_ALLOWED_DOMAINS = ["acme.test"]
    r = single_sign_on(Client(), "frank", "frank-pass")
    assert "Sign-up is closed" in r.content.decode()
    assert not User.objects.filter(email="frank@elsewhere.test").exists()
    r = single_sign_on(Client(), "erin", "erin-pass")
    assert r.status_code == 302
    assert User.objects.get(email="erin@acme.test").is_active


def test_without_a_domain_list_the_sign_up_policy_decides(sso, db, alice, settings):
    settings.SIGNUP = "approval"
    r = single_sign_on(Client(), "frank", "frank-pass")
    assert "Waiting for approval" in r.content.decode()
    frank = User.objects.get(email="frank@elsewhere.test")
    assert not frank.is_active and frank.approval.pending


def test_leaving_the_moderator_group_at_the_provider_ends_moderation(sso, db, alice, settings):
    settings.SIGNUP = "open"
    single_sign_on(Client(), "erin", "erin-pass")
    erin = User.objects.get(email="erin@acme.test")
    assert erin.groups.filter(name="Moderators").exists()
    settings.OIDC_MODERATOR_GROUP = "some-other-group"
    single_sign_on(Client(), "erin", "erin-pass")
    assert not erin.groups.filter(name="Moderators").exists()
    assert Group.objects.filter(name="Moderators").exists()


def test_without_oidc_settings_there_is_no_sso_button(client, db):
    assert "Log in with" not in client.get("/accounts/login/").content.decode()


def test_single_sign_on_spends_the_invitation_and_a_second_person_is_refused(
    sso, db, alice, settings
):
    from teams.models import Invite
    from teams.services import invite_create, team_create

    settings.SIGNUP = "invite"
    team = team_create(user=alice, name="Pump Crew")
    url = invite_create(team=team, actor=alice).get_absolute_url()
    erin, frank = Client(), Client()
    erin.get(url)
    frank.get(url)  # opened the same link, before erin used it

    r = single_sign_on(erin, "erin", "erin-pass")
    assert r.status_code == 302 and r.url == "/"
    account = User.objects.get(email="erin@acme.test")
    assert account.is_active and Membership.objects.filter(team=team, user=account).exists()
    assert Invite.objects.get().used_by == account

    # The link is spent: frank's single sign-on makes no account.
    r = single_sign_on(frank, "frank", "frank-pass")
    assert "Sign-up is closed" in r.content.decode()
    assert not User.objects.filter(email="frank@elsewhere.test").exists()


def test_a_team_named_like_a_group_does_not_take_in_its_people(sso, db, alice, settings):
    """bob names his team "RESEARCH" (or "Research"): erin's group "Research" does not make
    her a member; only a team an administrator linked to the group, by its exact name."""
    from teams.services import team_create

    settings.SIGNUP = "open"
    squatted = team_create(user=alice, name="RESEARCH")
    lookalike = team_create(user=alice, name="Research")
    wrong_case = Team.objects.create(name="Lab", slug="lab", sso_group="research")
    linked = Team.objects.create(name="R&D", slug="r-d", sso_group="Research")
    single_sign_on(Client(), "erin", "erin-pass")
    erin = User.objects.get(email="erin@acme.test")
    assert list(Team.objects.filter(memberships__user=erin)) == [linked]
    assert not {squatted, lookalike, wrong_case} & set(Team.objects.for_user(erin))
