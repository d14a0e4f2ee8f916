"""The chat page's websocket: takes messages, Stop, Regenerate, Edit and version switches, and
relays a conversation's frames."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import HttpRequest
from django.template.loader import get_template, render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from conversations import context, generation, services
from conversations.forms import MAX_MESSAGE_CHARS, first_error, settings_form_for_message
from conversations.models import Conversation, Message, stale_before
from conversations.services import Exchange, Refused
from kimichat import kimi
from moderation.services import user_group
from uploads import references
from uploads.consumers import FileStatusMixin
from uploads.models import UploadedFile
from uploads.services import files_group

CLOSE_UNAUTHENTICATED = 4401
CLOSE_SUSPENDED = 4403
CLOSE_NOT_FOUND = 4404
MAX_SYNC_MESSAGES = 10
THREAD_ACTIONS = {"regenerate", "edit", "select"}


def scope_language(scope: dict) -> str:
    """The page's language, chosen as Django chooses it for a request (cookie, then
    Accept-Language), so frames speak the language of the page they land in."""
    request = HttpRequest()
    request.COOKIES = scope.get("cookies", {})
    headers = dict(scope.get("headers", []))
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get(b"accept-language", b"").decode("latin-1")
    return translation.get_language_from_request(request)


class ChatConsumer(FileStatusMixin, AsyncJsonWebsocketConsumer):
    conversation: Conversation | None = None

    async def connect(self) -> None:
        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            await self.close(CLOSE_UNAUTHENTICATED)
            return
        self.language = scope_language(self.scope)
        # How much of each streaming answer this socket's page already shows.
        self.offsets: dict[int, int] = {}
        # Answers whose missed text was asked of their generation and has not come yet.
        self.resend_asked: set[int] = set()
        conversation_id = self.scope["url_route"]["kwargs"].get("conversation_id")
        if conversation_id is not None:
            self.conversation = await (
                Conversation.objects.for_user(self.user).filter(pk=conversation_id).afirst()
            )
            if self.conversation is None or self.conversation.is_hidden:
                await self.close(CLOSE_NOT_FOUND)
                return
            await self.channel_layer.group_add(
                generation.group_name(self.conversation.pk), self.channel_name
            )
        # Files attached or referred to here show their status as it changes; a suspension
        # closes the socket.
        for group in (files_group(self.user.pk), user_group(self.user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if not self.user.is_authenticated:
            return
        for group in (files_group(self.user.pk), user_group(self.user.pk)):
            await self.channel_layer.group_discard(group, self.channel_name)
        # The generation goes on without us: it belongs to the conversation, not the socket.
        if self.conversation is not None:
            await self.channel_layer.group_discard(
                generation.group_name(self.conversation.pk), self.channel_name
            )

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            return
        with translation.override(self.language):
            action = content.get("action", "send")
            if action == "send":
                await self.take_message(content)
            elif action in THREAD_ACTIONS and self.conversation is not None:
                await self.change_thread(action, content)
            elif action == "stop" and self.conversation is not None:
                await self.stop()
            elif action == "sync" and isinstance(content.get("streaming"), dict):
                await self.sync(content["streaming"])
            elif action == "statuses":
                await self.send_statuses(_ids(content))

    async def take_message(self, content: dict) -> None:
        text = str(content.get("message", "")).strip()
        client_id = str(content.get("client_id", ""))[:64]
        if not text:
            return
        if len(text) > MAX_MESSAGE_CHARS:
            await self.composer_error(_("The message is too long (at most 100,000 characters)."))
            return
        prepared = await database_sync_to_async(self.prepare_send)(content, text, client_id)
        if isinstance(prepared, str):
            await self.composer_error(prepared)
            return
        exchange, request, waiting, html = prepared
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
        await self.start_answer(exchange, request, html, waiting)

    def prepare_send(
        self, content: dict, text: str, client_id: str
    ) -> tuple[Exchange, context.Request | None, list[UploadedFile], str] | str:
        """Validate, check and save, in one trip to the database thread: an error text, or
        the saved exchange with the request to send upstream (None while files it refers to
        are still being read: those come third) and the new messages' HTML."""
        conversation = self.fresh_conversation()
        if conversation is not None and client_id:
            replay = services.exchange_replayed(conversation=conversation, client_id=client_id)
            if replay:
                return replay, None, [], ""
        form = settings_form_for_message(content, conversation or Conversation(owner=self.user))
        if not form.is_valid():
            return first_error(form)
        thread = conversation.thread() if conversation else None
        leaf = thread.ids[-1] if thread and thread.ids else None
        try:
            files = references.resolve(user=self.user, text=text, attached=_ids(content))
            services.files_check(files=files, model=form.instance.model)
            services.generation_check(user=self.user, conversation=conversation)
            request = context.build(
                conversation=form.instance, thread=thread, until=leaf, question=text, files=files
            )
        except (Refused, context.TooLong, references.NotFound) as e:
            return str(e)
        waiting = [f for f in files if f.is_processing]
        exchange = services.exchange_create(
            user=self.user,
            conversation=conversation,
            settings_values={name: form.cleaned_data[name] for name in form.Meta.fields},
            text=text,
            client_id=client_id,
            parent_id=leaf,
            model=form.instance.model if waiting else request.model,
            context_trimmed=request.trimmed,
            files=files,
            sources=[] if waiting else request.sources,
        )
        html = render_to_string(
            "conversations/_append_frame.html", {"messages": [exchange.question, exchange.answer]}
        )
        return exchange, None if waiting else request, waiting, html

    def fresh_conversation(self) -> Conversation | None:
        # Another tab may have moved the thread on since this socket connected.
        if self.conversation is None:
            return None
        self.conversation = Conversation.objects.get(pk=self.conversation.pk)
        return self.conversation

    async def change_thread(self, action: str, content: dict) -> None:
        prepared = await database_sync_to_async(self.prepare_change)(action, content)
        if isinstance(prepared, str):
            await self.composer_error(prepared)
        elif prepared is not None:
            exchange, request, html, waiting = prepared
            if exchange is None:
                await generation.publish(self.conversation.pk, {"type": "chat.html", "html": html})
            else:
                await self.start_answer(exchange, request, html, waiting)

    def prepare_change(self, action: str, content: dict):
        """Regenerate an answer, resend an edited question, or show another version.

        Returns nothing for a request that no longer applies (a double click, a message gone),
        an error text, or the exchange and request to answer (none for a version switch) with
        the new thread's HTML."""
        try:
            message_id = int(content.get("message_id"))
        except (TypeError, ValueError):
            return None
        conversation = self.fresh_conversation()
        message = conversation.messages.filter(pk=message_id).first()
        if message is None or conversation.messages.live().exists():
            return None  # the buttons are hidden while an answer is written
        if action == "select":
            services.version_select(conversation=conversation, message=message)
            return None, None, self.thread_html(conversation), []
        if action == "regenerate" and message.role == Message.Role.ASSISTANT:
            question, text = message.parent, None
        elif action == "edit" and message.role == Message.Role.USER:
            question, text = message, str(content.get("message", "")).strip()
            client_id = str(content.get("client_id", ""))[:64]
            if not text or services.exchange_replayed(
                conversation=conversation, client_id=client_id
            ):
                return None
            if len(text) > MAX_MESSAGE_CHARS:
                return _("The message is too long (at most 100,000 characters).")
        else:
            return None
        if question is None:
            return None
        form = settings_form_for_message(content, conversation)
        if not form.is_valid():
            return first_error(form)
        form.save()
        thread = conversation.thread()
        try:
            if text is None:
                files = list(question.files.all())
                build = {"until": question.pk}
            else:
                # The edited question keeps the files attached to it, plus any it now names.
                attached = list(question.files.values_list("id", flat=True))
                files = references.resolve(user=self.user, text=text, attached=attached)
                build = {"until": question.parent_id, "question": text, "files": files}
            services.files_check(files=files, model=conversation.model)
            services.generation_check(user=self.user, conversation=conversation)
            request = context.build(conversation=conversation, thread=thread, **build)
        except (Refused, context.TooLong, references.NotFound) as e:
            return str(e)
        waiting = [f for f in files if f.is_processing]
        if text is None:
            exchange = services.answer_create(
                conversation=conversation,
                question=question,
                model=request.model,
                context_trimmed=request.trimmed,
                sources=request.sources,
            )
        else:
            exchange = services.exchange_create(
                user=self.user,
                conversation=conversation,
                settings_values={},
                text=text,
                client_id=client_id,
                parent_id=question.parent_id,
                model=conversation.model if waiting else request.model,
                context_trimmed=request.trimmed,
                files=files,
                sources=[] if waiting else request.sources,
            )
        return exchange, None if waiting else request, self.thread_html(conversation), waiting

    def thread_html(self, conversation: Conversation) -> str:
        messages, has_older = conversation.thread().page()
        return render_to_string(
            "conversations/_thread_frame.html",
            {"conversation": conversation, "messages": messages, "has_older": has_older},
        )

    async def start_answer(
        self,
        exchange: Exchange,
        request: context.Request | None,
        html: str,
        waiting: list[UploadedFile],
    ) -> None:
        """Publish the new messages and start the answer; with `waiting` files, the answer
        first waits for them to be read, then builds its request."""
        conversation, answer = exchange.conversation, exchange.answer
        self.offsets[answer.pk] = 0
        await generation.publish(conversation.pk, {"type": "chat.html", "html": html})
        question = exchange.question
        generation.generation_start(
            conversation_id=conversation.pk,
            answer=answer,
            messages=request.messages if request else [],
            waiting=waiting,
            user_id=self.user.pk,
            params=kimi.sampling_params(conversation),
            title_wanted=(
                settings.KIMI_AUTO_TITLE
                and question is not None
                and question.parent_id is None
                and not conversation.title_is_custom
            ),
        )

    async def stop(self) -> None:
        running = generation.running(self.conversation.pk)
        if running:
            running.stop()
        else:
            # Running in another process (or about to finish): its listener takes it.
            await generation.request_stop(self.conversation.pk)

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
                # Streaming in another process: it sends the missing text, then frames follow.
                self.offsets[message_id] = shown
                await self.ask_resend(message_id)
            else:
                await self.send(text_data=await database_sync_to_async(_final_frame)(message))

    async def conversation_message(self, message_id: int) -> Message | None:
        if self.conversation is None:
            return None
        messages = Message.objects.filter(conversation=self.conversation, pk=message_id)
        message = await messages.afirst()
        if message is not None and message.is_streaming and message.updated_at < stale_before():
            # Left streaming by a process that died: shown, and kept, as interrupted.
            await database_sync_to_async(messages.mark_interrupted)()
            message = await messages.afirst()
        return message

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

    async def ask_resend(self, message_id: int) -> None:
        if message_id not in self.resend_asked:
            self.resend_asked.add(message_id)
            await generation.request_resend(
                self.conversation.pk,
                message_id=message_id,
                start=self.offsets[message_id],
                reply_to=self.channel_name,
            )

    async def chat_tokens(self, event: dict) -> None:
        message_id, start, text = event["message_id"], event["start"], event["text"]
        known = self.offsets.get(message_id)
        if event.get("resend"):
            self.resend_asked.discard(message_id)
        if known is not None and start > known:
            # Text is missing before this frame (this socket joined between two saves, or
            # frames were dropped): the generation sends it from where the page is; frames
            # until then are part of that answer.
            await self.ask_resend(message_id)
            return
        if known is not None and start < known:
            # Part of this frame is already on the page (sent by sync): send only the rest.
            text = text[known - start :]
            start = known
        self.offsets[message_id] = start + len(text)
        await self.send_tokens(message_id, text)

    async def chat_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])

    async def conversation_hidden(self, event: dict) -> None:
        """A moderator removed the conversation shown: the page says so, the text goes."""
        with translation.override(self.language):
            html = render_to_string("conversations/_removed_frame.html")
        await self.send(text_data=html)
        await self.close(CLOSE_NOT_FOUND)

    async def account_suspended(self, event: dict) -> None:
        with translation.override(self.language):
            await self.composer_error(_("Your account is suspended."))
        await self.close(CLOSE_SUSPENDED)


def _ids(content: dict) -> list[int]:
    """The ids of the files attached in the composer."""
    files = content.get("files", [])
    files = files if isinstance(files, list) else [files]
    ids = []
    for value in files[:20]:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue
    return ids


def _final_frame(message: Message) -> str:
    message.versions = message.sibling_versions()
    return render_to_string("conversations/_message_frame.html", {"message": message})


RELAY_EVENTS = {"chat.tokens": ChatConsumer.chat_tokens, "chat.html": ChatConsumer.chat_html}
