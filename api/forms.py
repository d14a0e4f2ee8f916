from django import forms
from django.utils.translation import gettext_lazy as _

from api.models import ApiKey


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]
        labels = {"name": _("Key name")}
        help_texts = {"name": _("What the key is for, e.g. “laptop notebook” or “CI”.")}
