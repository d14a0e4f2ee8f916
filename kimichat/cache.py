"""Django's cache on Redis, with this process's memory standing in while Redis cannot be
reached: what the cache holds (log-in throttling's counts) goes on being counted, per process,
and no page fails for an outage. Redis is an optimisation, not where anything lives."""

import logging
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError, TimeoutError

log = logging.getLogger(__name__)


class RedisOrLocal(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        local = LocMemCache("kimichat-cache-fallback", {})
        client: Any = self._class  # type: ignore[has-type]
        self._class = lambda servers, **options: _Either(client(servers, **options), local)


class _Either:
    """The Redis client's calls (keys already made, timeouts in seconds), each answered by
    the local cache instead when Redis does not answer. LocMemCache takes the same arguments
    in the same places."""

    def __init__(self, redis: Any, local: LocMemCache) -> None:
        self.redis, self.local = redis, local
        self.down = False  # said once an outage, not at every call

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                answer = getattr(self.redis, name)(*args, **kwargs)
            except (ConnectionError, TimeoutError):
                if not self.down:
                    self.down = True
                    log.warning("Redis is unreachable: the cache is kept in memory meanwhile")
                return getattr(self.local, name)(*args, **kwargs)
            if self.down:
                self.down = False
                log.warning("Redis answers again: the cache is back on it")
            return answer

        return call
