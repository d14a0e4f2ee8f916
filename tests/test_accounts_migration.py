"""Accounts and sessions made before django-allauth still work after the upgrade."""

import pytest
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from accounts.models import Usage

ALLAUTH_APPS = ["account", "socialaccount", "mfa", "usersessions"]


def _migrate(targets: list) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_a_user_and_session_from_before_the_upgrade_keep_working():
    executor = MigrationExecutor(connection)
    access = executor.loader.get_migration("accounts", "0004_access")
    before = next(dep for dep in access.dependencies if dep[0] == "accounts")
    leaves = executor.loader.graph.leaf_nodes()
    _migrate([before, *((app, None) for app in ALLAUTH_APPS)])
    try:
        # As the release before made them: a user, their usage, a signed-in session.
        dana = User.objects.create_user("dana", "dana@example.com", "a-long-passphrase-9")
        Usage.objects.record(
            user_id=dana.pk, model="kimi-k2.6", prompt_tokens=3, completion_tokens=4
        )
        session = SessionStore()
        session[SESSION_KEY] = str(dana.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = dana.get_session_auth_hash()
        session.create()
    finally:
        _migrate(leaves)

    browser = Client()
    browser.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    assert browser.get("/accounts/").status_code == 200  # still signed in
    # Listed on the Account page, so "Sign out everywhere" ends it too.
    assert UserSession.objects.filter(session_key=session.session_key, user=dana).exists()
    page = browser.get("/accounts/").content.decode()
    assert "Sign out everywhere" in page
    assert Usage.objects.get().user == dana

    # The password works on the new log-in page.
    fresh = Client()
    r = fresh.post("/accounts/login/", {"username": "dana", "password": "a-long-passphrase-9"})
    assert r.status_code == 302 and fresh.get("/accounts/").status_code == 200
    browser.post("/accounts/sign-out-everywhere/")
    assert fresh.get("/accounts/").status_code == 302
