from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        from conversations import markdown

        # Load markdown-it, Pygments' lexers and nh3 now rather than during the first answer,
        # when the import would stall every stream in the process for ~100 ms.
        markdown.render("```python\nwarm = True\n```")
