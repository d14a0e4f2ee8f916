"""KimiChat settings: everything comes from the environment (or `.env`), see `.env.example`."""

import os
import re
import sys
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


class _Env(environ.Env):
    """django-environ, but a value that begins with "$" is taken as it is rather than as the
    name of another variable: secrets do (Django's generated keys can), and would otherwise
    be lost (or stop the start with a misleading "Set the … environment variable")."""

    def get_value(self, var_name, cast=None, default=environ.Env.NOTSET, parse_default=False):
        value = self.ENVIRON.get(var_name)
        if isinstance(value, str) and value.startswith("$"):
            return self.parse_value(value, cast) if cast is not None else value
        return super().get_value(var_name, cast, default, parse_default)


env = _Env()
environ.Env.read_env(BASE_DIR / ".env")


def _read(name: str, cast, default):
    """Read one variable; a value that does not parse fails at start and names the variable."""
    try:
        return cast(name, default=default)
    except (ValueError, TypeError, ImproperlyConfigured) as e:
        raise ImproperlyConfigured(
            f"Bad value for {name}: {env.str(name, default='')!r} ({e})"
        ) from e


def _positive(name: str, cast, default):
    value = _read(name, cast, default)
    if value <= 0:
        raise ImproperlyConfigured(f"Bad value for {name}: {value!r} (must be greater than 0)")
    return value


def _strict_bool(name: str, default: bool = False) -> bool:
    # django-environ reads any unknown word as False; a typo must not pass silently.
    value = env.str(name, default=str(default)).strip().lower()
    if value not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        raise ValueError("use true or false")
    return value in {"true", "1", "yes", "on"}


def _development_key(path: Path) -> str:
    """A key generated once into `path` and kept there, so that sessions outlive a restart."""
    if path.exists():
        return path.read_text().strip()
    from django.core.management.utils import get_random_secret_key

    # Written whole under a name of this process's own, then linked into place: two processes
    # starting at once (a test run and its subprocesses) agree on one key, and none reads
    # a half-written file.
    draft = path.with_name(f"{path.name}.{os.getpid()}")
    draft.touch(mode=0o600)
    draft.write_text(get_random_secret_key())
    try:
        os.link(draft, path)
        print(f"SECRET_KEY is not set: generated one for development into {path}.", file=sys.stderr)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


# Development unless told otherwise, so that a fresh clone runs (`make run`) and tests without
# setup. A deployment says DEBUG=false, and must then give SECRET_KEY: a key generated beside
# the code would differ on every machine and vanish with a new checkout.
DEBUG = _read("DEBUG", _strict_bool, True)
SECRET_KEY = _read("SECRET_KEY", env.str, "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Bad value for SECRET_KEY: it must be set when DEBUG is false (generate one with "
            "`python -c 'from django.core.management.utils import get_random_secret_key as k; "
            "print(k())'`)"
        )
    SECRET_KEY = _development_key(BASE_DIR / ".secret_key")

LOOPBACK = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, LOOPBACK)
if DEBUG and not set(ALLOWED_HOSTS) <= set(LOOPBACK):
    # Development mode shows tracebacks and settings to whoever reaches an error: never to
    # anyone but this machine, whatever a deployment forgot to say.
    raise ImproperlyConfigured(
        "Bad value for DEBUG: it is true (the default, for development on this machine), and "
        f"ALLOWED_HOSTS lets others in ({', '.join(ALLOWED_HOSTS)}). Set DEBUG=false, with "
        "SECRET_KEY, to serve other hosts."
    )
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",  # django-allauth's session list uses it
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "csp",
    "django_tasks",
    "django_tasks_db",
    # Accounts, e-mail, password reset, single sign-on, two-factor, sessions (see "Access").
    "allauth",
    "accounts.apps.EmailAddressesConfig",  # allauth.account, under a name of its own
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "allauth.usersessions",
    "accounts",
    "conversations",
    "uploads",
    "moderation",
    "teams",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.staff_mfa_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "kimichat.urls"
ASGI_APPLICATION = "kimichat.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kimichat.context_processors.kimi_status",
                "accounts.context_processors.preferences",
                "accounts.context_processors.access",
            ],
        },
    },
]

# Databases: SQLite by default (WAL, busy timeout, IMMEDIATE transactions so that many
# concurrent writers queue instead of failing with "database is locked").
DATABASES = {"default": _read("DATABASE_URL", env.db_url, f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# ORM calls from async code share one thread: one long-lived connection serves them all
# (reconnecting, with SQLite's PRAGMAs, on every call was the largest cost under load).
DATABASES["default"].setdefault("CONN_MAX_AGE", 600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
            ),
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = _read("REDIS_URL", env.str, "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub keeps each publisher's frames in order and adds the least latency.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.layers.SweepingInMemoryChannelLayer",
            "CONFIG": {"capacity": 1500},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# ModelBackend first: sessions made before django-allauth name it, and still hold.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat-new"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, Any]] = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Uploaded files: on local disk by default, in an S3-compatible store (MinIO, AWS S3) when
# S3_BUCKET is set. Either way they are private: downloads go through a view that checks
# who may read them.
MEDIA_ROOT = BASE_DIR / _read("MEDIA_ROOT", env.str, "media")
MEDIA_URL = "/media/"
S3_BUCKET = _read("S3_BUCKET", env.str, "")
S3_ENDPOINT_URL = _read("S3_ENDPOINT_URL", env.str, "")
S3_REGION = _read("S3_REGION", env.str, "us-east-1")
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": S3_ENDPOINT_URL or None,
            "region_name": S3_REGION,
            "access_key": _read("S3_ACCESS_KEY_ID", env.str, "") or None,
            "secret_key": _read("S3_SECRET_ACCESS_KEY", env.str, "") or None,
            "default_acl": "private",
            "file_overwrite": False,
            # Path-style addressing: MinIO and most self-hosted stores have no bucket DNS.
            "addressing_style": "path",
            "signature_version": "s3v4",
        },
    }
else:
    STORAGES["default"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": MEDIA_URL},
    }

# Uploads: the largest file taken (Kimi's own limit), and the most an Office file (a zip
# archive) may unpack to.
UPLOAD_MAX_BYTES = _positive("UPLOAD_MAX_BYTES", env.int, 100 * 1024 * 1024)
UPLOAD_MAX_UNPACKED_BYTES = _positive("UPLOAD_MAX_UNPACKED_BYTES", env.int, 500 * 1024 * 1024)
# What one person's uploads may take in all (in their own library and their teams'), and how
# many files they may keep: a signed-up account cannot fill the disk or the Files page.
USER_STORAGE_MB = _positive("USER_STORAGE_MB", env.int, 2048)
USER_MAX_FILES = _positive("USER_MAX_FILES", env.int, 1000)
# Reading a file's text stops after this many pages, and fails after this many seconds.
EXTRACT_MAX_PAGES = _positive("EXTRACT_MAX_PAGES", env.int, 2000)
EXTRACT_TIMEOUT = _positive("EXTRACT_TIMEOUT", env.float, 300.0)
# Uploads larger than this are spooled to a temporary file rather than kept in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Request bodies (other than uploads, the API and the log-in pages, which have their own
# limits) larger than this are refused with 413 before they are read (realtime/server.py).
REQUEST_MAX_BYTES = _positive("REQUEST_MAX_BYTES", env.int, 2 * 1024 * 1024 + 512 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES
# A websocket whose page leaves this much of what it was sent untaken for 10 s (or four
# times this at all) is closed.
SOCKET_MAX_UNSENT_BYTES = _positive("SOCKET_MAX_UNSENT_BYTES", env.int, 2 * 1024 * 1024)
# Open websockets (tabs) per user, per process.
USER_MAX_SOCKETS = _positive("USER_MAX_SOCKETS", env.int, 20)
# Files read at once, per process (each in a child process of its own), and the memory (MB)
# and CPU seconds one reading may take.
FILE_READERS = _positive("FILE_READERS", env.int, 2)
FILE_READER_MEMORY_MB = _positive("FILE_READER_MEMORY_MB", env.int, 1024)

# Background work (reading uploaded files) through Django's tasks API: "immediate" runs it
# in this process, beside the requests; "database" queues it for `manage.py db_worker`
# processes (several servers, or to keep the web processes light).
TASKS_BACKEND = _read("TASKS_BACKEND", env.str, "immediate")
_TASK_BACKENDS = {
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
    "database": "django_tasks_db.backend.DatabaseBackend",
}
if TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured(
        f"Bad value for TASKS_BACKEND: {TASKS_BACKEND!r} (use immediate or database)"
    )
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[TASKS_BACKEND]}}

# Security headers. The policy allows no inline script or style: htmx is configured
# (meta htmx-config) not to inject its indicator styles or evaluate code.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False


def _proxy_ssl_header(name: str, default: None) -> tuple[str, str] | None:
    # The header, as the proxy sends it (X-Forwarded-Proto), becomes Django's META key.
    header = env.str(name, default="").strip()
    if not header:
        return default
    if not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise ValueError("a header name such as X-Forwarded-Proto")
    return "HTTP_" + header.upper().replace("-", "_"), "https"


# HTTPS, for running behind a proxy that terminates TLS. All off by default: `make run` serves
# plain HTTP on loopback, where secure cookies would never be sent back. With them on (and
# DEBUG=false, SECRET_KEY), `manage.py check --deploy` passes.
# SECURE_PROXY_SSL_HEADER names the header the proxy sets to "https" on requests that came in
# over TLS; only set it when the proxy always sets (or strips) that header.
SECURE_PROXY_SSL_HEADER = _read("SECURE_PROXY_SSL_HEADER", _proxy_ssl_header, None)
SECURE_SSL_REDIRECT = _read("SECURE_SSL_REDIRECT", _strict_bool, False)
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", env.int, 0)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured(
        f"Bad value for SECURE_HSTS_SECONDS: {SECURE_HSTS_SECONDS!r} (0 for none, or more)"
    )
SECURE_HSTS_INCLUDE_SUBDOMAINS = _read("SECURE_HSTS_INCLUDE_SUBDOMAINS", _strict_bool, False)
SECURE_HSTS_PRELOAD = _read("SECURE_HSTS_PRELOAD", _strict_bool, False)
SESSION_COOKIE_SECURE = _read("SESSION_COOKIE_SECURE", _strict_bool, False)
CSRF_COOKIE_SECURE = _read("CSRF_COOKIE_SECURE", _strict_bool, False)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # No log keeps a secret that a link carries (kimichat/logs.py).
    "filters": {"hide_secrets": {"()": "kimichat.logs.HideSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["hide_secrets"]},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "kimichat": {"level": "INFO"},
        "kimi": {"level": "INFO"},
        "realtime": {"level": "INFO"},
        "conversations": {"level": "INFO"},
        "daphne.server": {"level": "INFO"},
    },
}

# Where `python -m kimichat.serve` (make run) listens.
HOST = _read("HOST", env.str, "127.0.0.1")
PORT = _read("PORT", env.int, 8000)
if not 0 < PORT < 65536:
    raise ImproperlyConfigured(f"Bad value for PORT: {PORT!r} (must be 1-65535)")

# Kimi (Moonshot AI). Without a key the app still runs and says so on the page.
MOONSHOT_API_KEY = _read("MOONSHOT_API_KEY", env.str, "")
MOONSHOT_BASE_URL = _read("MOONSHOT_BASE_URL", env.url, "https://api.moonshot.cn/v1").geturl()
# The models offered in the picker are Kimi's own (GET /v1/models), read by each server process
# when it starts serving and again every KIMI_MODELS_REFRESH seconds (kimi/catalogue.py).
# KIMI_MODELS, when given, narrows that list to these ids, in this order; either way it is what
# is offered while Kimi has not been reached (no key, Kimi down, KIMI_MODELS_REFRESH=0), with
# the built-in list below as its default.
# The built-in list is only that fallback: today's models (December 2026), the first the default.
BUILT_IN_MODELS = ["kimi-k3", "kimi-k2.6"]
KIMI_MODELS = [m.strip() for m in _read("KIMI_MODELS", env.list, []) if m.strip()]
KIMI_MODELS_FILTER = bool(KIMI_MODELS)  # given (here or in .env): Kimi's list is narrowed
KIMI_MODELS = KIMI_MODELS or BUILT_IN_MODELS
# The model a new chat starts with (the first offered where Kimi does not offer it).
KIMI_DEFAULT_MODEL = _read("KIMI_DEFAULT_MODEL", env.str, "").strip() or KIMI_MODELS[0]
if KIMI_MODELS_FILTER and KIMI_DEFAULT_MODEL not in KIMI_MODELS:
    raise ImproperlyConfigured(
        f"Bad value for KIMI_DEFAULT_MODEL: {KIMI_DEFAULT_MODEL!r} is not one of KIMI_MODELS"
    )
if KIMI_DEFAULT_MODEL not in KIMI_MODELS:
    # A default of the operator's beyond the built-in list: offered even before Kimi is read.
    # Whether Kimi offers it is known only then (a warning names it if not).
    KIMI_MODELS = [KIMI_DEFAULT_MODEL, *KIMI_MODELS]
# Seconds between two readings of Kimi's model list; 0 never asks (KIMI_MODELS is offered).
KIMI_MODELS_REFRESH = _read("KIMI_MODELS_REFRESH", env.float, 300.0)
if KIMI_MODELS_REFRESH < 0:
    raise ImproperlyConfigured(
        f"Bad value for KIMI_MODELS_REFRESH: {KIMI_MODELS_REFRESH!r} (seconds, or 0 for never)"
    )
# Seconds: connecting to Kimi, and the longest silence allowed inside a stream.
KIMI_CONNECT_TIMEOUT = _positive("KIMI_CONNECT_TIMEOUT", env.float, 10.0)
KIMI_STREAM_TIMEOUT = _positive("KIMI_STREAM_TIMEOUT", env.float, 60.0)
KIMI_MAX_RETRIES = _read("KIMI_MAX_RETRIES", env.int, 2)
if KIMI_MAX_RETRIES < 0:
    raise ImproperlyConfigured(f"Bad value for KIMI_MAX_RETRIES: {KIMI_MAX_RETRIES!r}")
# Seconds before the first retry; each further retry waits twice as long (Kimi's own
# "try again after N seconds" wins when it says so).
KIMI_RETRY_BACKOFF = _positive("KIMI_RETRY_BACKOFF", env.float, 1.0)
# Context windows (tokens) of model ids KimiChat does not know, e.g. "my-model=32768".
KIMI_CONTEXT_WINDOWS = _read(
    "KIMI_CONTEXT_WINDOWS", lambda n, default: env.dict(n, cast={"value": int}, default=default), {}
)
# After a new chat's first answer, ask Kimi for a short title (one small extra request).
KIMI_AUTO_TITLE = _read("KIMI_AUTO_TITLE", _strict_bool, True)
# Kimi's built-in web search, offered by the composer's "Web search" switch (each search is
# billed by Kimi); false hides it, for deployments that must not reach the web.
KIMI_WEB_SEARCH = _read("KIMI_WEB_SEARCH", _strict_bool, True)


def _prices(name: str, default: str) -> dict[str, tuple[float, float, float | None]]:
    """ "model=input/cached/output,…" in USD per million tokens; an output of "-" is unknown."""
    prices = {}
    for item in env.list(name, default=default.split(",")):
        model, _, figures = item.strip().partition("=")
        numbers = figures.split("/")
        if not model or len(numbers) != 3:
            raise ValueError("use model=input/cached/output, e.g. kimi-k3=3/0.3/-")
        output = None if numbers[2].strip() == "-" else float(numbers[2])
        prices[model.strip()] = (float(numbers[0]), float(numbers[1]), output)
    return prices


# What Kimi charges, for the estimated cost on the admin's Usage page: per model, USD per
# million input tokens, cached input tokens and output tokens ("-": not known; that part is
# left out of the estimate). Defaults: Kimi's list prices as known in December 2026.
KIMI_PRICES = _read("KIMI_PRICES", _prices, "kimi-k3=3/0.3/-")
# USD per web search Kimi runs (billed per call).
KIMI_SEARCH_PRICE = _read("KIMI_SEARCH_PRICE", env.float, 0.005)

# Seconds a stopping process (SIGTERM) lets its running answers finish before it hands the
# rest to another process (conversations/resume.py).
SHUTDOWN_GRACE = _read("SHUTDOWN_GRACE", env.float, 30.0)
if SHUTDOWN_GRACE < 0:
    raise ImproperlyConfigured(f"Bad value for SHUTDOWN_GRACE: {SHUTDOWN_GRACE!r} (seconds)")
# Seconds an answer's lease lasts without renewal (renewed every third of it by the process
# writing it); once it lapses, another process takes the answer over and resumes it.
ANSWER_LEASE = _positive("ANSWER_LEASE", env.float, 6.0)
# Times one answer may be taken over before it is left interrupted (a crash loop).
ANSWER_MAX_RESUMES = _read("ANSWER_MAX_RESUMES", env.int, 3)
if ANSWER_MAX_RESUMES < 0:
    raise ImproperlyConfigured(f"Bad value for ANSWER_MAX_RESUMES: {ANSWER_MAX_RESUMES!r}")

# Per-user limits: answers generating at once, and messages (answers asked for, including
# regenerations) per minute.
USER_MAX_CONCURRENT = _positive("USER_MAX_CONCURRENT", env.int, 3)
USER_MESSAGES_PER_MINUTE = _positive("USER_MESSAGES_PER_MINUTE", env.int, 20)
# Tokens (prompt and completion together) each user may spend a day, across models; 0 for no
# limit. A moderator can set a user's own quota in the admin.
USER_DAILY_TOKENS = _read("USER_DAILY_TOKENS", env.int, 0)
if USER_DAILY_TOKENS < 0:
    raise ImproperlyConfigured(
        f"Bad value for USER_DAILY_TOKENS: {USER_DAILY_TOKENS!r} (0 for no limit, or more)"
    )
# Moderators read conversations in the admin; false keeps transcripts closed to everyone
# (reports still show the message reported).
MODERATION_TRANSCRIPTS = _read("MODERATION_TRANSCRIPTS", _strict_bool, True)

# Personal API keys and the OpenAI-compatible API at /v1 (docs/api.md):
# false turns both off. API_KEEP_CONVERSATIONS keeps each call as a conversation of its user's
# (marked "API"), seen in their list and by moderators; off, only the usage is kept.
API_KEYS = _read("API_KEYS", _strict_bool, True)
API_KEEP_CONVERSATIONS = _read("API_KEEP_CONVERSATIONS", _strict_bool, False)
# The largest request body /v1 reads (bytes), checked before reading it: by default room for
# an image of API_LARGEST_IMAGE_MB as base64, and the text around it. (Moonshot states no limit
# of its own for images in a request; 20 MB is the common bound where Kimi's models are hosted.)
API_LARGEST_IMAGE_MB = 20
API_MAX_BODY_BYTES = _positive(
    "API_MAX_BODY_BYTES", env.int, API_LARGEST_IMAGE_MB * 1024 * 1024 * 4 // 3 + 1024 * 1024
)
# Browser apps on these origins (scheme://host[:port]) may call /v1 from their pages (CORS);
# none by default.
API_CORS_ORIGINS = [
    o.strip().rstrip("/") for o in _read("API_CORS_ORIGINS", env.list, []) if o.strip()
]
if any(
    not o.startswith(("https://", "http://")) or "/" in o.split("//", 1)[1]
    for o in API_CORS_ORIGINS
):
    raise ImproperlyConfigured(
        f"Bad value for API_CORS_ORIGINS: {API_CORS_ORIGINS!r} (origins: scheme://host[:port])"
    )


# Access: who may sign up, e-mail, single sign-on, two-factor, log-in throttling. django-allauth
# does the work; accounts/adapter.py holds KimiChat's policy (README, "Access").
SIGNUP_POLICIES = ("open", "approval", "invite", "closed")
SIGNUP = _read("SIGNUP", env.str, "").strip().lower() or "approval"
if SIGNUP not in SIGNUP_POLICIES:
    raise ImproperlyConfigured(
        f"Bad value for SIGNUP: {SIGNUP!r} (use {', '.join(SIGNUP_POLICIES)})"
    )


def _email_url(name: str, default: str) -> dict:
    """smtp://user:password@host:587?tls=true (STARTTLS), smtps://…:465 (TLS from the start)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    url = urlsplit(env.str(name, default=default).strip())
    if not url.scheme:
        return {}
    if url.scheme not in {"smtp", "smtps"} or not url.hostname:
        raise ValueError("use smtp://user:password@host:port or smtps://…")
    query = {k: v[-1].strip().lower() for k, v in parse_qs(url.query).items()}
    unknown = set(query) - {"tls", "ssl", "timeout"}
    if unknown:
        raise ValueError(f"unknown option {', '.join(sorted(unknown))} (tls, ssl, timeout)")
    truth = {"true": True, "1": True, "false": False, "0": False}
    if any(query.get(k, "false") not in truth for k in ("tls", "ssl")):
        raise ValueError("tls and ssl take true or false")
    ssl = url.scheme == "smtps" or truth[query.get("ssl", "false")]
    return {
        "EMAIL_BACKEND": "kimichat.mail.BackgroundEmailBackend",
        "EMAIL_HOST": url.hostname,
        "EMAIL_PORT": url.port or (465 if ssl else 25),
        "EMAIL_HOST_USER": unquote(url.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(url.password or ""),
        "EMAIL_USE_TLS": truth[query.get("tls", "false")],
        "EMAIL_USE_SSL": ssl,
        "EMAIL_TIMEOUT": float(query.get("timeout", 10)),
    }


# Without EMAIL_URL nothing is sent: no "Forgot password?", no verification, no notices.
EMAIL = _read("EMAIL_URL", _email_url, "")
if EMAIL.get("EMAIL_USE_TLS") and EMAIL.get("EMAIL_USE_SSL"):
    raise ImproperlyConfigured("Bad value for EMAIL_URL: tls and ssl exclude each other")
globals().update(EMAIL)
if not EMAIL:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
DEFAULT_FROM_EMAIL = _read("DEFAULT_FROM_EMAIL", env.str, "KimiChat <kimichat@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

ACCOUNT_ADAPTER = "teams.access.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "teams.access.SocialAccountAdapter"
USERSESSIONS_ADAPTER = "accounts.adapter.UserSessionsAdapter"
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm", "signup": "accounts.forms.SignupForm"}
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = _read("EMAIL_VERIFICATION", env.str, "optional" if EMAIL else "none")
if ACCOUNT_EMAIL_VERIFICATION not in {"none", "optional", "mandatory"}:
    raise ImproperlyConfigured(
        f"Bad value for EMAIL_VERIFICATION: {ACCOUNT_EMAIL_VERIFICATION!r} "
        "(use none, optional or mandatory)"
    )
if ACCOUNT_EMAIL_VERIFICATION != "none" and not EMAIL:
    raise ImproperlyConfigured(
        "Bad value for EMAIL_VERIFICATION: verification needs EMAIL_URL to send the link"
    )
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[KimiChat] "
ACCOUNT_LOGOUT_REDIRECT_URL = LOGOUT_REDIRECT_URL
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_NOTIFICATIONS = bool(EMAIL)
# A reset asked for an address no account has sends nothing (no mail to strangers).
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
# Log-in throttling: a wrong password costs a try per address (20 a minute) and per account
# (5 in 15 minutes); past either, every try is refused, the right password too, until the
# window has passed.
LOGIN_ATTEMPTS_PER_ACCOUNT = _positive("LOGIN_ATTEMPTS_PER_ACCOUNT", env.int, 5)
LOGIN_LOCKOUT_SECONDS = _positive("LOGIN_LOCKOUT_SECONDS", env.int, 15 * 60)
ACCOUNT_RATE_LIMITS = {
    "login_failed": (f"20/m/ip,{LOGIN_ATTEMPTS_PER_ACCOUNT}/{LOGIN_LOCKOUT_SECONDS}s/key"),
    # Log-ins that succeed: generous, people behind one proxy share an address.
    "login": "120/m/ip",
}
# Behind a proxy, the client's address is the proxy's unless it says how many proxies add
# themselves to X-Forwarded-For (throttling per address needs the real one).
ALLAUTH_TRUSTED_PROXY_COUNT = _read("TRUSTED_PROXY_COUNT", env.int, 0)
if ALLAUTH_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(
        f"Bad value for TRUSTED_PROXY_COUNT: {ALLAUTH_TRUSTED_PROXY_COUNT!r} (0 or more)"
    )
# Counters of throttling live in the cache: shared through Redis when there are several
# processes, in this process's memory otherwise.
if REDIS_URL:
    CACHES = {
        "default": {
            # Redis, or the process's memory while Redis is down (kimichat/cache.py).
            "BACKEND": "kimichat.cache.RedisOrLocal",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "kimichat",
            # An unreachable Redis costs a page a second at most, not a TCP time-out.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }

# Two-factor: TOTP apps and recovery codes; staff must turn it on when this is true.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "KimiChat"
# People log in by username, not e-mail: an address not yet verified does not stop two-factor.
MFA_ALLOW_UNVERIFIED_EMAIL = True
MFA_REQUIRED_FOR_STAFF = _read("MFA_REQUIRED_FOR_STAFF", _strict_bool, False)

# Sessions are recorded at log-in (for the Account page and "Sign out everywhere"), not on
# every request: a write per request would cost every page and every answer.
USERSESSIONS_TRACK_ACTIVITY = False

# Single sign-on with one OpenID Connect provider (Keycloak, Entra ID, Okta, Google…).
OIDC_SERVER_URL = _read("OIDC_SERVER_URL", env.str, "").strip().rstrip("/")
OIDC_NAME = _read("OIDC_NAME", env.str, "SSO").strip() or "SSO"
OIDC_CLIENT_ID = _read("OIDC_CLIENT_ID", env.str, "").strip()
OIDC_CLIENT_SECRET = _read("OIDC_CLIENT_SECRET", env.str, "")
# E-mail domains whose people get an account at first log-in whatever SIGNUP says.
OIDC_ALLOWED_DOMAINS = [
    d.strip().lower().lstrip("@") for d in _read("OIDC_ALLOWED_DOMAINS", env.list, []) if d.strip()
]
# A claim listing the person's groups: each group is a KimiChat team of that name they join,
# and OIDC_MODERATOR_GROUP makes them a moderator.
OIDC_GROUPS_CLAIM = _read("OIDC_GROUPS_CLAIM", env.str, "").strip()
OIDC_MODERATOR_GROUP = _read("OIDC_MODERATOR_GROUP", env.str, "").strip()
if OIDC_SERVER_URL and not OIDC_CLIENT_ID:
    raise ImproperlyConfigured("Bad value for OIDC_CLIENT_ID: OIDC_SERVER_URL needs it")
if OIDC_CLIENT_ID and not OIDC_SERVER_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        f"Bad value for OIDC_SERVER_URL: {OIDC_SERVER_URL!r} (the issuer's URL, https://…)"
    )
SOCIALACCOUNT_PROVIDERS: dict[str, Any] = {}
if OIDC_CLIENT_ID:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": "oidc",
                "name": OIDC_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {
                    "server_url": OIDC_SERVER_URL,
                    "scope": ["openid", "profile", "email"],
                    "fetch_userinfo": True,
                },
            }
        ],
    }
    # "Log in with …" posts a form that redirects to the provider: the policy must let it.
    from urllib.parse import urlsplit as _urlsplit

    _issuer = _urlsplit(OIDC_SERVER_URL)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(
        f"{_issuer.scheme}://{_issuer.netloc}"
    )
SOCIALACCOUNT_ONLY = False
# The provider vouches for the address it gives; an account is made without a second form.
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
