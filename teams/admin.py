from datetime import timedelta

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from teams.models import Invite, Membership, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "sso_group", "created_at"]
    search_fields = ["name", "slug", "sso_group", "memberships__user__username"]
    inlines = [MembershipInline]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    """Moderators make invitation links for any team here (owners and admins on its page)."""

    list_display = ["team", "link", "created_by", "created_at", "expires_at", "used_by"]
    list_select_related = ["team", "created_by", "used_by"]
    fields = ["team", "link", "expires_at", "used_at", "used_by"]
    autocomplete_fields = ["team"]

    def get_readonly_fields(self, request, obj=None):
        done = ["link", "expires_at", "used_at", "used_by"]
        return ["team", *done] if obj else done

    @admin.display(description="link")
    def link(self, obj: Invite) -> str:
        return obj.get_absolute_url() if obj.pk else "-"

    def save_model(self, request: HttpRequest, obj: Invite, form, change: bool) -> None:
        if not change:
            obj.created_by_id = request.user.pk
            obj.expires_at = timezone.now() + timedelta(days=Invite.LIFETIME_DAYS)
        super().save_model(request, obj, form, change)
