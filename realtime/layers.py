"""The embedded (single-process) channel layer, made to scale with the number of streams."""

import asyncio
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, with the work per frame taken out of its hot path:

    - it sweeps every channel, queued message and group for expired entries on each receive:
      O(sockets) work per frame, O(sockets²) per second under load. Expiry is measured in
      seconds anyway, so sweeping once a second loses nothing;
    - it builds a queue (and matches the channel's capacity) on every send and receive, kept
      or not, and drops a channel's queue whenever it is empty, so the next frame builds it
      again: here a queue is built once and dropped by the sweep, once no one waits on it;
    - it deep-copies every message; the events sent here are flat dicts of strings and
      numbers, which a shallow copy keeps apart as well."""

    sweep_interval = 1.0
    _last_sweep = 0.0

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        assert "__asgi_channel__" not in message
        try:
            self._queue(channel).put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.QueueFull as e:
            raise ChannelFull(channel) from e

    async def receive(self, channel: str) -> dict[str, Any]:
        self._clean_expired()
        _, message = await self._queue(channel).get()
        return message

    def _queue(self, channel: str) -> asyncio.Queue:
        queue = self.channels.get(channel)
        if queue is None:
            self.require_valid_channel_name(channel)
            queue = asyncio.Queue(maxsize=self.get_capacity(channel))
            self.channels[channel] = queue
        return queue

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_interval:
            self._last_sweep = now
            # Channels' own, private: its stubs leave it out.
            super()._clean_expired()  # type: ignore[misc]
            # A queue that is empty and waited on by no one belongs to a channel that is
            # gone, or that builds it anew on its next send or receive.
            for channel, queue in list(self.channels.items()):
                if queue.empty() and not getattr(queue, "_getters", None):
                    del self.channels[channel]
