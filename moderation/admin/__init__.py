"""The admin pages moderators work in: conversations (transcripts, hide, delete), users
(suspend), uploaded files, the records (reports, the moderation log, usage, quotas), and API
keys with the calls made with them."""

from moderation.admin import api, conversations, files, records, users

__all__ = ["api", "conversations", "files", "records", "users"]
