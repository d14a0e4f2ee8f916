import logging
from collections.abc import Sequence
from typing import Any

import openai
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.db.models import F, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

import kimi
from accounts import spend
from accounts.models import TokenQuota, Usage
from moderation import services
from moderation.forms import ModerationActionForm, action_reason
from moderation.models import ModerationAction, Report
from moderation.transcripts import can_read_transcripts

log = logging.getLogger(__name__)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record to read, never to edit by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# The report's page: what the moderator sets, then what was reported.
REPORT_FIELDS = [
    "status",
    "resolution",
    "reporter",
    "reason",
    "created_at",
    "reported_message",
    "where",
    "resolved_by",
    "resolved_at",
]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "reporter", "role", "excerpt", "short_reason", "status", "where"]
    list_filter = ["status", "message__role", "created_at"]
    list_select_related = ["reporter", "message"]
    search_fields = ["reason", "message__content", "reporter__username"]
    actions = ["resolve", "reopen"]
    action_form = ModerationActionForm
    fields = [*REPORT_FIELDS]
    readonly_fields = REPORT_FIELDS[2:]

    class Media:
        css = {"all": ["css/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("role"), ordering="message__role")
    def role(self, obj: Report) -> str:
        return obj.message.get_role_display()

    @admin.display(description=_("message"))
    def excerpt(self, obj: Report) -> str:
        return Truncator(obj.message.content).chars(80)

    @admin.display(description=_("reason"))
    def short_reason(self, obj: Report) -> str:
        return Truncator(obj.reason).chars(80)

    @admin.display(description=_("message reported"))
    def reported_message(self, obj: Report) -> str:
        # Shown even where transcripts are off: a report is about this one message.
        return format_html('<div class="reported-message">{}</div>', obj.message.content)

    @admin.display(description=_("in its conversation"))
    def where(self, obj: Report) -> str:
        url = reverse("admin:conversations_conversation_change", args=[obj.message.conversation_id])
        return format_html(
            '<a href="{}#msg-{}">{}</a>', url, obj.message_id, _("Open in the transcript")
        )

    def _shown(self, request: HttpRequest, names: Sequence[Any]) -> list[Any]:
        # The link into the transcript, only for those who may read transcripts.
        readable = can_read_transcripts(request.user)
        return [name for name in names if readable or name != "where"]

    def get_list_display(self, request: HttpRequest):
        return self._shown(request, self.list_display)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self._shown(request, self.readonly_fields)

    def get_fields(self, request: HttpRequest, obj=None):
        return self._shown(request, self.fields)

    def save_model(self, request: HttpRequest, obj: Report, form, change: bool) -> None:
        """Resolving (or reopening) here is the same action as in the list, logged."""
        reports = Report.objects.filter(pk=obj.pk)
        if "status" in form.changed_data and obj.status == Report.Status.RESOLVED:
            services.reports_resolve(actor=request.user, reports=reports, note=obj.resolution)
        elif "status" in form.changed_data:
            services.reports_reopen(actor=request.user, reports=reports)
        else:
            reports.update(resolution=obj.resolution)

    @admin.action(description=_("Resolve selected reports (the reason is the note)"))
    def resolve(self, request: HttpRequest, queryset) -> None:
        note = action_reason(request)
        count = services.reports_resolve(actor=request.user, reports=queryset, note=note)
        done = ngettext("%(count)s report resolved.", "%(count)s reports resolved.", count)
        self.message_user(request, done % {"count": count})

    @admin.action(description=_("Reopen selected reports"))
    def reopen(self, request: HttpRequest, queryset) -> None:
        reason = action_reason(request)
        count = services.reports_reopen(actor=request.user, reports=queryset, reason=reason)
        done = ngettext("%(count)s report reopened.", "%(count)s reports reopened.", count)
        self.message_user(request, done % {"count": count})


@admin.register(ModerationAction)
class ModerationActionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "kind", "target_type", "target", "reason"]
    list_filter = ["kind", "target_type", "created_at"]
    list_select_related = ["actor"]
    search_fields = ["target", "reason", "actor__username"]
    date_hierarchy = "created_at"


@admin.register(Usage)
class UsageAdmin(ReadOnlyAdmin):
    list_display = [
        "day",
        "user",
        "model",
        "messages",
        "prompt",
        "cached",
        "completion",
        "total",
        "searches",
    ]
    list_filter = ["day", "model"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    date_hierarchy = "day"

    class Media:
        # Nine columns beside the filters: their headings wrap so Total stays on screen.
        css = {"all": ["css/admin.css"]}

    # Short headings (the sums above the table say "tokens"): with the filters beside it,
    # the table fits a 1280 px screen, Total included.
    @admin.display(description=_("prompt"), ordering="prompt_tokens")
    def prompt(self, obj: Usage) -> int:
        return obj.prompt_tokens

    @admin.display(description=_("cached"), ordering="cached_tokens")
    def cached(self, obj: Usage) -> int:
        return obj.cached_tokens

    @admin.display(description=_("completion"), ordering="completion_tokens")
    def completion(self, obj: Usage) -> int:
        return obj.completion_tokens

    @admin.display(description=_("total"))
    def total(self, obj: Usage) -> int:
        return obj.total_tokens

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if hasattr(response, "context_data") and "cl" in response.context_data:
            # The sums of what is listed (filters applied), above the rows.
            response.context_data["totals"] = response.context_data["cl"].queryset.aggregate(
                messages=Sum("messages"),
                prompt=Sum("prompt_tokens"),
                completion=Sum("completion_tokens"),
                total=Sum(F("prompt_tokens") + F("completion_tokens")),
            )
            response.context_data["kimi_balance"] = kimi_balance()
            # Per model (filters applied): cache share and estimated cost; the chart shows
            # the last 30 days of the rows listed.
            listed = response.context_data["cl"].queryset
            response.context_data["per_model"] = spend.by_model(listed)
            response.context_data["chart"] = spend.chart(listed, timezone.localdate())
        return response

    change_list_template = "admin/moderation/usage/change_list.html"


def kimi_balance() -> dict[str, Any] | None:
    """The Kimi account's balance, asked as the page opens (for at most kimi.BALANCE_TIMEOUT
    seconds): {"balance": …} or {"error": why not}; None where no key is configured."""
    if not kimi.is_configured():
        return None
    error: str
    try:
        return {"balance": async_to_sync(kimi.balance)()}
    except (openai.APIConnectionError, TimeoutError):
        error = str(_("Kimi could not be reached."))
    except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
        error = kimi.error_text(kimi.error_code(e)[0])  # the key's trouble: the admin's to fix
    except openai.APIStatusError as e:
        # Not the chat's texts ("Pick another model" for a 404): only the status is known.
        error = _("Kimi answered with status %(status)s.") % {"status": e.status_code}
    except (openai.APIError, ValueError):
        error = str(_("Kimi's answer could not be read."))
    log.warning("Kimi's balance could not be read: %s", error)
    return {"error": error}


@admin.register(TokenQuota)
class TokenQuotaAdmin(admin.ModelAdmin):
    list_display = ["user", "daily_tokens", "used_today", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]  # found by name, not by number

    @admin.display(description=_("tokens used today"))
    def used_today(self, obj: TokenQuota) -> int:
        today = Usage.objects.filter(user_id=obj.user_id, day=timezone.localdate())
        return today.aggregate(t=Sum(F("prompt_tokens") + F("completion_tokens")))["t"] or 0

    def save_model(self, request: HttpRequest, obj: TokenQuota, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        reason = _("%(tokens)s tokens a day") % {"tokens": f"{obj.daily_tokens:,}"}
        services.action_log(
            actor=request.user, kind=ModerationAction.Kind.QUOTA, target=obj.user, reason=reason
        )
