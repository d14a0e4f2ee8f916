from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from conversations.models import Conversation

MAX_STOP_SEQUENCES = 5  # Kimi's limit, each at most 32 bytes
MAX_MESSAGE_CHARS = 100_000


class StopSequencesField(forms.Field):
    """One stop sequence per line."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = str(value or "").strip()
        sequences = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
        if len(sequences) > MAX_STOP_SEQUENCES:
            raise ValidationError(_("Kimi accepts at most 5 stop sequences."))
        if any(len(s.encode()) > 32 for s in sequences):
            raise ValidationError(_("Each stop sequence may be at most 32 bytes long."))
        return sequences


class ConversationSettingsForm(forms.ModelForm):
    model = forms.ChoiceField(label=_("Model"))
    temperature = forms.FloatField(
        label=_("Temperature"),
        required=False,
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.1", "placeholder": _("model default")}),
    )
    top_p = forms.FloatField(
        label=_("Top p"),
        required=False,
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": _("model default")}),
    )
    max_tokens = forms.IntegerField(
        label=_("Max tokens"),
        required=False,
        min_value=1,
        max_value=1_000_000,
        widget=forms.NumberInput(attrs={"placeholder": _("model default")}),
    )
    stop = StopSequencesField(label=_("Stop sequences"), required=False)

    class Meta:
        model = Conversation
        fields = ["model", "system_prompt", "temperature", "top_p", "max_tokens", "stop"]
        labels = {"system_prompt": _("System prompt")}
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["model"]).choices = [
            (m, m) for m in settings.KIMI_MODELS
        ]
        if not self.instance.pk and not self.instance.model:
            self.initial.setdefault("model", settings.KIMI_DEFAULT_MODEL)


def settings_form_for_message(
    content: Mapping[str, Any], conversation: Conversation
) -> ConversationSettingsForm:
    """Validate the settings sent with a message; fields left out keep their saved values."""
    data = {
        "model": conversation.model or settings.KIMI_DEFAULT_MODEL,
        "system_prompt": conversation.system_prompt,
        "temperature": conversation.temperature,
        "top_p": conversation.top_p,
        "max_tokens": conversation.max_tokens,
        "stop": "\n".join(conversation.stop),
    }
    data.update({name: content[name] for name in data if name in content})
    return ConversationSettingsForm(data=data, instance=conversation)


def first_error(form: forms.BaseForm) -> str:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        return f"{label}: {errors[0]}" if label else str(errors[0])
    return ""
