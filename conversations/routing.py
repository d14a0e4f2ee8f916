from django.urls import path

from conversations.consumers import ChatConsumer
from uploads.consumers import FilesConsumer

websocket_urlpatterns = [
    path("ws/conversations/new/", ChatConsumer.as_asgi()),
    path("ws/conversations/<int:conversation_id>/", ChatConsumer.as_asgi()),
    path("ws/files/", FilesConsumer.as_asgi()),
]
