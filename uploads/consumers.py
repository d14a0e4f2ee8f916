from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.utils import translation

from uploads.models import UploadedFile
from uploads.services import files_group


class FileStatusMixin:
    """Shows a file's new status wherever the page shows that file."""

    async def file_changed(self, event: dict) -> None:
        file = await UploadedFile.objects.for_user(self.user).filter(pk=event["file_id"]).afirst()
        if file is None:
            return
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
        await self.channel_layer.group_add(files_group(self.user.pk), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.user.is_authenticated:
            await self.channel_layer.group_discard(files_group(self.user.pk), self.channel_name)
