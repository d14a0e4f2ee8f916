"""The access settings: their defaults, and bad values that stop the start naming the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from kimichat.settings import _email_url, _read
from tests.helpers.processes import start


def test_a_new_install_signs_up_by_approval_and_sends_no_e_mail():
    shown = start(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.SIGNUP, s.EMAIL_BACKEND, s.ACCOUNT_EMAIL_VERIFICATION, s.MFA_REQUIRED_FOR_STAFF,"
        " s.SOCIALACCOUNT_PROVIDERS)",
        SIGNUP="",
        EMAIL_URL="",
    )
    assert shown.stdout.split() == [
        "approval",
        "django.core.mail.backends.dummy.EmailBackend",
        "none",
        "False",
        "{}",
    ], shown.stderr


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("SIGNUP", "sometimes", "Bad value for SIGNUP: 'sometimes' (use open, approval"),
        ("EMAIL_URL", "http://mail.example.com", "Bad value for EMAIL_URL"),
        ("MFA_REQUIRED_FOR_STAFF", "maybe", "Bad value for MFA_REQUIRED_FOR_STAFF"),
        ("OIDC_CLIENT_ID", "kimichat", "Bad value for OIDC_SERVER_URL"),
        ("EMAIL_VERIFICATION", "mandatory", "Bad value for EMAIL_VERIFICATION"),
    ],
)
def test_a_bad_access_setting_stops_the_start(variable, value, said):
    result = start("check", **{variable: value})
    assert result.returncode != 0
    assert said in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://user:p%40ss@mail.example.com:587?tls=true",
            {
                "EMAIL_HOST": "mail.example.com",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "user",
                "EMAIL_HOST_PASSWORD": "p@ss",
                "EMAIL_USE_TLS": True,
                "EMAIL_USE_SSL": False,
            },
        ),
        ("smtps://mail.example.com", {"EMAIL_PORT": 465, "EMAIL_USE_SSL": True}),
        ("smtp://127.0.0.1:2525", {"EMAIL_PORT": 2525, "EMAIL_USE_TLS": False}),
    ],
)
def test_email_url_gives_django_its_smtp_settings(monkeypatch, url, expected):
    monkeypatch.setenv("EMAIL_URL", url)
    parsed = _read("EMAIL_URL", _email_url, "")
    assert parsed["EMAIL_BACKEND"] == "kimichat.mail.BackgroundEmailBackend"
    assert {k: parsed[k] for k in expected} == expected


@pytest.mark.parametrize("url", ["smtp://host?tls=maybe", "smtp://host?starttls=true", "ftp://h"])
def test_a_bad_email_url_names_the_variable(monkeypatch, url):
    monkeypatch.setenv("EMAIL_URL", url)
    with pytest.raises(ImproperlyConfigured, match="Bad value for EMAIL_URL"):
        _read("EMAIL_URL", _email_url, "")
