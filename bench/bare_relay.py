"""The yardstick for capacity: a minimal Channels consumer that only forwards chunks.

It streams from the same stub through the same SDK client, and sends one escaped frame per
chunk: no database, no coalescing, no groups. Served by Daphne as `bench.bare_relay:application`.
"""

import asyncio
import os
from html import escape

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

import kimi  # noqa: E402

# The model the conversations of the run use (a thinking one: reasoning, then content).
MODEL = os.environ.get("BENCH_MODEL", "kimi-k2.6")


class BareRelay(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content, **kwargs) -> None:
        self.relay_task = asyncio.create_task(self.relay(content["message"]))

    async def relay(self, text: str) -> None:
        stream = await kimi.client().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}], stream=True
        )
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            thought = getattr(delta, "reasoning_content", None)
            if thought:
                html = f'<div hx-swap-oob="beforeend:#msg-0-thinking">{escape(thought)}</div>'
                await self.send(text_data=html)
            if delta.content:
                token = escape(delta.content)
                await self.send(text_data=f'<div hx-swap-oob="beforeend:#msg-0-body">{token}</div>')
        await self.send(text_data="[bare-done]")


# Channels routes consumers with Django's path(), which django-stubs types for views only.
route = path("ws/conversations/<int:id>/", BareRelay.as_asgi())  # type: ignore[arg-type]
application = ProtocolTypeRouter({"websocket": URLRouter([route])})  # type: ignore[list-item]
