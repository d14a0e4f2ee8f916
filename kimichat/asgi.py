"""ASGI entry point: Django for HTTP, Channels for the chat websockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from conversations.routing import websocket_urlpatterns  # noqa: E402
from kimichat import catalogue  # noqa: E402
from kimichat.origin import SameOriginValidator  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(
            # Django's path() for websockets, as Channels documents (routing.py).
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))  # type: ignore[arg-type]
        ),
    }
)


async def application(scope, receive, send):
    # The models Kimi offers are read in the background of the process that serves, once it
    # serves (Daphne has no start-up hook for an application), then every few minutes.
    catalogue.keep_fresh()
    await router(scope, receive, send)
