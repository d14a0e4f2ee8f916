from django.contrib import admin
from django.http import HttpRequest

from moderation.transcripts import can_read_transcripts
from uploads.models import UploadedFile


@admin.register(UploadedFile)
class UploadedFileAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "kind", "size", "pages", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "owner__username"]
    raw_id_fields = ["owner"]
    readonly_fields = ["sha256", "size", "content_type", "tokens", "created_at", "updated_at"]

    def get_exclude(self, request: HttpRequest, obj=None):
        # A document's text is as private as a conversation's.
        return [] if can_read_transcripts(request.user) else ["text"]
