"""What every page's socket does: admit its logged-in user within their number of sockets,
join and leave its groups, and close when the session is gone; and the refusal of any other
path."""

from typing import cast

from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User

from realtime import limits, live


class LiveConsumer(AsyncWebsocketConsumer):
    """A page's socket for a logged-in user, in the groups it joined until it closes."""

    user: User  # set once the socket is accepted: sockets are for logged-in users only
    language: str
    joined: list[str] = []  # the groups this socket is in
    counted = False  # whether this socket counts towards its user's USER_MAX_SOCKETS

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
        return True

    async def join(self, groups: list[str]) -> None:
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = self.joined + groups

    async def disconnect(self, code: int) -> None:
        if self.counted:
            self.counted = False
            limits.socket_closed(self.user.pk)
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def account_signed_out(self, event: dict) -> None:
        # The page's session is gone: its socket goes as a logged-out one's would.
        await self.close(live.CLOSE_UNAUTHENTICATED)


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any other path: refused with a close code, as a page is with a 404."""

    async def connect(self) -> None:
        await self.close(live.CLOSE_NOT_FOUND)
