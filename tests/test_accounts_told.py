"""What a person is told about their account, on the page where it happens: a suspended
person that they are suspended (not that they wait), a changed password that it changed,
no "Forgot your password?" that leads nowhere, and no notice turning up pages later."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from accounts.models import Approval
from tests import totp
from tests.test_accounts import log_in, sign_up
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
