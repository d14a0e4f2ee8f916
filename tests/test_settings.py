"""Settings come from the environment; a bad value stops the start and names the variable."""

import json

import pytest
from django.core.management.utils import get_random_secret_key

from tests.helpers.processes import start

# A deployment behind a proxy that terminates TLS, as README and .env.example describe it.
PRODUCTION = {
    "DEBUG": "false",
    # One that begins with "$", as Django's generated keys can: taken as it is.
    "SECRET_KEY": "$" + get_random_secret_key(),
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("KIMI_STREAM_TIMEOUT", "-1"),
        ("SHUTDOWN_GRACE", "-1"),
        ("SHUTDOWN_GRACE", "half a minute"),
        ("ANSWER_LEASE", "0"),
        ("ANSWER_MAX_RESUMES", "-1"),
        ("DEBUG", "perhaps"),
        ("KIMI_MODELS_REFRESH", "-1"),
        ("KIMI_MODELS_REFRESH", "every few minutes"),
        ("TASKS_BACKEND", "celery"),
        ("UPLOAD_MAX_BYTES", "0"),
        ("USER_STORAGE_MB", "0"),
        ("USER_MAX_FILES", "lots"),
        ("USER_DAILY_TOKENS", "-5"),
        ("MODERATION_TRANSCRIPTS", "maybe"),
        ("SECURE_SSL_REDIRECT", "sometimes"),
        ("SECURE_HSTS_SECONDS", "-1"),
        ("SECURE_HSTS_SECONDS", "a year"),
        ("SECURE_HSTS_PRELOAD", "please"),
        ("SESSION_COOKIE_SECURE", "https"),
        ("CSRF_COOKIE_SECURE", "y"),
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_variable(name, value):
    result = start(**{name: value})
    assert result.returncode != 0
    assert f"Bad value for {name}" in result.stderr


def test_good_values_start():
    result = start(PORT="8080", KIMI_MODELS="moonshot-v1-8k", KIMI_DEFAULT_MODEL="moonshot-v1-8k")
    assert result.returncode == 0, result.stderr


def settings_of(*names: str, **env: str) -> list:
    """The values of settings `names` in a process started with `env`."""
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps([getattr(settings, n) for n in {list(names)!r}]))"
    )
    result = start("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # after the shell's own notice


def test_kimi_models_names_what_may_be_offered_and_the_default_must_be_one_of_them():
    result = start(KIMI_MODELS="kimi-k2.6,kimi-k3", KIMI_DEFAULT_MODEL="kimi-k2.5")
    assert result.returncode != 0
    assert "Bad value for KIMI_DEFAULT_MODEL" in result.stderr
    assert "is not one of KIMI_MODELS" in result.stderr
    given = settings_of("KIMI_MODELS", "KIMI_MODELS_FILTER", KIMI_MODELS=" kimi-k2.6, kimi-k3")
    assert given == [["kimi-k2.6", "kimi-k3"], True]


def test_without_kimi_models_every_model_kimi_offers_is_offered():
    # KIMI_MODELS (left empty, as .env.example has it) is then the built-in list, today's
    # models, offered while Kimi has not been read; a default of one's own joins it.
    assert settings_of(
        "KIMI_MODELS",
        "KIMI_MODELS_FILTER",
        "KIMI_MODELS_REFRESH",
        "KIMI_DEFAULT_MODEL",
        KIMI_MODELS="",
    ) == [["kimi-k3", "kimi-k2.6"], False, 300.0, "kimi-k3"]
    assert settings_of("KIMI_MODELS", "KIMI_DEFAULT_MODEL", KIMI_DEFAULT_MODEL="kimi-k3.1") == [
        ["kimi-k3.1", "kimi-k3", "kimi-k2.6"],
        "kimi-k3.1",
    ]


def test_prices_for_the_estimated_cost_are_read_and_checked():
    assert settings_of("KIMI_PRICES", "KIMI_SEARCH_PRICE") == [
        {"kimi-k3": [3.0, 0.3, None]},
        0.005,
    ]
    given = settings_of("KIMI_PRICES", KIMI_PRICES="kimi-k3=2.5/0.25/10,kimi-k2.6=1/0.1/-")
    assert given == [{"kimi-k3": [2.5, 0.25, 10.0], "kimi-k2.6": [1.0, 0.1, None]}]
    result = start(KIMI_PRICES="kimi-k3=3")
    assert result.returncode != 0 and "Bad value for KIMI_PRICES" in result.stderr


def test_without_debug_a_missing_secret_key_stops_the_start_naming_it():
    # Empty rather than absent, so that a SECRET_KEY in a developer's .env cannot fill it in.
    result = start(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    assert "Bad value for SECRET_KEY" in result.stderr


def test_development_mode_is_for_this_machine_alone():
    # DEBUG is true unless told otherwise, so that a fresh clone runs; serving another host
    # with it (tracebacks for anyone) stops the start.
    result = start(ALLOWED_HOSTS="chat.example.com")
    assert result.returncode != 0
    assert "Bad value for DEBUG" in result.stderr and "DEBUG=false" in result.stderr
    assert start(ALLOWED_HOSTS="localhost,127.0.0.1").returncode == 0


def test_production_settings_pass_the_deployment_checks():
    result = start("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr


def test_the_deployment_checks_ask_for_the_https_settings_left_out():
    https = ("SECURE_", "SESSION_COOKIE_", "CSRF_COOKIE_")
    plain = {name: value for name, value in PRODUCTION.items() if not name.startswith(https)}
    result = start("check", "--deploy", "--fail-level", "WARNING", **plain)
    assert result.returncode != 0
    for code in ("W004", "W008", "W012", "W016"):
        assert f"security.{code}" in result.stderr
