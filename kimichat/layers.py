"""The embedded (single-process) channel layer, made to scale with the number of streams."""

import time

from channels.layers import InMemoryChannelLayer


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer sweeps every channel, queued message and group for expired
    entries on each receive: O(sockets) work per frame, O(sockets²) per second under load.
    Expiry is measured in seconds anyway, so sweeping once a second loses nothing."""

    sweep_interval = 1.0
    _last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_interval:
            self._last_sweep = now
            # Channels' own, private: its stubs leave it out.
            super()._clean_expired()  # type: ignore[misc]
