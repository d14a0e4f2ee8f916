from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UploadsConfig(AppConfig):
    name = "uploads"
    verbose_name = _("Files")

    def ready(self) -> None:
        from accounts.services import keeps_before_account_delete
        from teams.views import team_section
        from uploads.services import files_hand_to_teams
        from uploads.views import team_library

        team_section(10, team_library)  # above the members
        keeps_before_account_delete(files_hand_to_teams)
