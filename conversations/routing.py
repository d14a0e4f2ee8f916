from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from conversations.consumers import ChatConsumer
from kimichat import live
from uploads.consumers import FilesConsumer


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any other path: refused with a close code, as a page is with a 404."""

    async def connect(self) -> None:
        await self.close(live.CLOSE_NOT_FOUND)


# Channels routes ASGI applications with Django's path(), which django-stubs types for views
# alone: hence the ignores.
websocket_urlpatterns = [
    path("ws/conversations/new/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/conversations/<int:conversation_id>/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/files/", FilesConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"", NoSuchSocket.as_asgi()),  # type: ignore[arg-type]
]
