"""The chat page's websocket: takes messages and Stop, relays a conversation's frames."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import get_template, render_to_string
from django.utils.translation import gettext as _

from conversations import context, generation
from conversations.forms import MAX_MESSAGE_CHARS, first_error, settings_form_for_message
from conversations.models import Conversation, Message
from conversations.services import Exchange, exchange_create
from kimichat import kimi

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
MAX_SYNC_MESSAGES = 10


class ChatConsumer(AsyncJsonWebsocketConsumer):
    conversation: Conversation | None = None

    async def connect(self) -> None:
        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            await self.close(CLOSE_UNAUTHENTICATED)
            return
        # How much of each streaming answer this socket's page already shows.
        self.offsets: dict[int, int] = {}
        conversation_id = self.scope["url_route"]["kwargs"].get("conversation_id")
        if conversation_id is not None:
            self.conversation = await (
                Conversation.objects.for_user(self.user).filter(pk=conversation_id).afirst()
            )
            if self.conversation is None:
                await self.close(CLOSE_NOT_FOUND)
                return
            await self.channel_layer.group_add(
                generation.group_name(self.conversation.pk), self.channel_name
            )
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # The generation goes on without us: it belongs to the conversation, not the socket.
        if self.conversation is not None:
            await self.channel_layer.group_discard(
                generation.group_name(self.conversation.pk), self.channel_name
            )

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            return
        action = content.get("action", "send")
        if action == "send":
            await self.take_message(content)
        elif action == "stop" and self.conversation is not None:
            running = generation.running(self.conversation.pk)
            if running:
                running.stop()
        elif action == "sync" and isinstance(content.get("streaming"), dict):
            await self.sync(content["streaming"])

    async def take_message(self, content: dict) -> None:
        text = str(content.get("message", "")).strip()
        client_id = str(content.get("client_id", ""))[:64]
        if not text:
            return
        if len(text) > MAX_MESSAGE_CHARS:
            await self.composer_error(_("The message is too long (at most 100,000 characters)."))
            return
        if self.conversation is not None and generation.running(self.conversation.pk):
            await self.composer_error(_("Kimi is still answering. Wait for it or press Stop."))
            return
        prepared = await database_sync_to_async(self.prepare)(content, text, client_id)
        if isinstance(prepared, str):
            await self.composer_error(prepared)
            return
        exchange, messages = prepared
        if not exchange.created:
            return  # a replayed send: the first one is already being answered
        if self.conversation is None:
            self.conversation = exchange.conversation
            await self.channel_layer.group_add(
                generation.group_name(self.conversation.pk), self.channel_name
            )
            await self.send(
                text_data=render_to_string(
                    "conversations/_new_conversation_frame.html",
                    {"conversation": self.conversation},
                )
            )
        await self.start_answer(exchange, messages)

    def prepare(self, content: dict, text: str, client_id: str) -> tuple[Exchange, list] | str:
        """Validate and save, in one trip to the database thread: an error text, or the
        saved exchange with the messages to send upstream."""
        form = settings_form_for_message(
            content, self.conversation or Conversation(owner=self.user)
        )
        if not form.is_valid():
            return first_error(form)
        exchange = exchange_create(
            user=self.user,
            conversation=self.conversation,
            settings_values={name: form.cleaned_data[name] for name in form.Meta.fields},
            text=text,
            client_id=client_id,
        )
        if not exchange.created:
            return exchange, []
        return exchange, context.build_messages(
            conversation=exchange.conversation, answer=exchange.answer
        )

    async def start_answer(self, exchange: Exchange, messages: list[dict]) -> None:
        conversation, answer = exchange.conversation, exchange.answer
        self.offsets[answer.pk] = 0
        html = render_to_string(
            "conversations/_append_frame.html", {"messages": [exchange.question, answer]}
        )
        await generation.publish(conversation.pk, {"type": "chat.html", "html": html})
        generation.generation_start(
            conversation_id=conversation.pk,
            answer=answer,
            messages=messages,
            params=kimi.sampling_params(conversation),
        )

    async def sync(self, streaming: dict) -> None:
        """After (re)connecting, bring the page's streaming answers up to date."""
        for key, shown in list(streaming.items())[:MAX_SYNC_MESSAGES]:
            try:
                message_id, shown = int(key), int(shown)
            except (TypeError, ValueError):
                continue
            running = generation.running(self.conversation.pk) if self.conversation else None
            if running and running.answer.pk == message_id:
                text = running.published_text()
                self.offsets[message_id] = len(text)
                await self.send_tokens(message_id, text[shown:])
                continue
            message = await self.conversation_message(message_id)
            if message is None:
                continue
            if message.is_streaming:
                # Streaming in another process: show what it has saved, the rest follows live.
                if len(message.content) > shown:
                    self.offsets[message_id] = len(message.content)
                    await self.send_tokens(message_id, message.content[shown:])
            else:
                await self.send(
                    text_data=render_to_string(
                        "conversations/_message_frame.html", {"message": message}
                    )
                )

    async def conversation_message(self, message_id: int) -> Message | None:
        if self.conversation is None:
            return None
        return await Message.objects.filter(conversation=self.conversation, pk=message_id).afirst()

    async def composer_error(self, error: str) -> None:
        await self.send(
            text_data=render_to_string("conversations/_composer_error.html", {"error": error})
        )

    async def send_tokens(self, message_id: int, text: str) -> None:
        if text:
            html = get_template("conversations/_tokens.html").render(
                {"message_id": message_id, "text": text}
            )
            await self.send(text_data=html)

    # Channel-layer events published by generations and by other sockets.

    async def dispatch(self, message: dict) -> None:
        if message["type"] in RELAY_EVENTS:
            # Channels closes stale database connections before every event, a trip to the
            # database thread each time. Relay events (one per frame per socket, the hot path)
            # touch no database, so they skip it.
            await RELAY_EVENTS[message["type"]](self, message)
        else:
            await super().dispatch(message)

    async def chat_tokens(self, event: dict) -> None:
        message_id, start, text = event["message_id"], event["start"], event["text"]
        known = self.offsets.get(message_id)
        if known is not None and start < known:
            # Part of this frame is already on the page (sent by sync): send only the rest.
            text = text[known - start :]
            start = known
        self.offsets[message_id] = start + len(text)
        await self.send_tokens(message_id, text)

    async def chat_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])


RELAY_EVENTS = {"chat.tokens": ChatConsumer.chat_tokens, "chat.html": ChatConsumer.chat_html}
