from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = _("Moderation")

    def ready(self) -> None:
        from conversations.views import reports_known
        from moderation.models import reported_by

        reports_known(reported_by)  # the chat page's Report buttons say which were reported
