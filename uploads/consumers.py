"""The Files page's socket, and what every socket that shows files does when one changes."""

from datetime import timedelta

from django.template.loader import render_to_string
from django.utils import timezone, translation

from realtime import live
from realtime.consumers import LiveConsumer
from uploads.models import UploadedFile


class FileStatusConsumer(LiveConsumer):
    """A page's socket that shows a file's new status wherever the page shows that file."""

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
