"""Two-factor authentication: TOTP set up and used with codes computed here, recovery codes,
and MFA_REQUIRED_FOR_STAFF."""

import re

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import User
from django.test import Client

from tests.helpers import totp
from tests.helpers.accounts import log_in


@pytest.fixture
def carol(db):
    return User.objects.create_user("carol", "carol@example.com", "a-long-passphrase-9")


def turn_on_totp(client: Client) -> tuple[str, list[str]]:
    """Through the pages: the secret shown, and the recovery codes given."""
    r = client.get("/accounts/2fa/totp/activate/", follow=True)
    if "reauthenticate" in r.redirect_chain[-1][0] if r.redirect_chain else False:
        # Turning it on asks for the password again.
        r = client.post(r.redirect_chain[-1][0], {"password": "a-long-passphrase-9"}, follow=True)
    page = r.content.decode()
    secret = re.search(r'id="authenticator_secret" type="text" value="([A-Z2-7=]+)"', page)[1]
    assert 'src="data:image/svg+xml;base64,' in page  # the QR code
    r = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert "Incorrect code." in r.content.decode()
    r = client.post("/accounts/2fa/totp/activate/", {"code": totp.code(secret)}, follow=True)
    page = r.content.decode()
    assert "Recovery codes" in page
    codes = re.search(r'<textarea id="recovery_codes"[^>]*>(.*?)</textarea>', page, re.S)[1]
    return secret, codes.split()


def test_a_user_turns_on_totp_and_logs_in_with_a_code(carol):
    client = Client()
    log_in(client, "carol")
    assert "Turn on two-factor authentication" in client.get("/accounts/").content.decode()
    secret, codes = turn_on_totp(client)
    assert len(codes) == 10
    assert Authenticator.objects.filter(user=carol, type="totp").exists()

    browser = Client()
    r = log_in(browser, "carol")
    assert r.status_code == 302 and r.url == "/accounts/2fa/authenticate/"
    assert browser.get("/accounts/").status_code == 302  # not in yet
    r = browser.post("/accounts/2fa/authenticate/", {"code": "123456"})
    assert "Incorrect code." in r.content.decode()
    r = browser.post("/accounts/2fa/authenticate/", {"code": totp.code(secret)})
    assert r.status_code == 302
    assert browser.get("/accounts/").status_code == 200


def test_a_recovery_code_logs_in_once(carol):
    client = Client()
    log_in(client, "carol")
    _, codes = turn_on_totp(client)

    browser = Client()
    log_in(browser, "carol")
    r = browser.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert r.status_code == 302
    assert browser.get("/accounts/").status_code == 200

    again = Client()
    log_in(again, "carol")
    r = again.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert "Incorrect code." in r.content.decode()
    assert again.post("/accounts/2fa/authenticate/", {"code": codes[1]}).status_code == 302


def test_staff_must_turn_on_two_factor_when_required(carol, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    carol.is_staff = True
    carol.save()
    client = Client()
    r = log_in(client, "carol")
    for path in ("/", "/admin/", "/accounts/"):
        r = client.get(path)
        assert r.status_code == 302 and r.url == "/accounts/2fa/totp/activate/?required=1"
    r = client.get(r.url, follow=True)
    assert "reauthenticate" in r.redirect_chain[-1][0]  # the password again, first
    r = client.post(r.redirect_chain[-1][0], {"password": "a-long-passphrase-9"}, follow=True)
    assert "Staff accounts must use two-factor authentication." in r.content.decode()
    turn_on_totp(client)
    assert client.get("/admin/").status_code == 200


def test_others_are_not_asked_for_two_factor(carol, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    client = Client()
    log_in(client, "carol")
    assert client.get("/accounts/").status_code == 200


def test_the_admin_log_in_page_is_the_front_door_with_its_two_factor(carol):
    carol.is_staff = True
    carol.save()
    client = Client()
    log_in(client, "carol")
    secret, _ = turn_on_totp(client)

    # A password posted to the admin's own form logs no one in: it sends to the front door.
    browser = Client()
    for _ in range(2):
        r = browser.post(
            "/admin/login/?next=/admin/",
            {"username": "carol", "password": "a-long-passphrase-9", "next": "/admin/"},
        )
        assert r.status_code == 302 and r.url == "/accounts/login/?next=/admin/"
    assert browser.get("/admin/").status_code == 302
    assert browser.get("/api-keys/").status_code == 302

    # Through the front door, the code is asked for, then the admin opens.
    r = browser.post(
        "/accounts/login/?next=/admin/",
        {"username": "carol", "password": "a-long-passphrase-9", "next": "/admin/"},
    )
    assert r.url == "/accounts/2fa/authenticate/"
    r = browser.post("/accounts/2fa/authenticate/", {"code": totp.code(secret)})
    assert r.status_code == 302 and r.url == "/admin/"
    assert browser.get("/admin/").status_code == 200
    # Already in, the admin's log-in page goes on to where it was going.
    r = browser.get("/admin/login/?next=/admin/accounts/")
    assert r.status_code == 302 and r.url == "/admin/accounts/"
    assert browser.get("/admin/login/?next=https://evil.example/").url == "/admin/"


def test_an_account_locked_at_the_front_door_is_locked_at_the_admin_too(carol, settings):
    carol.is_staff = True
    carol.save()
    for _ in range(settings.LOGIN_ATTEMPTS_PER_ACCOUNT + 1):
        log_in(Client(), "carol", "wrong")
    assert "Too many failed login attempts" in log_in(Client(), "carol").content.decode()
    browser = Client()
    browser.post("/admin/login/", {"username": "carol", "password": "a-long-passphrase-9"})
    assert browser.get("/admin/").status_code == 302


def test_signed_in_people_who_are_not_staff_are_refused_the_admin_log_in(carol):
    client = Client()
    log_in(client, "carol")
    assert client.get("/admin/login/").status_code == 403
    assert client.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 403
