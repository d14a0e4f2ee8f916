"""What a person is told about their account, on the page where it happens: a suspended
person that they are suspended (not that they wait), a changed password that it changed,
no "Forgot your password?" that leads nowhere, and no notice turning up pages later."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from accounts.models import Approval
from tests.helpers import totp
from tests.helpers.accounts import log_in, sign_up
from tests.test_accounts_mfa import turn_on_totp

PASSWORD = "a-long-passphrase-9"
USERS = "/admin/auth/user/"


@pytest.fixture
def moderator(db) -> Client:
    user = User.objects.create_user("mod", password="password", is_staff=True)
    user.groups.add(Group.objects.get(name="Moderators"))
    client = Client()
    client.force_login(user)
    return client


def act(moderator: Client, action: str, user: User) -> None:
    data = {"action": action, "_selected_action": [user.pk], "index": 0, "reason": ""}
    assert moderator.post(USERS, data).status_code == 302


@pytest.fixture
def carol(alice, settings) -> User:
    """Signed up under SIGNUP=approval: waits in the queue."""
    settings.SIGNUP = "approval"
    sign_up(Client(), "carol")
    return User.objects.get(username="carol")


def suspended_page(client: Client) -> str:
    page = log_in(client, "carol").content.decode()
    assert "Waiting for approval" not in page
    assert "This account is suspended." in page
    return page


def test_a_suspended_user_let_in_from_the_queue_is_told_they_are_suspended(carol, moderator):
    approval = Approval.objects.get(user=carol)
    data = {"action": "approve", "_selected_action": [approval.pk]}
    moderator.post("/admin/accounts/approval/", data)
    assert log_in(Client(), "carol").status_code == 302
    act(moderator, "suspend", carol)
    page = suspended_page(Client())
    assert "<h1>Account suspended</h1>" in page


def test_a_suspended_user_let_in_under_users_is_told_they_are_suspended(carol, moderator):
    # Reactivating a waiting account lets it in as approving it does.
    act(moderator, "reactivate", carol)
    assert log_in(Client(), "carol").status_code == 302
    act(moderator, "suspend", carol)
    suspended_page(Client())


def test_a_suspended_user_with_two_factor_is_told_they_are_suspended(carol, moderator):
    act(moderator, "reactivate", carol)
    client = Client()
    log_in(client, "carol")
    secret, _ = turn_on_totp(client)
    act(moderator, "suspend", carol)
    browser = Client()
    r = log_in(browser, "carol")
    if r.status_code == 302:  # the code first, then what became of the account
        r = browser.post(r.url, {"code": totp.code(secret)})
    assert "Waiting for approval" not in r.content.decode()
    assert "This account is suspended." in r.content.decode()


def test_suspended_in_chinese(carol, moderator):
    act(moderator, "reactivate", carol)
    act(moderator, "suspend", carol)
    client = Client(headers={"Accept-Language": "zh-CN"})
    page = client.post("/accounts/login/", {"username": "carol", "password": PASSWORD})
    assert "此账户已被停用" in page.content.decode()
    assert "等待批准" not in page.content.decode()


# "Forgot your password?" only where a reset can be sent (issue 27, item 4)

NO_MAIL = "Forgot it? This KimiChat sends no e-mail: ask an administrator to reset it."


@pytest.fixture
def dave(db) -> Client:
    User.objects.create_user("dave", "dave@example.com", PASSWORD)
    client = Client()
    assert log_in(client, "dave").status_code == 302
    return client


@pytest.mark.parametrize("url", ["/accounts/password/change/", "/accounts/reauthenticate/"])
def test_without_e_mail_no_reset_link_is_offered_and_who_resets_is_said(dave, settings, url):
    settings.EMAIL = {}
    page = dave.get(url).content.decode()
    assert "/accounts/password/reset/" not in page
    assert "Forgot your password?" not in page
    assert NO_MAIL in page
    chinese = dave.get(url, headers={"Accept-Language": "zh-CN"}).content.decode()
    assert "请联系管理员重置" in chinese


@pytest.mark.parametrize("url", ["/accounts/password/change/", "/accounts/reauthenticate/"])
def test_with_e_mail_the_reset_link_leads_to_the_reset_page(dave, settings, url):
    settings.EMAIL = {"EMAIL_HOST": "localhost"}
    page = dave.get(url).content.decode()
    assert '<a href="/accounts/password/reset/">Forgot password?</a>' in page
    assert NO_MAIL not in page
    assert dave.get("/accounts/password/reset/").status_code == 200


# A changed password is confirmed (item 6), and notices show where they belong (item 11)


def test_a_changed_password_is_confirmed_on_the_account_page(dave):
    data = {
        "oldpassword": PASSWORD,
        "password1": "a-new-passphrase-77",
        "password2": "a-new-passphrase-77",
    }
    r = dave.post("/accounts/password/change/", data, follow=True)
    assert r.redirect_chain[-1][0] == "/accounts/"
    assert "Your password is changed." in r.content.decode()
    # Shown once: not again on the next page.
    assert "Your password is changed." not in dave.get("/files/").content.decode()


def test_a_changed_password_is_confirmed_in_chinese(dave):
    data = {
        "oldpassword": PASSWORD,
        "password1": "a-new-passphrase-77",
        "password2": "a-new-passphrase-77",
    }
    dave.post("/accounts/password/change/", data, headers={"Accept-Language": "zh-CN"})
    page = dave.get("/accounts/", headers={"Accept-Language": "zh-CN"}).content.decode()
    assert "你的密码已修改。" in page


def test_signing_in_leaves_no_notice_for_later_pages(db, settings):
    User.objects.create_user("erin", password=PASSWORD, is_staff=True, is_superuser=True)
    settings.MFA_REQUIRED_FOR_STAFF = False
    client = Client()
    assert log_in(client, "erin").status_code == 302
    for url in ["/", "/files/", "/teams/", "/accounts/", "/admin/"]:
        page = client.get(url, follow=True).content.decode()
        assert "Successfully signed in" not in page, url


def test_a_notice_is_shown_on_the_next_page_even_the_chat(dave):
    # The chat page has messages of its own (the conversation's): the notice still shows.
    r = dave.post("/accounts/preferences/", {"theme": "dark", "next": "/"}, follow=True)
    assert r.redirect_chain[-1][0] == "/"
    assert "Preferences saved." in r.content.decode()
    assert "Preferences saved." not in dave.get("/files/").content.decode()
