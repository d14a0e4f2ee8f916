from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from moderation.transcripts import PrivateFieldsAdmin, can_read_transcripts
from uploads.models import UploadedFile


@admin.register(UploadedFile)
class UploadedFileAdmin(PrivateFieldsAdmin):
    list_display = ["name", "owner", "kind", "size", "pages", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "owner__username"]
    raw_id_fields = ["owner"]
    private_fields = frozenset({"text"})
    # The stored file is not under a public URL (/media/ is not served): it is downloaded
    # through this admin, by those who may read what users wrote.
    exclude = ["file"]
    readonly_fields = [
        "stored_file",
        "sha256",
        "size",
        "content_type",
        "tokens",
        "created_at",
        "updated_at",
    ]

    def get_exclude(self, request: HttpRequest, obj=None):
        # A document's text is as private as a conversation's.
        return ["file"] if can_read_transcripts(request.user) else ["file", "text"]

    @admin.display(description=_("file"))
    def stored_file(self, obj: UploadedFile) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:uploads_uploadedfile_download", args=[obj.pk])
        return format_html('<a href="{}" download>{}</a>', url, obj.name)

    def get_urls(self):
        download = self.admin_site.admin_view(self.download)
        return [
            path("<int:file_id>/download/", download, name="uploads_uploadedfile_download"),
            *super().get_urls(),
        ]

    def download(self, request: HttpRequest, file_id: int) -> FileResponse:
        if not can_read_transcripts(request.user):
            raise PermissionDenied
        file = get_object_or_404(UploadedFile, pk=file_id)
        return FileResponse(file.file.open("rb"), as_attachment=True, filename=file.name)
