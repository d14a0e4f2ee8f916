"""The Account page and what it leads to: password reset by e-mail (through a real SMTP
server), password change, sessions and "Sign out everywhere", deleting the account."""

from urllib.parse import urlsplit

import pytest
from allauth.usersessions.models import UserSession
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Usage
from conversations.models import Conversation
from tests.helpers.accounts import log_in
from tests.helpers.chat import connect
from tests.helpers.mail import Mailbox, link
from uploads.models import UploadedFile

NEW = "a-new-passphrase-77"


@pytest.fixture
def mailbox(settings):
    with Mailbox() as box:
        for name, value in box.settings().items():
            setattr(settings, name, value)
        settings.EMAIL = box.settings()
        yield box


@pytest.fixture
def carol(db):
    return User.objects.create_user("carol", "carol@example.com", "a-long-passphrase-9")


def signed_in(user: User, agent: str = "Browser") -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    assert log_in(client, user.username).status_code == 302
    return client


def test_without_e_mail_no_reset_is_offered(client, carol):
    assert "Forgot password?" not in client.get("/accounts/login/").content.decode()
    assert client.get("/accounts/password/reset/").status_code == 404


def test_a_forgotten_password_is_reset_by_the_link_e_mailed(client, carol, mailbox):
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password/reset/">Forgot password?</a>' in page
    r = client.post("/accounts/password/reset/", {"email": "carol@example.com"}, follow=True)
    assert "Check your e-mail" in r.content.decode()

    mail = mailbox.next()
    assert mail["To"] == "carol@example.com"
    assert "Password Reset" in mail["Subject"]
    url = link(mail, "/accounts/password/reset/key/")
    # Following the link: the form for a new password.
    r = client.get(urlsplit(url).path, follow=True)
    assert "Choose a new password" in r.content.decode()
    form_url = r.redirect_chain[-1][0]
    r = client.post(form_url, {"password1": NEW, "password2": NEW}, follow=True)
    assert "Your password is changed." in r.content.decode()

    assert log_in(Client(), "carol", "a-long-passphrase-9").status_code == 200  # the old one
    assert log_in(Client(), "carol", NEW).status_code == 302
    # The link works once.
    r = Client().get(urlsplit(url).path, follow=True)
    assert "This link does not work" in r.content.decode()


def test_an_unknown_address_gets_no_e_mail_and_the_page_says_the_same(client, carol, mailbox):
    r = client.post("/accounts/password/reset/", {"email": "who@example.com"}, follow=True)
    assert "Check your e-mail" in r.content.decode()
    r = client.post("/accounts/password/reset/", {"email": "carol@example.com"}, follow=True)
    # The one e-mail that arrives is carol's: nothing went to the unknown address.
    assert mailbox.next()["To"] == "carol@example.com"
    assert mailbox.empty()


def test_a_reset_answers_before_a_slow_mail_server_does_known_address_or_not(
    client, carol, mailbox
):
    with mailbox.slow():
        for address in ("who@example.com", "carol@example.com"):
            r = client.post("/accounts/password/reset/", {"email": address})
            assert r.status_code == 302 and r["Location"] == "/accounts/password/reset/done/"
        # Both answered while the mail server still holds carol's message, unanswered.
        assert mailbox.held.get(timeout=20) == "carol@example.com"
        assert mailbox.empty()
    assert mailbox.next()["To"] == "carol@example.com"


def test_a_user_changes_their_password(carol):
    client = signed_in(carol)
    page = client.get("/accounts/").content.decode()
    assert 'href="/accounts/password/change/">Change password</a>' in page
    r = client.post(
        "/accounts/password/change/",
        {"oldpassword": "wrong", "password1": NEW, "password2": NEW},
    )
    assert "Please type your current password." in r.content.decode()
    r = client.post(
        "/accounts/password/change/",
        {"oldpassword": "a-long-passphrase-9", "password1": NEW, "password2": NEW},
    )
    assert r.status_code == 302
    assert client.get("/accounts/").status_code == 200  # still signed in here
    assert log_in(Client(), "carol", NEW).status_code == 302


def test_the_account_page_lists_sessions_and_signs_out_everywhere(carol, alice):
    laptop = signed_in(carol, "Laptop browser")
    phone = signed_in(carol, "Phone browser")
    theirs = Client()
    theirs.force_login(alice)
    page = laptop.get("/accounts/").content.decode()
    assert "Laptop browser (this browser)" in page
    assert "Phone browser" in page
    assert "Sign out everywhere" in page

    r = laptop.post("/accounts/sign-out-everywhere/")
    assert r.status_code == 302 and r.url == "/accounts/login/"
    assert laptop.get("/accounts/").status_code == 302
    assert phone.get("/accounts/").status_code == 302
    assert not UserSession.objects.filter(user=carol).exists()
    # Others are not touched.
    assert theirs.get("/accounts/").status_code == 200


def test_deleting_an_account_takes_its_data_and_keeps_the_ledger(
    carol, alice, django_capture_on_commit_callbacks
):
    client = signed_in(carol)
    other = signed_in(carol, "Other browser")
    Conversation.objects.create(owner=carol, model="kimi-k2.6", title="Mine")
    upload = UploadedFile.objects.create(
        owner=carol,
        name="notes.txt",
        size=5,
        sha256="0" * 64,
        kind="text",
        content_type="text/plain",
        file=SimpleUploadedFile("notes.txt", b"notes"),
    )
    storage, stored = upload.file.storage, upload.file.name
    assert storage.exists(stored)
    Usage.objects.record(user_id=carol.pk, model="kimi-k2.6", prompt_tokens=10, completion_tokens=5)
    assert "Delete my account" in client.get("/accounts/").content.decode()
    r = client.post("/accounts/delete/", {"confirm": "wrong"})
    assert "That is not right." in r.content.decode()
    assert User.objects.filter(username="carol").exists()

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/accounts/delete/", {"confirm": "a-long-passphrase-9"}, follow=True)
    assert "Your account and its data are deleted." in r.content.decode()
    assert not User.objects.filter(username="carol").exists()
    assert not Conversation.objects.filter(title="Mine").exists()
    assert not UploadedFile.objects.exists()
    assert not storage.exists(stored)  # the bytes too
    usage = Usage.objects.get()
    assert usage.user is None and usage.prompt_tokens == 10
    assert other.get("/accounts/").status_code == 302
    assert Session.objects.count() == 0 or all(
        s.get_decoded().get("_auth_user_id") != str(carol.pk) for s in Session.objects.all()
    )
    assert log_in(Client(), "carol").status_code == 200


def test_the_account_page_needs_a_log_in(client, db):
    assert client.get("/accounts/").url.startswith("/accounts/login/")


def test_the_account_page_changes_the_language(carol):
    client = signed_in(carol)
    r = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/"})
    assert r.status_code == 302
    assert 'lang="zh-hans"' in client.get("/accounts/").content.decode()


def test_the_access_pages_speak_chinese(client, carol, mailbox):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "忘记密码？" in page
    page = client.get("/accounts/password/reset/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "重置密码" in page.content.decode()


@pytest.mark.parametrize(
    "path", ["/accounts/email/", "/accounts/2fa/", "/accounts/sessions/", "/accounts/logout/"]
)
def test_django_allauth_pages_wear_kimichats_look(carol, path):
    page = signed_in(carol).get(path)
    assert page.status_code == 200
    assert '<header class="topbar">' in page.content.decode()


def test_a_user_changes_their_e_mail_address(carol, mailbox):
    client = signed_in(carol)
    r = client.post(
        "/accounts/email/", {"action_add": "", "email": "carol@new.example"}, follow=True
    )
    assert r.status_code == 200
    # The new address is confirmed by the link sent to it; then it is the account's.
    mail = mailbox.next()
    assert mail["To"] == "carol@new.example"
    r = client.get(urlsplit(link(mail, "/accounts/confirm-email/")).path)
    client.post(urlsplit(link(mail, "/accounts/confirm-email/")).path)
    carol.refresh_from_db()
    assert carol.email == "carol@new.example"
    assert "carol@new.example" in client.get("/accounts/").content.decode()


@pytest.mark.django_db(transaction=True)
async def test_signing_out_everywhere_closes_the_open_pages(carol):
    page = await connect(carol, "/ws/conversations/new/")
    assert (await page.connect(30))[0]
    laptop = await sync_to_async(signed_in)(carol, "Laptop browser")
    await sync_to_async(laptop.post)("/accounts/sign-out-everywhere/")
    assert await page.receive_output(30) == {"type": "websocket.close", "code": 4401}
