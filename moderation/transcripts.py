"""Who may read what people wrote (conversations, titles, documents' text) in the admin."""

from django.conf import settings


def can_read_transcripts(user) -> bool:
    """Moderators (and superusers) may, unless transcripts are off for everyone."""
    return settings.MODERATION_TRANSCRIPTS and user.has_perm("conversations.read_transcript")
