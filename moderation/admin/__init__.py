"""The admin pages moderators work in: conversations (transcripts, hide, delete), users
(suspend), uploaded files, and the records (reports, the moderation log, usage, quotas)."""

from moderation.admin import conversations, files, records, users

__all__ = ["conversations", "files", "records", "users"]
