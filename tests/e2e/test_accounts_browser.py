"""In a browser: a password reset through the link really e-mailed, two-factor with a code
computed here, and single sign-on through a real OpenID Connect provider on loopback."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import _daphne, _prepare
from tests.helpers import totp
from tests.helpers.mail import Mailbox, link
from tests.helpers.oidc import Provider

PEOPLE = [{"username": "erin", "email": "erin@acme.test", "password": "erin-pass"}]
CALLBACK = "http://127.0.0.1/accounts/oidc/oidc/login/callback/"  # any loopback port


@pytest.fixture(scope="module")
def mailbox():
    with Mailbox() as box:
        yield box


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with Provider(tmp_path_factory.mktemp("oidc"), PEOPLE, [CALLBACK]) as running:
        yield running


@pytest.fixture(scope="module")
def access_server(tmp_path_factory, kimi_stub, mailbox, provider):
    """A server with e-mail and single sign-on configured, as an administrator would."""
    tmp = tmp_path_factory.mktemp("e2e-access")
    env = _prepare(tmp, kimi_stub, EMAIL_URL=mailbox.url, **provider.settings("Acme ID"))
    with _daphne(env, tmp / "daphne.log") as url:
        yield url


@pytest.fixture
def fresh(browser, access_server) -> Page:
    context = browser.new_context(base_url=access_server, locale="en-US")
    yield context.new_page()
    context.close()


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def test_a_forgotten_password_is_reset_from_the_e_mail(fresh: Page, mailbox, access_server):
    page = fresh
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("hank")
    page.get_by_label("E-mail (optional)").fill("hank@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-Passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-Passphrase-42")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(access_server + "/")
    while not mailbox.empty():  # the address's verification e-mail
        mailbox.next()
    page.context.clear_cookies()

    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill("hank@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    page.goto(link(mailbox.next(), "/accounts/password/reset/key/"))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New Password", exact=True).fill("another-Passphrase-43")
    page.get_by_label("New Password (again)").fill("another-Passphrase-43")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed.")

    log_in(page, "hank", "another-Passphrase-43")
    page.wait_for_url(access_server + "/")


def test_two_factor_is_turned_on_and_asked_for(fresh: Page, access_server):
    page = fresh
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("ivy")
    page.get_by_label("Password", exact=True).fill("a-long-Passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-Passphrase-42")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(access_server + "/")

    page.goto("/accounts/")
    page.get_by_role("link", name="Turn on two-factor authentication").click()
    page.get_by_label("Password").fill("a-long-Passphrase-42")  # asked again, first
    page.get_by_role("button", name="Confirm").click()
    secret = page.get_by_label("Secret").input_value()
    page.get_by_label("Authenticator code").fill(totp.code(secret))
    page.get_by_role("button", name="Turn on").click()
    codes = page.get_by_label("Recovery codes").input_value().split()
    assert len(codes) == 10

    page.context.clear_cookies()
    log_in(page, "ivy", "a-long-Passphrase-42")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_label("Code").fill(totp.code(secret))
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(access_server + "/")

    page.context.clear_cookies()
    log_in(page, "ivy", "a-long-Passphrase-42")
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(access_server + "/")


def test_single_sign_on_makes_the_account_and_logs_in(fresh: Page, access_server):
    page = fresh
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Log in with Acme ID").click()
    expect(page.get_by_role("heading", name="Identity provider: log in")).to_be_visible()
    page.get_by_label("Provider username").fill("erin")
    page.get_by_label("Provider password").fill("erin-pass")
    page.get_by_role("button", name="Sign in to the provider").click()
    page.wait_for_url(access_server + "/")
    page.goto("/accounts/")
    expect(page.locator(".username")).to_have_text("erin")
    expect(page.get_by_text("erin@acme.test")).to_be_visible()
    assert re.search(r"/accounts/", page.url)
