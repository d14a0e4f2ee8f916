from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        from accounts import admission
        from conversations import markdown
        from conversations.admission import answers_counted
        from conversations.views import team_shared
        from teams.views import team_section

        # A chat's answers count towards the user's limits (with the API's calls).
        admission.counts_answers("chat_answers", answers_counted)
        team_section(30, team_shared)  # below the members

        # Load markdown-it, Pygments' lexers and nh3 now rather than during the first answer,
        # when the import would stall every stream in the process for ~100 ms.
        markdown.render("```python\nwarm = True\n```")
