from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from api.models import ApiKey
from kimi import catalogue


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "expires_at"]
        labels = {"name": _("Key name"), "expires_at": _("Expires (optional)")}
        help_texts = {"name": _("What the key is for, e.g. “laptop notebook” or “CI”.")}
        widgets = {"expires_at": forms.DateInput(attrs={"type": "date"})}

    def clean_expires_at(self):
        expires = self.cleaned_data.get("expires_at")
        if expires is not None and expires <= timezone.now():
            raise forms.ValidationError(_("The expiry must be in the future."))
        return expires


class ApiKeyLimitsForm(forms.ModelForm):
    """What a moderator may bound a key by, the models picked from those offered."""

    allowed_models = forms.MultipleChoiceField(
        label=_("allowed models"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The models this key may use; none ticked: all those offered."),
    )

    class Meta:
        model = ApiKey
        fields = [
            "expires_at",
            "allowed_models",
            "token_budget",
            "budget_period",
            "requests_per_minute",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        known = set(catalogue.offered()) | set(self.instance.allowed_models or [])
        field = self.fields["allowed_models"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(m, m) for m in sorted(known)]
