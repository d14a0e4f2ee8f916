from allauth.account.adapter import get_adapter
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Approval


class PendingFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("pending", _("Waiting")), ("approved", _("Approved")), ("all", _("All"))]

    def choices(self, changelist):
        # Waiting is what a moderator comes for: it is the default.
        for choice in super().choices(changelist):
            if choice["display"] == _("All") and choice["selected"]:
                continue
            yield choice

    def queryset(self, request, queryset):
        value = self.value() or "pending"
        if value == "pending":
            return queryset.pending()
        if value == "approved":
            return queryset.filter(approved_at__isnull=False)
        return queryset


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    """The queue of sign-ups waiting for a moderator (SIGNUP=approval)."""

    list_display = ["user", "email", "requested_at", "approved_at", "approved_by"]
    list_filter = [PendingFilter]
    search_fields = ["user__username", "user__email"]
    actions = ["approve"]
    list_select_related = ["user", "approved_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["user", "requested_at", "approved_at", "approved_by"]

    @admin.display(description=_("e-mail"), ordering="user__email")
    def email(self, obj: Approval) -> str:
        return obj.user.email

    @admin.action(description=_("Approve the selected sign-ups"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset) -> None:
        users = queryset.approve(actor=request.user)
        login_url = request.build_absolute_uri(reverse("login"))
        adapter = get_adapter(request)
        for user in users:
            adapter.send_approved_mail(user, login_url=login_url)
        self.message_user(
            request,
            ngettext("%d sign-up approved.", "%d sign-ups approved.", len(users)) % len(users),
            messages.SUCCESS,
        )
