from typing import cast

from django import forms
from django.contrib.admin import helpers
from django.utils.translation import gettext_lazy as _

from conversations.models import Conversation, Message

MAX_REASON_CHARS = 2000


class ReportForm(forms.Form):
    message = forms.ModelChoiceField(
        queryset=Message.objects.none(),
        error_messages={
            "invalid_choice": _("This message cannot be reported: it may have been deleted.")
        },
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=MAX_REASON_CHARS,
        error_messages={"required": _("Say what is wrong with the message.")},
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Messages of conversations the user can read, and no other.
        readable = Conversation.objects.for_user(user).visible()
        messages = cast(forms.ModelChoiceField, self.fields["message"])
        # Answers, not the user's own words.
        messages.queryset = Message.objects.filter(
            conversation__in=readable, role=Message.Role.ASSISTANT
        )


class ModerationActionForm(helpers.ActionForm):
    """The admin's action bar, with the reason recorded in the moderation log."""

    reason = forms.CharField(
        label=_("Reason:"),
        required=False,
        max_length=MAX_REASON_CHARS,
        widget=forms.TextInput(attrs={"placeholder": _("why (kept in the moderation log)")}),
    )


def action_reason(request) -> str:
    """The reason typed in the action bar (ModerationActionForm), for the log."""
    return request.POST.get("reason", "").strip()
