from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

import kimi
from conversations.parts import PARTS
from kimichat.names import printable

TITLE_LENGTH = 80


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user) -> "ConversationQuerySet":
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)

    def shared_with(self, user) -> "ConversationQuerySet":
        """Conversations shared with a team `user` belongs to (not removed by a moderator)."""
        if not user.is_authenticated:
            return self.none()
        return self.visible().filter(team__memberships__user=user)

    def visible(self) -> "ConversationQuerySet":
        """Not removed by a moderator."""
        return self.filter(hidden_at=None)

    def in_list(self, *, archived: bool = False) -> "ConversationQuerySet":
        """The list's conversations, newest first: not archived and not pinned (pinned ones
        head it, `pinned()`), or the archived ones."""
        if archived:
            return self.exclude(archived_at=None)
        return self.filter(archived_at=None, pinned_at=None)

    def pinned(self) -> "ConversationQuerySet":
        return self.filter(archived_at=None).exclude(pinned_at=None).order_by("-pinned_at")

    def listed_after(self, updated_at: datetime, pk: int) -> "ConversationQuerySet":
        """The conversations after this one in the list (newest first): the list's next page."""
        return self.filter(Q(updated_at__lt=updated_at) | Q(updated_at=updated_at, pk__lt=pk))

    def search(self, query: str) -> "ConversationQuerySet":
        """Conversations with every word of `query` in their title or in a message, each with
        `found`: the text of a message that has the first word (for a snippet)."""
        words = query.split()
        if not words:
            return self
        conversations = self
        for word in words:
            in_messages = Message.objects.filter(
                conversation=OuterRef("pk"), content__icontains=word
            )
            conversations = conversations.filter(Q(title__icontains=word) | Exists(in_messages))
        first = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=words[0])
        return conversations.annotate(found=Subquery(first.order_by("id").values("content")[:1]))


class Effort(models.TextChoices):
    """kimi-k3's `reasoning_effort`, as the Effort control offers it."""

    LOW = "low", _("Low")
    HIGH = "high", _("High")
    MAX = "max", _("Max")


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        related_name="conversations",
        verbose_name=_("owner"),
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    # Set by "Rename": the automatic title never overwrites a name the user chose.
    title_is_custom = models.BooleanField(default=False)
    model = models.CharField(_("model"), max_length=100)
    system_prompt = models.TextField(_("system prompt"), blank=True)
    # None means "the model's own default" (some Kimi models refuse changes to these).
    temperature = models.FloatField(_("temperature"), null=True, blank=True)
    top_p = models.FloatField(_("top p"), null=True, blank=True)
    max_tokens = models.PositiveIntegerField(_("max tokens"), null=True, blank=True)
    stop = models.JSONField(_("stop sequences"), default=list, blank=True)
    # Kimi's own features, switched in the composer: thinking (for models that may think or
    # not) and its built-in web search.
    thinking = models.BooleanField(_("thinking"), default=True)
    web_search = models.BooleanField(_("web search"), default=False)
    # How hard a model that takes it (kimi-k3) reasons: Kimi's default is its most.
    reasoning_effort = models.CharField(
        _("effort"), max_length=8, choices=Effort.choices, default=Effort.MAX
    )
    # The last message of the versions shown; the thread is the path up from it.
    leaf = models.ForeignKey("Message", models.SET_NULL, null=True, blank=True, related_name="+")
    # Set when a moderator removes it: the owner sees a notice instead of the text, and it
    # can no longer be continued (nor sent to Kimi).
    hidden_at = models.DateTimeField(_("hidden at"), null=True, blank=True)
    # Shared with this team: its members may read it and continue in a copy of their own.
    team = models.ForeignKey(
        "teams.Team",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("shared with"),
    )
    # The conversation this is a copy of ("Continue in my own copy"): hiding that one hides
    # this one too (moderation/services.py).
    copied_from = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="copies", editable=False
    )
    # Made by a call to the OpenAI-compatible API (API_KEEP_CONVERSATIONS), not on the page.
    from_api = models.BooleanField(_("from the API"), default=False)
    # The owner's own order: pinned ones head the list; archived ones leave it for the
    # Archived view (and are no longer pinned).
    pinned_at = models.DateTimeField(_("pinned at"), null=True, blank=True)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ConversationQuerySet.as_manager()
    snippet: str  # in search results: where the first word was found (snippet_for)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        permissions = [
            ("read_transcript", "Can read conversation transcripts"),
            ("hide_conversation", "Can hide and unhide conversations"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"

    # The chat page's socket (conversations/routing.py); a new chat's until its first message.
    NEW_WS_URL = "/ws/conversations/new/"

    def get_absolute_url(self) -> str:
        return reverse("chat", args=[self.pk])

    @property
    def searches_web(self) -> bool:
        """Whether its answers may search the web and read pages ("Web search" on, and the
        server allows it)."""
        return self.web_search and settings.KIMI_WEB_SEARCH

    @property
    def ws_url(self) -> str:
        return f"/ws/conversations/{self.pk}/" if self.pk else self.NEW_WS_URL

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None

    @property
    def display_title(self) -> str:
        # A removed conversation's title is its owner's text too: not shown.
        if self.is_hidden:
            return gettext("Removed by a moderator")
        return self.title or gettext("Untitled chat")

    def thread(self) -> "Thread":
        """The messages shown, following the chosen version of each: one query, ids only."""
        rows = self.messages.order_by("id").values_list("id", "parent_id", "client_id")
        parents: dict[int, int | None] = {pk: parent for pk, parent, _ in rows}
        children: dict[int | None, list[int]] = {}
        for message_id, parent_id in parents.items():
            children.setdefault(parent_id, []).append(message_id)
        leaf = self.leaf_id if self.leaf_id in parents else max(parents, default=None)
        path = []
        while leaf is not None:
            path.append(leaf)
            leaf = parents[leaf]
        sent = {client_id for _, _, client_id in rows if client_id}
        return Thread(self, path[::-1], parents, children, sent)

    def snippet_for(self, query: str, width: int = 90) -> str:
        """Where the first word of a search was found in a message (after `search()`)."""
        found, words = getattr(self, "found", None), query.split()
        if not found or not words or words[0].lower() in self.title.lower():
            return ""
        at = max(found.lower().find(words[0].lower()), 0)
        start = max(at - width // 3, 0)
        text = " ".join(found[start : start + width].split())
        return ("…" if start else "") + text + ("…" if start + width < len(found) else "")

    @staticmethod
    def title_from(text: str) -> str:
        """A title made from other text (a first message, Kimi's title, an API call's),
        without control characters (kimichat/names.py)."""
        first_line = printable(" ".join(text.split()))
        if len(first_line) <= TITLE_LENGTH:
            return first_line
        return first_line[: TITLE_LENGTH - 1].rstrip() + "…"


@dataclass
class Thread:
    conversation: Conversation
    ids: list[int]  # the path shown, oldest first
    parents: dict[int, int | None] = field(default_factory=dict)
    children: dict[int | None, list[int]] = field(default_factory=dict)
    client_ids: set[str] = field(default_factory=set)  # of the sends taken (a replay's is here)

    def page(self, before: int | None = None, size: int = 50) -> tuple[list["Message"], bool]:
        """The newest `size` messages of the path (before a message id), oldest first, each
        with its `versions`, and whether older ones exist."""
        ids = self.ids
        if before is not None:
            ids = [i for i in ids if i < before]
        shown = ids[-size:]
        messages = list(
            Message.objects.filter(id__in=shown).order_by("id").prefetch_related("files")
        )
        stale = stale_before()
        for message in messages:
            message.versions = self.versions(message)
            if message.is_streaming and message.updated_at < stale:
                # Left streaming by a process that died: shown as interrupted. Reading never
                # writes; `manage.py repair` and the page's socket save it so.
                message.state = Message.State.INTERRUPTED
        return messages, len(ids) > size

    def versions(self, message: "Message") -> "Versions | None":
        return Versions.among(message.pk, self.children.get(message.parent_id, []))

    def latest_leaf(self, message_id: int) -> int:
        """Where a version leads: its newest reply, that reply's newest reply, and so on."""
        while self.children.get(message_id):
            message_id = self.children[message_id][-1]
        return message_id

    def ancestors(self, message_id: int) -> list[int]:
        """The ids before a message on its own path, oldest first."""
        path = []
        parent = self.parents.get(message_id)
        while parent is not None:
            path.append(parent)
            parent = self.parents.get(parent)
        return path[::-1]


@dataclass
class Versions:
    """Where a message stands among its versions (its siblings), as in "< 2/3 >"."""

    number: int
    count: int
    previous: int | None
    next: int | None

    @classmethod
    def among(cls, message_id: int, siblings: list[int]) -> "Versions | None":
        if len(siblings) < 2:
            return None
        index = siblings.index(message_id)
        return cls(
            number=index + 1,
            count=len(siblings),
            previous=siblings[index - 1] if index else None,
            next=siblings[index + 1] if index + 1 < len(siblings) else None,
        )


def stale_before() -> datetime:
    """A live generation saves at least every few seconds and gives up after the stream
    timeout (plus its retries), so an answer untouched for longer belongs to no process."""
    return timezone.now() - timedelta(seconds=settings.KIMI_STREAM_TIMEOUT + 30)


def lease_until() -> datetime:
    """When a lease taken or renewed now lapses (conversations/resume.py)."""
    return timezone.now() + timedelta(seconds=settings.ANSWER_LEASE)


def live_answers() -> Q:
    """Answers being generated right now, in any process: their writer's lease holds (rows
    from before leases: touched lately). One whose writer died is not live, so it never holds
    up a new message; it is taken over within seconds of its lease lapsing."""
    leased = Q(lease_expires__gt=timezone.now())
    unleased = Q(lease_expires__isnull=True, updated_at__gte=stale_before())
    return Q(state=Message.State.STREAMING) & (leased | unleased)


def answers_counted() -> tuple[str, dict[str, Any]]:
    """A user's chat answers, as the admission rule counts them (accounts/admission.py): being
    written (`live_answers`, in SQL), in the conversation asked in, and asked for in the last
    minute. Answers of API calls kept as conversations count once, as calls (api/models.py)."""
    live = (
        "m.state = %(chat_streaming)s AND (m.lease_expires > %(now)s OR "
        "(m.lease_expires IS NULL AND m.updated_at >= %(chat_stale)s))"
    )
    recent = "m.role = %(chat_assistant)s AND m.created_at >= %(minute_ago)s"
    sql = f"""
        SELECT COUNT(CASE WHEN {live} THEN 1 END) AS live,
            COUNT(CASE WHEN {live} AND m.conversation_id = %(conversation)s THEN 1 END) AS here,
            COUNT(CASE WHEN {recent} THEN 1 END) AS recent
        FROM {_table(Message)} m
        JOIN {_table(Conversation)} c ON c.id = m.conversation_id
        WHERE c.owner_id = %(user)s AND NOT c.from_api AND (({live}) OR ({recent}))
    """
    params = {
        "chat_stale": connection.ops.adapt_datetimefield_value(stale_before()),
        "chat_streaming": Message.State.STREAMING.value,
        "chat_assistant": Message.Role.ASSISTANT.value,
    }
    return sql, params


def lapsed_answers() -> Q:
    """Answers left streaming whose writer stopped renewing its lease: to take over."""
    lapsed = Q(lease_expires__lte=timezone.now())
    unleased = Q(lease_expires__isnull=True, updated_at__lt=stale_before())
    return Q(state=Message.State.STREAMING) & (lapsed | unleased)


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


class MessageQuerySet(models.QuerySet):
    def mark_interrupted(self, everything: bool = False) -> int:
        """Fix answers left `streaming` by a process that died: stale ones, or every one
        (at the start of the only process there is)."""
        messages = self.filter(state=Message.State.STREAMING)
        if not everything:
            messages = messages.filter(updated_at__lt=stale_before())
        return messages.update(state=Message.State.INTERRUPTED, updated_at=timezone.now())

    def live(self) -> "MessageQuerySet":
        return self.filter(live_answers())

    def progress_save(self, answer_id: int, *, owner: str, texts: dict[str, str]) -> bool:
        """Save the text of an answer being written by `owner` (the process holding its
        lease), each part's by its field (conversations/parts.py): whether it still was. In
        SQL, as `answers_counted` below: every answer saves about once a second, and the
        ORM's UPDATE cost five times the statement."""
        fields = [part.field for part in PARTS]
        quote = connection.ops.quote_name
        sql = (
            f"UPDATE {_table(Message)} SET "
            + "".join(f"{quote(name)} = %s, " for name in fields)
            + "updated_at = %s WHERE id = %s AND lease_owner = %s"
        )
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(sql, [*(texts[name] for name in fields), now, answer_id, owner])
            return cursor.rowcount > 0

    def of_user(self, user) -> "MessageQuerySet":
        return self.filter(conversation__owner=user)

    def for_context(self) -> "MessageQuerySet":
        """Turns that make sense to send back to Kimi as history."""
        return self.exclude(content="").exclude(state=Message.State.ERROR)


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("user")
        ASSISTANT = "assistant", _("assistant")

    class State(models.TextChoices):
        STREAMING = "streaming", _("streaming")
        DONE = "done", _("done")
        STOPPED = "stopped", _("stopped")
        ERROR = "error", _("error")
        INTERRUPTED = "interrupted", _("interrupted")

    conversation = models.ForeignKey(Conversation, models.CASCADE, related_name="messages")
    # The message this one answers or follows; siblings (same parent) are versions.
    parent = models.ForeignKey(
        "self", models.CASCADE, null=True, blank=True, related_name="children"
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    # What Kimi thought before answering (thinking models); never sent back to Kimi. The
    # parts of an answer that stream, and their fields, are declared in conversations/parts.py.
    thinking = models.TextField(blank=True)
    # How long it thought: set when the answer began after thinking.
    thinking_seconds = models.FloatField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DONE)
    model = models.CharField(max_length=100, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Prompt tokens Kimi served from its context cache (cheaper).
    cached_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Web searches Kimi ran for this answer (each billed by Kimi).
    searches = models.PositiveSmallIntegerField(default=0)
    # The effort it was asked to reason with (models that take one), shown on the answer.
    reasoning_effort = models.CharField(max_length=8, blank=True)
    # The conversation's model, retired, that this answer replaced with the default: said
    # once in the thread, on this answer.
    replaced_model = models.CharField(max_length=100, blank=True)
    # What Kimi's tools did for it, in order: {"kind": "search" | "read", "text": query or
    # address} (kimi/tools.py), listed under the finished answer; as shown while they ran
    # (a part of the answer: conversations/parts.py), a line each.
    steps = models.JSONField(default=list, blank=True)
    tool_steps = models.TextField(blank=True)
    # What went wrong, as one of kimi.ERRORS' codes (shown in the reader's language),
    # plus Kimi's own words where they help.
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    # How many of the oldest messages were left out to fit the model's context window.
    context_trimmed = models.PositiveIntegerField(default=0)
    # The files this message refers to (`@name`, or attached); they stay in the
    # conversation's context for the questions that follow.
    files = models.ManyToManyField("uploads.UploadedFile", blank=True, related_name="messages")
    # [id, name] of each file it referred to, in order, as sent: a file deleted since is
    # still named on the message (struck through).
    file_names = models.JSONField(default=list, blank=True)
    # On an answer from passages of documents too long to send whole: where they came from
    # ({"file", "name", "locator", "page"}), shown as links under the answer.
    sources = models.JSONField(default=list, blank=True)
    # Set by the browser for each send, so a replayed send is taken once.
    client_id = models.CharField(max_length=64, blank=True)
    # While it streams: the process writing it (realtime.lifecycle.PROCESS, emptied when it
    # handed the answer over cleanly), until when (renewed every few seconds), and how many
    # times another process took it over (conversations/resume.py).
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    resumes = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MessageQuerySet.as_manager()
    versions: "Versions | None"  # where it stands among its versions, set where it is shown

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["conversation", "id"]),
            # Per-user limits count recent answers and live ones.
            models.Index(fields=["created_at"]),
            models.Index(
                fields=["conversation"],
                condition=Q(state="streaming"),
                name="streaming_messages",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~Q(client_id=""),
                name="unique_client_id_per_conversation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}"

    @property
    def searched_queries(self) -> list[str]:
        return [step["text"] for step in self.steps if step.get("kind") == "search"]

    @property
    def library_queries(self) -> list[str]:
        """What Kimi searched the conversation's documents for (search_library)."""
        return [step["text"] for step in self.steps if step.get("kind") == "library"]

    @property
    def pages_read(self) -> list[str]:
        """The pages Kimi read for it (web addresses only), each once."""
        urls = [step["text"] for step in self.steps if step.get("kind") == "read"]
        return list(dict.fromkeys(u for u in urls if u.startswith(("https://", "http://"))))

    @property
    def effort_label(self) -> str:
        """The effort it was asked for, in the reader's language."""
        return str(Effort(self.reasoning_effort).label) if self.reasoning_effort else ""

    @property
    def dom_id(self) -> str:
        return f"msg-{self.pk}"

    @property
    def files_in_order(self) -> list:
        """The files it refers to, in the order they were uploaded (as attached); from the
        prefetched files where the thread has them."""
        return sorted(self.files.all(), key=lambda file: (file.created_at, file.pk))

    @property
    def file_chips(self) -> list[tuple[Any, str]]:
        """(file, name) for each file it referred to, in the order sent; the file is None
        where it was deleted since."""
        live = {file.pk: file for file in self.files_in_order}
        chips = [(live.pop(pk, None), name) for pk, name in self.file_names]
        return chips + [(file, file.name) for file in live.values()]

    @property
    def is_streaming(self) -> bool:
        return self.state == self.State.STREAMING

    # Failures that broke an answer off partway (a stalled or dropped stream, Kimi's own
    # error): the words so far are kept, and Kimi can go on from them.
    BROKEN_OFF = ("cut_off", "timeout", "connection", "server")

    @property
    def can_continue(self) -> bool:
        """An answer Kimi can go on with: cut off by its max tokens or a broken stream,
        stopped, or interrupted, with words to go on from."""
        if self.role != self.Role.ASSISTANT or not self.content:
            return False
        if self.state in (self.State.STOPPED, self.State.INTERRUPTED):
            return True
        if self.state == self.State.ERROR:
            return self.error_code in self.BROKEN_OFF
        return self.state == self.State.DONE and self.finish_reason == "length"

    def sibling_versions(self) -> Versions | None:
        siblings = Message.objects.filter(
            conversation_id=self.conversation_id, parent_id=self.parent_id
        ).order_by("id")
        return Versions.among(self.pk, list(siblings.values_list("id", flat=True)))

    @property
    def error_text(self) -> str:
        return kimi.error_text(self.error_code, self.error)
