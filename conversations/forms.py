import json
from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from conversations.models import Conversation
from kimi import catalogue, tools

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


# A model Kimi lists no more (or KIMI_MODELS leaves out), in a saved conversation: the page says
# so beside the picker, and a message sent with it is refused in the same words.
RETIRED = _("%(model)s is no longer offered by Kimi; pick another model.")


class ModelField(forms.ChoiceField):
    """One of the models offered (the choices, set when the form is made)."""

    def validate(self, value: Any) -> None:
        if value and not self.valid_value(value):
            raise ValidationError(RETIRED, code="retired", params={"model": value})
        super().validate(value)


OUT_OF_RANGE = _("Enter a number from %(min)s to %(max)s.")


class ConversationSettingsForm(forms.ModelForm):
    model = ModelField(label=_("Model"))
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
        fields = [
            "model",
            "system_prompt",
            "temperature",
            "top_p",
            "max_tokens",
            "stop",
            "thinking",
            "web_search",
            "reasoning_effort",
        ]
        labels = {
            "system_prompt": _("System prompt"),
            "thinking": _("Thinking"),
            "web_search": _("Web search"),
            "reasoning_effort": _("Effort"),
        }
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 3})}

    # Shown in the composer's bar rather than in the Settings panel.
    composer_fields = ["model", "reasoning_effort", "thinking", "web_search"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Left out (a form that does not show it): the conversation keeps its effort.
        self.fields["reasoning_effort"].required = False
        offered = catalogue.offered()
        cast(forms.ChoiceField, self.fields["model"]).choices = [(m, m) for m in offered]
        # The saved model where it is still offered; else the picker starts on the default.
        saved = self.instance.model
        self.retired_model = saved if saved and saved not in offered else ""
        if self.retired_model:
            self.initial["model"] = catalogue.default_model()
        elif not saved:
            self.initial.setdefault("model", catalogue.default_model())
        # What the page says beside a number out of its range (the browser refuses to send
        # it, in the browser's own language): chat.js shows this, in the page's.
        for name in ("temperature", "top_p", "max_tokens"):
            field = cast(forms.FloatField, self.fields[name])
            field.widget.attrs["data-invalid"] = OUT_OF_RANGE % {
                "min": field.min_value,
                "max": f"{field.max_value:,}",
            }

    def clean_reasoning_effort(self) -> str:
        return self.cleaned_data.get("reasoning_effort") or self.instance.reasoning_effort


# The composer's switches: sent with a message only when on (a checkbox).
SWITCHES = ["thinking", "web_search"]


def thinking_modes(form: ConversationSettingsForm) -> str:
    """What each model offered does of its own, for the page to show the settings as they
    apply to the model picked: whether it thinks ("always", "optional", "never"), whether
    it takes an effort, whether its sampling is fixed, and whether it can search the web."""
    choices = cast(list[tuple[str, str]], cast(forms.ChoiceField, form.fields["model"]).choices)
    return json.dumps(
        {
            model: {
                "thinking": catalogue.thinking(model),
                "effort": catalogue.takes_effort(model),
                "fixed": catalogue.fixed_sampling(model),
                "search": tools.searches(model),
            }
            for model, _label in choices
        }
    )


def retired_model(conversation: Conversation | None) -> str:
    """The conversation's model where Kimi offers it no more ("" otherwise): a message
    sent without picking another goes on with the default model (`settings_form_for_message`)."""
    model = conversation.model if conversation is not None else ""
    return model if model and not catalogue.is_offered(model) else ""


def settings_form_for_message(
    content: Mapping[str, Any], conversation: Conversation
) -> ConversationSettingsForm:
    """Validate the settings sent with a message; fields left out keep their saved values.
    The composer says it sent its switches ("switches"): then a switch left out is off."""
    data: dict[str, Any] = {
        "model": conversation.model or catalogue.default_model(),
        "system_prompt": conversation.system_prompt,
        "temperature": conversation.temperature,
        "top_p": conversation.top_p,
        "max_tokens": conversation.max_tokens,
        "stop": "\n".join(conversation.stop),
    }
    data["reasoning_effort"] = conversation.reasoning_effort
    data.update({name: content[name] for name in data if name in content})
    if data["model"] == retired_model(conversation):
        data["model"] = catalogue.default_model()  # it goes on, with the model Kimi offers
    for name in SWITCHES:
        if "switches" in content:
            data[name] = bool(content.get(name))
        else:
            data[name] = getattr(conversation, name)
    return ConversationSettingsForm(data=data, instance=conversation)


def first_error(form: forms.BaseForm) -> str:
    for field, errors in form.errors.as_data().items():
        error = errors[0]
        text = " ".join(error.messages)
        label = form.fields[field].label if field in form.fields else ""
        # A retired model's sentence names it already.
        return f"{label}: {text}" if label and error.code != "retired" else text
    return ""
