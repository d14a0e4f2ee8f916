"""What one user's sockets may do, per process: open so many at once, and take each action at
a rate (a token bucket per user and action: a burst, then a steady rate). Kept in memory:
every process counts its own sockets and actions."""

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http import parse_cookie

# Actions that ask for an answer: paced by USER_MESSAGES_PER_MINUTE (which refuses them
# anyway past that, though only after a trip to the database).
MESSAGE_ACTIONS = {"send", "continue", "regenerate", "edit"}
# Other actions: (actions per second, burst). What costs the server most comes slowest.
RATES: dict[str, tuple[float, float]] = {
    "select": (4, 20),
    "stop": (2, 10),
    "sync": (2, 20),
    "statuses": (2, 20),
    # Anything else a socket sends (unknown actions, frames that are not JSON).
    "other": (5, 30),
}
# Buckets kept before the full (idle) ones are forgotten.
MAX_BUCKETS = 20_000


@dataclass
class Bucket:
    rate: float
    burst: float
    tokens: float
    at: float = field(default_factory=time.monotonic)

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.at) * self.rate >= self.burst


_buckets: dict[tuple[int, str], Bucket] = {}
_sockets: Counter[int] = Counter()
_session_sockets: Counter[str] = Counter()


def allow(user_id: int, action: str) -> bool:
    """Whether `user_id` may take `action` now (and count it if so)."""
    action = action if action in RATES or action in MESSAGE_ACTIONS else "other"
    now = time.monotonic()
    bucket = _buckets.get((user_id, action))
    if bucket is None:
        if len(_buckets) >= MAX_BUCKETS:
            _forget_idle(now)
        rate, burst = _rate(action)
        bucket = _buckets[user_id, action] = Bucket(rate, burst, burst, now)
    return bucket.take(now)


def _rate(action: str) -> tuple[float, float]:
    if action in MESSAGE_ACTIONS:
        per_minute = settings.USER_MESSAGES_PER_MINUTE
        return max(1.0, per_minute / 60), max(10.0, per_minute / 2)
    return RATES[action]


def _forget_idle(now: float) -> None:
    for key in [key for key, bucket in _buckets.items() if bucket.full(now)]:
        del _buckets[key]


def socket_open(user_id: int) -> bool:
    """Count a new socket of `user_id`'s; False (and not counted) past USER_MAX_SOCKETS."""
    if _sockets[user_id] >= settings.USER_MAX_SOCKETS:
        return False
    _sockets[user_id] += 1
    return True


def socket_closed(user_id: int) -> None:
    _sockets[user_id] -= 1
    if _sockets[user_id] <= 0:
        del _sockets[user_id]


def session_key(cookie_header: bytes) -> str | None:
    return parse_cookie(cookie_header.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)


def session_full(key: str) -> bool:
    """Whether the browser session `key` has all the sockets it may have open."""
    return _session_sockets[key] >= settings.USER_MAX_SOCKETS


class SessionSockets:
    """Sockets counted by the session they come with, before the session is looked up (a trip
    to the database): a browser with USER_MAX_SOCKETS open already is refused at the
    handshake, so a flood of sockets from one log-in costs no database work. (The consumer
    then counts them by user, across the user's sessions.)"""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        key = session_key(dict(scope.get("headers", [])).get(b"cookie", b""))
        if not key:
            return await self.application(scope, receive, send)
        if session_full(key):
            return await WebsocketDenier()(scope, receive, send)
        _session_sockets[key] += 1
        try:
            return await self.application(scope, receive, send)
        finally:
            _session_sockets[key] -= 1
            if _session_sockets[key] <= 0:
                del _session_sockets[key]


def forget() -> None:
    """Start afresh (tests)."""
    _buckets.clear()
    _sockets.clear()
    _session_sockets.clear()
