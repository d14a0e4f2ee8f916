from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = _("API")

    def ready(self) -> None:
        from accounts import admission
        from api.models import calls_counted

        # The API's calls count towards the user's limits (with the chat's answers).
        admission.counts_answers("api_calls", calls_counted)
