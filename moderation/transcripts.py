"""Who may read what people wrote (conversations, titles, documents' text) in the admin."""

from django.conf import settings
from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest


def can_read_transcripts(user) -> bool:
    """Moderators (and superusers) may, unless transcripts are off for everyone."""
    return settings.MODERATION_TRANSCRIPTS and user.has_perm("conversations.read_transcript")


class PrivateFieldsAdmin(admin.ModelAdmin):
    """An admin page over rows that hold what people wrote (`private_fields`): those who may
    not read it may not filter on it either, as `?title__startswith=A` would answer yes or no
    a letter at a time. Such a lookup is refused (400)."""

    private_fields: frozenset[str] = frozenset()

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        private = lookup.split(LOOKUP_SEP, 1)[0] in self.private_fields
        if private and not can_read_transcripts(request.user):
            return False
        return super().lookup_allowed(lookup, value, request)
