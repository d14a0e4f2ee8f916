"""Conversations for moderators: found by owner, title or message text, read as a transcript,
hidden, shown again or deleted, each action kept in the moderation log."""

from typing import Any, TypedDict, cast

from django.conf import settings
from django.contrib import admin
from django.db.models import (
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import WithAnnotations

from conversations.models import Conversation, Message
from moderation import services
from moderation.forms import ModerationActionForm, action_reason
from moderation.models import Report
from moderation.transcripts import PrivateFieldsAdmin, can_read_transcripts


class Listed(TypedDict):
    """What the list's query adds to each conversation."""

    shown_title: str | None  # None for those who may not read titles
    message_count: int
    open_reports: int


def _count(queryset: QuerySet, field: str) -> Coalesce:
    counted = queryset.values(field).annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _open_reports() -> Exists:
    reports = Report.objects.filter(message__conversation=OuterRef("pk"), status="open")
    return Exists(reports)


class FlaggedFilter(admin.SimpleListFilter):
    title = _("flagged")
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", _("With open reports")), ("no", _("Without open reports"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(_open_reports())
        if self.value() == "no":
            return queryset.exclude(_open_reports())
        return queryset


class HiddenFilter(admin.SimpleListFilter):
    title = _("hidden")
    parameter_name = "hidden"

    def lookups(self, request, model_admin):
        return [("yes", _("Hidden")), ("no", _("Shown"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(hidden_at__isnull=self.value() == "no")
        return queryset


def untitled(conversations) -> list[Conversation]:
    """The conversations named by number only ("Conversation 12"): as those who may not read
    titles see them, and as the logs keep them (a log outlives what it names)."""
    conversations = list(conversations)
    for conversation in conversations:
        conversation.title = ""
    return conversations


@admin.register(Conversation)
class ConversationAdmin(PrivateFieldsAdmin):
    list_display = [
        "name",
        "owner",
        "model",
        "message_count",
        "open_reports",
        "is_hidden",
        "updated_at",
    ]
    list_filter = [FlaggedFilter, HiddenFilter, "from_api", "model", "team", "created_at"]
    list_select_related = ["owner"]
    date_hierarchy = "updated_at"
    search_fields = ["title"]  # and the owner, and message text: see get_search_results
    search_help_text = _("Owner, title or message text (all the words).")
    actions = ["hide", "unhide", "delete_selected"]
    action_form = ModerationActionForm
    change_form_template = "admin/conversations/conversation/change_form.html"
    view_on_site = False
    show_full_result_count = False
    private_fields = frozenset({"title", "stop", "system_prompt"})

    class Media:
        css = {"all": ["css/admin.css"]}

    def get_queryset(self, request: HttpRequest):
        reports = Report.objects.filter(message__conversation=OuterRef("pk"), status="open")
        messages = Message.objects.filter(conversation=OuterRef("pk"))
        # Titles are the owner's words too: only for those who may read transcripts.
        title = F("title") if can_read_transcripts(request.user) else Value(None, CharField())
        return (
            super()
            .get_queryset(request)
            .annotate(
                message_count=_count(messages, "conversation"),
                open_reports=_count(reports, "message__conversation"),
                shown_title=title,
            )
        )

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        """Every word in the owner's name, the title, or (for those who may read
        transcripts) a message."""
        readable = can_read_transcripts(request.user)
        for word in smart_split(search_term):
            if word[0] in "\"'" and word[0] == word[-1]:
                word = unescape_string_literal(word)
            found = Q(owner__username__icontains=word)
            if readable:
                # Titles are the owner's words too: searched only by those who may read them.
                in_messages = Message.objects.filter(
                    conversation=OuterRef("pk"), content__icontains=word
                )
                found |= Q(title__icontains=word) | Q(Exists(in_messages))
            queryset = queryset.filter(found)
        return queryset, False

    def get_fields(self, request: HttpRequest, obj=None) -> list[Any]:
        fields = ["owner", "model", "created_at", "updated_at", "hidden_at", "open_reports"]
        if can_read_transcripts(request.user):
            return ["title", *fields, "system_prompt", "transcript"]
        return [*fields, "transcript_closed"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Read-only for everyone: what moderators change goes through the actions.
        return False

    def has_hide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.hide_conversation")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_hide": self.has_hide_permission(request)}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        conversation = super().get_object(request, object_id, from_field)
        if conversation is not None and not can_read_transcripts(request.user):
            conversation.title = ""  # shown as "Conversation <id>" in the page's headings
        return conversation

    def action_checkbox(self, obj: "WithAnnotations[Conversation, Listed]") -> SafeString:
        # The checkbox's label names the row: by number for those who may not read titles.
        if obj.shown_title is None:
            obj.title = ""
        return super().action_checkbox(obj)

    def to_field_allowed(self, request: HttpRequest, to_field: str) -> bool:
        # The admin's autocomplete (/admin/autocomplete/?…&field_name=conversation) lists rows
        # by their titles: not to those who may not read titles.
        return can_read_transcripts(request.user) and super().to_field_allowed(request, to_field)

    def get_deleted_objects(self, objs, request: HttpRequest):
        """The delete confirmation's list, naming conversations by number for those who may
        not read titles."""
        if not can_read_transcripts(request.user):
            objs = untitled(objs)
        return super().get_deleted_objects(objs, request)

    def log_deletions(self, request: HttpRequest, queryset) -> Any:
        # The admin's log only iterates what it is given: a list does.
        return super().log_deletions(request, cast(QuerySet, untitled(queryset)))

    # Sorted by the title shown: for those who may not read titles, by nothing they could not
    # see (the annotation is empty for them).
    @admin.display(description=_("conversation"), ordering="shown_title")
    def name(self, obj: "WithAnnotations[Conversation, Listed]") -> str:
        if obj.shown_title is None:
            return gettext("Conversation %(id)s") % {"id": obj.pk}
        return obj.shown_title or gettext("Untitled chat")

    @admin.display(description=_("messages"), ordering="message_count")
    def message_count(self, obj: "WithAnnotations[Conversation, Listed]") -> int:
        return obj.message_count

    @admin.display(description=_("open reports"), ordering="open_reports")
    def open_reports(self, obj: "WithAnnotations[Conversation, Listed]") -> int:
        return obj.open_reports

    @admin.display(description=_("hidden"), boolean=True, ordering="hidden_at")
    def is_hidden(self, obj: Conversation) -> bool:
        return obj.is_hidden

    @admin.display(description=_("transcript"))
    def transcript(self, obj: Conversation) -> str:
        """Every message, versions included, oldest first."""
        messages = obj.messages.order_by("id").prefetch_related("files", "reports__reporter")
        ctx = {"messages": messages, "shown": set(obj.thread().ids)}
        return render_to_string("admin/conversations/transcript.html", ctx)

    @admin.display(description=_("transcript"))
    def transcript_closed(self, obj: Conversation) -> str:
        if not settings.MODERATION_TRANSCRIPTS:
            return gettext("Transcripts are turned off on this server (MODERATION_TRANSCRIPTS).")
        return gettext("Only moderators may read transcripts.")

    @admin.action(description=_("Hide selected conversations"), permissions=["hide"])
    def hide(self, request: HttpRequest, queryset) -> None:
        count = services.conversations_hide(
            actor=request.user, conversations=queryset, reason=action_reason(request)
        )
        done = ngettext("%(count)s conversation hidden.", "%(count)s conversations hidden.", count)
        self.message_user(request, done % {"count": count})

    @admin.action(description=_("Unhide selected conversations"), permissions=["hide"])
    def unhide(self, request: HttpRequest, queryset) -> None:
        count = services.conversations_unhide(
            actor=request.user, conversations=queryset, reason=action_reason(request)
        )
        done = ngettext(
            "%(count)s conversation shown again.", "%(count)s conversations shown again.", count
        )
        self.message_user(request, done % {"count": count})

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        services.conversations_delete(actor=request.user, conversations=queryset)

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        conversations = Conversation.objects.filter(pk=obj.pk)
        services.conversations_delete(actor=request.user, conversations=conversations)
