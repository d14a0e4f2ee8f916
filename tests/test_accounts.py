"""Who may sign up (SIGNUP), the approval queue, the first user, log-in throttling, and
accounts made before django-allauth."""

import socket

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from accounts.models import Approval
from tests.helpers.accounts import log_in, sign_up
from tests.helpers.mail import Mailbox, body

SIGNUP = "/accounts/signup/"
LOGIN = "/accounts/login/"


@pytest.fixture
def mailbox(settings):
    with Mailbox() as box:
        for name, value in box.settings().items():
            setattr(settings, name, value)
        settings.EMAIL = box.settings()
        yield box


@pytest.fixture
def moderator(db):
    user = User.objects.create_user("mod", password="password", is_staff=True)
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


def test_the_first_account_of_an_empty_install_runs_it(client, db, settings):
    settings.SIGNUP = "approval"
    r = sign_up(client, "root")
    assert r.status_code == 302 and r.url == "/"
    root = User.objects.get(username="root")
    assert root.is_superuser and root.is_staff and root.is_active
    assert client.get("/admin/").status_code == 200


def test_later_sign_ups_wait_for_a_moderator(client, alice, moderator, mailbox, settings):
    settings.SIGNUP = "approval"
    r = sign_up(client, "carol", email="carol@example.com")
    page = r.content.decode()
    assert "Waiting for approval" in page
    assert "You will get an e-mail when it is approved." in page
    carol = User.objects.get(username="carol")
    assert not carol.is_active and not carol.is_staff
    assert client.get("/accounts/").status_code == 302  # not logged in
    # Logging in says the same, with the right password only.
    assert "Waiting for approval" in log_in(Client(), "carol").content.decode()
    assert "Waiting for approval" not in log_in(Client(), "carol", "wrong").content.decode()

    # The queue in the admin, for moderators.
    admin = Client()
    admin.force_login(moderator)
    queue = admin.get("/admin/accounts/approval/").content.decode()
    assert "carol" in queue
    approval = Approval.objects.get(user=carol)
    r = admin.post(
        "/admin/accounts/approval/",
        {"action": "approve", "_selected_action": [approval.pk]},
        follow=True,
    )
    assert "1 sign-up approved." in r.content.decode()
    carol.refresh_from_db()
    assert carol.is_active
    assert "carol" not in admin.get("/admin/accounts/approval/").content.decode()

    # Told by e-mail, through the real SMTP server, with the log-in page's address.
    mail = mailbox.next()
    assert mail["To"] == "carol@example.com"
    assert "approved" in mail["Subject"]
    assert "http://testserver/accounts/login/" in body(mail)

    assert log_in(Client(), "carol").status_code == 302


def test_without_e_mail_the_waiting_person_is_told_to_try_later(client, alice, settings):
    settings.SIGNUP = "approval"
    page = sign_up(client, "carol").content.decode()
    assert "Try logging in again later." in page


def test_an_open_install_lets_people_in_at_once(client, alice, settings):
    settings.SIGNUP = "open"
    r = sign_up(client, "carol")
    assert r.status_code == 302 and r.url == "/"
    assert client.get("/accounts/").status_code == 200
    assert not Approval.objects.exists()


@pytest.mark.parametrize("policy", ["closed", "invite"])
def test_a_closed_install_has_no_sign_up(client, alice, settings, policy):
    settings.SIGNUP = policy
    assert "Sign up" not in client.get(LOGIN).content.decode()
    assert "Sign-up is closed" in client.get(SIGNUP).content.decode()
    sign_up(client, "carol")
    assert not User.objects.filter(username="carol").exists()


def test_repeated_wrong_passwords_lock_the_account_for_a_while(client, alice, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,5/900s/key"}
    for _ in range(5):
        page = log_in(client, "alice", "wrong").content.decode()
        assert "not correct" in page
    # Now even the right password is refused, and says why.
    r = log_in(client, "alice", "password")
    assert r.status_code == 200
    assert "Too many failed login attempts. Try again later." in r.content.decode()
    assert client.get("/accounts/").status_code == 302
    # Another account from another address is not affected.
    other = Client(REMOTE_ADDR="10.0.0.2")
    User.objects.create_user("bob", password="password")
    assert log_in(other, "bob", "password").status_code == 302


def test_many_failures_from_one_address_are_refused(client, alice, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,5/900s/key"}
    for n in range(20):
        log_in(client, f"nobody{n}", "wrong")
    r = log_in(client, "alice", "password")
    assert "Too many failed login attempts" in r.content.decode()
    # From another address alice gets in.
    assert log_in(Client(REMOTE_ADDR="10.0.0.3"), "alice", "password").status_code == 302


def test_a_right_password_does_not_reset_the_count(client, alice, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,3/900s/key"}
    for _ in range(2):
        log_in(client, "alice", "wrong")
    assert log_in(Client(), "alice", "password").status_code == 302
    log_in(client, "alice", "wrong")
    assert "Too many failed" in log_in(client, "alice", "password").content.decode()


def test_the_log_in_page_says_what_is_missing(client, db):
    page = client.post(LOGIN, {"username": "", "password": ""}).content.decode()
    assert page.count("This field is required.") == 2


def test_log_in_and_its_throttling_go_on_while_redis_is_down(client, alice, settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]  # nothing listens here once it is closed
    settings.CACHES = {
        "default": {
            "BACKEND": "kimichat.cache.RedisOrLocal",
            "LOCATION": f"redis://127.0.0.1:{nobody}/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,3/900s/key"}
    assert client.get(LOGIN).status_code == 200
    for _ in range(3):
        assert "not correct" in log_in(client, "alice", "wrong").content.decode()
    # Counted in the process's memory meanwhile: the lock-out holds.
    assert "Too many failed" in log_in(client, "alice", "password").content.decode()
    assert log_in(Client(REMOTE_ADDR="10.0.0.4"), "bob-nobody", "x").status_code == 200
