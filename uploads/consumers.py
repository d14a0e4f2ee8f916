"""The Files page's socket, and what every socket that shows files does when one changes."""

from datetime import timedelta

from channels.db import database_sync_to_async
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.functional import Promise

from accounts.models import TWO_FACTOR_REQUIRED, two_factor_missing
from realtime import live
from realtime.consumers import LiveConsumer
from uploads.models import UploadedFile


class FileStatusConsumer(LiveConsumer):
    """A page's socket that shows a file's new status wherever the page shows that file."""

    async def admitted(self) -> bool:
        """As every page's socket, and, with MFA_REQUIRED_FOR_STAFF, staff without two-factor
        are refused with the reason, as the pages send them to set it up."""
        if not await super().admitted():
            return False
        if await database_sync_to_async(two_factor_missing)(self.user):
            await self.refuse(TWO_FACTOR_REQUIRED)
            return False
        return True

    async def refuse(self, reason: str | Promise) -> None:
        """Say why the socket may not be used (where the page shows errors), and close it as
        forbidden."""
        await self.accept()
        with translation.override(self.language):
            html = render_to_string("realtime/_composer_error.html", {"error": reason})
        await self.send(text_data=html)
        await self.close(live.CLOSE_SUSPENDED)

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
