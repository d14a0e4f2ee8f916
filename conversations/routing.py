from django.urls import path, re_path

from conversations.consumers import ChatConsumer
from realtime.consumers import NoSuchSocket
from uploads.consumers import FilesConsumer

# Channels routes ASGI applications with Django's path(), which django-stubs types for views
# alone: hence the ignores.
websocket_urlpatterns = [
    path("ws/conversations/new/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/conversations/<int:conversation_id>/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/files/", FilesConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"", NoSuchSocket.as_asgi()),  # type: ignore[arg-type]
]
