"""Users, with the moderators' actions: suspend (cut off at once) and reactivate."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import F, OuterRef, Subquery, Sum
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Usage
from moderation import services
from moderation.forms import ModerationActionForm, action_reason
from realtime import live

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "is_staff", "suspended", "tokens_today", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    actions = ["suspend", "reactivate"]
    action_form = ModerationActionForm

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = ""):
        """A password set here ends every session of the user (Django no longer takes them):
        their open sockets close too."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            live.users_signed_out([int(id)])
        return response

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Made inactive here as by the Suspend action: open pages end at once.
            live.users_suspended([obj.pk])

    def get_queryset(self, request: HttpRequest):
        today = Usage.objects.filter(user=OuterRef("pk"), day=timezone.localdate())
        tokens = today.values("user").annotate(t=Sum(F("prompt_tokens") + F("completion_tokens")))
        return super().get_queryset(request).annotate(tokens_today=Subquery(tokens.values("t")))

    @admin.display(description=_("suspended"), boolean=True, ordering="is_active")
    def suspended(self, obj) -> bool:
        return not obj.is_active

    @admin.display(description=_("tokens today"), ordering="tokens_today")
    def tokens_today(self, obj) -> int:
        return obj.tokens_today or 0

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("moderation.suspend_user")

    @admin.action(description=_("Suspend selected users"), permissions=["suspend"])
    def suspend(self, request: HttpRequest, queryset) -> None:
        # Never oneself; a superuser only by another superuser.
        users = queryset.exclude(pk=request.user.pk)
        if not request.user.is_superuser:
            users = users.exclude(is_superuser=True)
        skipped = queryset.count() - users.count()
        count = services.users_suspend(
            actor=request.user, users=users, reason=action_reason(request)
        )
        done = ngettext("%(count)s user suspended.", "%(count)s users suspended.", count)
        self.message_user(request, done % {"count": count})
        if skipped:
            self.message_user(
                request,
                _("You cannot suspend yourself, and only a superuser can suspend a superuser."),
                level="warning",
            )

    @admin.action(description=_("Reactivate selected users"), permissions=["suspend"])
    def reactivate(self, request: HttpRequest, queryset) -> None:
        count = services.users_reactivate(
            actor=request.user, users=queryset, reason=action_reason(request)
        )
        done = ngettext("%(count)s user reactivated.", "%(count)s users reactivated.", count)
        self.message_user(request, done % {"count": count})
