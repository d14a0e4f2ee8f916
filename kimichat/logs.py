"""What the logs keep of a request's path: never the secret some links carry (a password-reset
key, an invitation token, an e-mail confirmation key), nor the values of its query string (a
search's words, single sign-on's one-time code). Used by the server's access log and, as a
logging filter, by every log handler (Django's "Not Found: /invite/…/")."""

import logging
import re

HIDDEN = "***"
# The links whose next path segment is a secret: allauth's account_reset_password_from_key and
# account_confirm_email, and teams' invite.
SECRET_IN_PATH = re.compile(
    r"^(/accounts/password/reset/key/|/accounts/confirm-email/|/invite/)[^/?]+"
)


def loggable(path: str) -> str:
    """`path` (with or without its query string) as a log may keep it."""
    path, mark, query = path.partition("?")
    path = SECRET_IN_PATH.sub(rf"\g<1>{HIDDEN}", path)
    if mark:
        names = (part.partition("=")[0] for part in query.split("&") if part)
        query = "&".join(f"{name}={HIDDEN}" for name in names)
    return path + mark + query


class HideSecrets(logging.Filter):
    """Every path given to a log record as an argument is logged as `loggable` gives it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                loggable(a) if isinstance(a, str) and a.startswith("/") else a for a in record.args
            )
        return True
