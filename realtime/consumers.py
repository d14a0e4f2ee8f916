"""What every page's socket does: admit its logged-in user within their number of sockets,
join and leave its groups, and close when the session is gone; and the refusal of any other
path."""

from typing import Any, cast

from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User

from realtime import limits, live


class LiveConsumer(AsyncWebsocketConsumer):
    """A page's socket for a logged-in user, in the groups it joined until it closes."""

    user: User  # set once the socket is accepted: sockets are for logged-in users only
    language: str
    joined: list[str] = []  # the groups this socket is in
    counted = False  # whether this socket counts towards its user's USER_MAX_SOCKETS
    session = ""  # the group of the browser session it came with

    async def admitted(self) -> bool:
        """Take the logged-in user from the scope, within their number of sockets; close the
        socket for anyone else (False)."""
        user = self.scope["user"]
        if user is None or not user.is_authenticated:
            await self.close(live.CLOSE_UNAUTHENTICATED)
            return False
        self.user = cast(User, user)  # Channels' lazy object, behind it a User
        self.language = live.scope_language(self.scope)
        if not limits.socket_open(self.user.pk):
            await self.close(live.CLOSE_TOO_MANY)
            return False
        self.counted = True
        # The browser session's own group: a log-out there (or its end from elsewhere)
        # closes this socket (accounts/adapter.py).
        session_key = self.scope["session"].session_key
        self.session = live.session_group(session_key) if session_key else ""
        if self.session:
            await self.join([self.session])
        return True

    async def join(self, groups: list[str]) -> None:
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = self.joined + groups

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # However the socket ends (closed, or a handler that failed), its slot comes back.
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()

    def release(self) -> None:
        """Give back this socket's place among its user's USER_MAX_SOCKETS (once)."""
        if self.counted:
            self.counted = False
            limits.socket_closed(self.user.pk)

    async def disconnect(self, code: int) -> None:
        self.release()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def account_signed_out(self, event: dict) -> None:
        # The page's session is gone: its socket goes as a logged-out one's would. (After a
        # password change, the session that changed it stays.)
        if self.session and event.get("keep") == self.session:
            return
        await self.close(live.CLOSE_UNAUTHENTICATED)


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any other path: refused with a close code, as a page is with a 404."""

    async def connect(self) -> None:
        await self.close(live.CLOSE_NOT_FOUND)
