from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"

    def ready(self) -> None:
        from teams.views import team_section
        from uploads.views import team_library

        team_section(10, team_library)  # above the members
