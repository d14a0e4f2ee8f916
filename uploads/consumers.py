"""The Files page's socket, and what every socket that shows files does when one changes."""

from datetime import timedelta
from typing import Any, cast

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.functional import Promise

from accounts.models import TWO_FACTOR_REQUIRED, two_factor_missing
from kimichat import limits, live
from uploads.models import UploadedFile


class FileStatusConsumer(AsyncWebsocketConsumer):
    """A page's socket that shows a file's new status wherever the page shows that file."""

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
        if await database_sync_to_async(two_factor_missing)(self.user):
            await self.refuse(TWO_FACTOR_REQUIRED)
            return False
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

    async def refuse(self, reason: str | Promise) -> None:
        """Say why the socket may not be used (on the page, where it shows errors), and close
        it as forbidden."""
        await self.accept()
        with translation.override(self.language):
            html = render_to_string("conversations/_composer_error.html", {"error": reason})
        await self.send(text_data=html)
        await self.close(live.CLOSE_SUSPENDED)

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

    async def file_changed(self, event: live.FileEvent) -> None:
        file = await UploadedFile.objects.for_user(self.user).filter(pk=event["file_id"]).afirst()
        if file is not None:
            await self.send_status(file)

    async def send_statuses(self, file_ids: list[int]) -> None:
        """The page asks after files it still shows as being read: those read since."""
        files = UploadedFile.objects.for_user(self.user).filter(pk__in=file_ids)
        async for file in files.exclude(status=UploadedFile.Status.PROCESSING):
            await self.send_status(file)

    async def send_status(self, file: UploadedFile) -> None:
        with translation.override(self.language):
            html = render_to_string("uploads/_file_status.html", {"file": file, "oob": True})
        await self.send(text_data=html)


class FilesConsumer(FileStatusConsumer):
    """The Files page's socket: status changes of the user's files, live."""

    async def connect(self) -> None:
        if not await self.admitted():
            return
        # File news, and a suspension (which closes the socket).
        await self.join([live.files_group(self.user.pk), live.user_group(self.user.pk)])
        await self.accept()
        # A file read between the page's rendering and this connection: its news came
        # before anyone listened.
        recent = UploadedFile.objects.for_user(self.user).filter(
            updated_at__gte=timezone.now() - timedelta(minutes=1)
        )
        async for file in recent.exclude(status=UploadedFile.Status.PROCESSING)[:20]:
            await self.send_status(file)

    async def account_suspended(self, event: dict) -> None:
        await self.close(live.CLOSE_SUSPENDED)
