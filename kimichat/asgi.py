"""ASGI entry point: Django for HTTP, Channels for the chat websockets."""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from conversations import resume  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402
from kimi import catalogue  # noqa: E402
from realtime import lifecycle  # noqa: E402
from realtime.limits import SessionSockets  # noqa: E402
from realtime.origin import SameOriginValidator  # noqa: E402

# Leases renewed and lapsed answers taken over, in the background of the server's loop.
lifecycle.on_serve(resume.keep_watch)

log = logging.getLogger(__name__)

router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(
            # Django's path() for websockets, as Channels documents (routing.py).
            SessionSockets(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))  # type: ignore[arg-type]
        ),
    }
)


async def application(scope, receive, send):
    # The models Kimi offers are read in the background of the process that serves, once it
    # serves (Daphne has no start-up hook for an application), then every few minutes.
    catalogue.keep_fresh()
    if scope["type"] != "websocket":
        await router(scope, receive, send)
        return
    accepted = False

    async def sending(message):
        nonlocal accepted
        accepted = accepted or message["type"] == "websocket.accept"
        await send(message)

    try:
        await router(scope, receive, sending)
    except Exception:
        if accepted:
            raise
        # The channel layer is unreachable (Redis restarting), say: the socket is refused,
        # not answered 500, and the page tries again a moment later.
        log.warning("A websocket could not be opened", exc_info=True)
        await send({"type": "websocket.close"})
