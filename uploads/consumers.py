from datetime import timedelta

from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.utils import timezone, translation

from moderation.services import user_group
from uploads.models import UploadedFile
from uploads.services import files_group


class FileStatusMixin:
    """Shows a file's new status wherever the page shows that file."""

    async def file_changed(self, event: dict) -> None:
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


class FilesConsumer(FileStatusMixin, AsyncWebsocketConsumer):
    """The Files page's socket: status changes of the user's files, live."""

    async def connect(self) -> None:
        from conversations.consumers import scope_language

        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            await self.close(4401)
            return
        self.language = scope_language(self.scope)
        for group in (files_group(self.user.pk), user_group(self.user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # A file read between the page's rendering and this connection: its news came
        # before anyone listened.
        recent = UploadedFile.objects.for_user(self.user).filter(
            updated_at__gte=timezone.now() - timedelta(minutes=1)
        )
        async for file in recent.exclude(status=UploadedFile.Status.PROCESSING)[:20]:
            await self.send_status(file)

    async def disconnect(self, code: int) -> None:
        if self.user.is_authenticated:
            for group in (files_group(self.user.pk), user_group(self.user.pk)):
                await self.channel_layer.group_discard(group, self.channel_name)

    async def account_suspended(self, event: dict) -> None:
        await self.close(4403)
