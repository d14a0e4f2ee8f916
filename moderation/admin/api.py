"""Personal API keys (list, revoke) and the calls made with them: the API's use by key."""

from django.contrib import admin
from django.db.models import F, Sum
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api import services
from api.forms import ApiKeyLimitsForm
from api.models import ApiCall, ApiKey
from moderation.admin.records import ReadOnlyAdmin


class ActiveFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("Active")), ("revoked", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at=None)
        if self.value() == "revoked":
            return queryset.exclude(revoked_at=None)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "token_budget",
        "revoked_at",
    ]
    list_filter = [ActiveFilter, "created_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke"]
    # A key is made by its owner and revoked by an action; a moderator bounds it (expiry,
    # models, budget, requests a minute) and edits nothing else.
    form = ApiKeyLimitsForm
    fields = [
        "user",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "expires_at",
        "allowed_models",
        "token_budget",
        "budget_period",
        "requests_per_minute",
    ]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("api.change_apikey")

    @admin.action(description=_("Revoke selected API keys"), permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset) -> None:
        count = services.keys_revoke(keys=queryset)
        done = ngettext("%(count)s API key revoked.", "%(count)s API keys revoked.", count)
        self.message_user(request, done % {"count": count})


@admin.register(ApiCall)
class ApiCallAdmin(ReadOnlyAdmin):
    # Few enough columns to fit beside the admin's menu at 1280 px: the tokens in one, the
    # end of the call on its own page, the key's name free to wrap (the admin keeps a foreign
    # key's column on one line).
    list_display = ["started_at", "user", "key_name", "model", "stream", "status", "tokens"]
    list_filter = ["key", "model", "status", "stream", "started_at"]
    list_select_related = ["user", "key"]
    search_fields = ["user__username", "key__name", "key__prefix"]
    date_hierarchy = "started_at"
    change_list_template = "admin/api/apicall/change_list.html"

    @admin.display(description=_("API key"), ordering="key__name")
    def key_name(self, obj: ApiCall) -> str:
        return str(obj.key) if obj.key else "-"

    @admin.display(description=_("tokens"), ordering=F("prompt_tokens") + F("completion_tokens"))
    def tokens(self, obj: ApiCall) -> str:
        text = _("%(prompt)s + %(completion)s tokens")
        numbers = {"prompt": obj.prompt_tokens, "completion": obj.completion_tokens}
        if obj.cached_tokens:
            text = _("%(prompt)s + %(completion)s tokens (%(cached)s cached)")
            numbers["cached"] = obj.cached_tokens
        return text % numbers

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if hasattr(response, "context_data") and "cl" in response.context_data:
            # The sums of what is listed (filters applied), above the rows.
            response.context_data["totals"] = response.context_data["cl"].queryset.aggregate(
                prompt=Sum("prompt_tokens"),
                completion=Sum("completion_tokens"),
                total=Sum(F("prompt_tokens") + F("completion_tokens")),
            )
        return response
