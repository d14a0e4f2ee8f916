"""The chat socket as tests use it: a logged-in websocket through the real ASGI application,
the frames of one answer, and threads of messages made directly."""

import asyncio
import re

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from conversations import generation
from conversations.models import Message
from kimichat.asgi import application

ORIGIN = (b"origin", b"http://localhost")


async def connect(
    user: User | None, path: str, origin: tuple = ORIGIN, language: str = "en"
) -> WebsocketCommunicator:
    """A websocket through the real ASGI application, logged in as `user` by session cookie."""
    # The browser's page is on the host the socket connects to (realtime/origin.py).
    headers = [origin, (b"host", b"localhost"), (b"accept-language", language.encode())]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    return communicator


def add_thread(conversation, *messages: dict) -> list:
    """Messages that follow one another (each answering the one before), shown as the thread."""
    from conversations.models import Message

    parent = conversation.leaf
    saved = []
    for fields in messages:
        parent = Message.objects.create(conversation=conversation, parent=parent, **fields)
        saved.append(parent)
    conversation.leaf = parent
    conversation.save(update_fields=["leaf"])
    return saved


FINAL = re.compile(r'<article id="msg-\d+" data-role="assistant" data-state="(\w+)"')


async def frames_until_final(communicator) -> list[str]:
    """Every frame up to and including the one that swaps in the finished answer."""
    frames = []
    while True:
        frame = await communicator.receive_from(30)
        frames.append(frame)
        match = FINAL.search(frame)
        if match and match.group(1) != "streaming":
            return frames


def streamed_text(frames: list[str]) -> str:
    return "".join(
        re.findall(r'hx-swap-oob="beforeend:#msg-\d+-body">(.*?)</div>', "".join(frames), re.S)
    )


async def open_chat(user, conversation=None):
    path = f"/ws/conversations/{conversation.pk}/" if conversation else "/ws/conversations/new/"
    communicator = await connect(user, path)
    connected, _ = await communicator.connect(30)
    assert connected
    return communicator


async def answer(conversation) -> Message:
    return await conversation.messages.filter(role="assistant").alast()


async def generation_finished(conversation) -> None:
    running = generation.running(conversation.pk)
    if running:
        await asyncio.wait_for(asyncio.shield(running.task), 10)
