"""The admin pages moderators work in: conversations (transcripts, hide, delete), users
(suspend), uploaded files, the records (reports, the moderation log, usage, quotas), and API
keys with the calls made with them."""

from django.contrib import admin

from moderation.admin import api, conversations, files, records, users
from moderation.views import admin_login, admin_logout

# The admin's own log-in form would skip two-factor and the log-in throttling; its own
# log-out would leave the session's sockets open.
admin.site.login = admin_login  # type: ignore[method-assign]
admin.site.logout = admin_logout  # type: ignore[method-assign,assignment]

__all__ = ["api", "conversations", "files", "records", "users"]
