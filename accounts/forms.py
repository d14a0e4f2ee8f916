from allauth.account import forms as allauth_forms
from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Preferences
from kimi import catalogue


class LoginForm(allauth_forms.LoginForm):
    """django-allauth's log-in form, posted as `username` (its field is `login`): the page's
    field keeps the id, name and label it had before, for password managers and scripts."""

    def add_prefix(self, field_name: str) -> str:
        return "username" if field_name == "login" else super().add_prefix(field_name)


class SignupForm(allauth_forms.SignupForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].label = _("E-mail (optional)")
        if "password2" in self.fields:
            self.fields["password2"].label = _("Password confirmation")


class DeleteAccountForm(forms.Form):
    """Deleting an account asks for its password (or, without one, its username)."""

    confirm = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if not user.has_usable_password():
            self.fields["confirm"] = forms.CharField(label=_("Your username"))

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if self.user.has_usable_password():
            ok = self.user.check_password(value)
        else:
            ok = value == self.user.get_username()
        if not ok:
            raise forms.ValidationError(_("That is not right."), code="mismatch")
        return value


class PreferencesForm(forms.ModelForm):
    """Theme and how a new chat starts (issue 14's Preferences section)."""

    class Meta:
        model = Preferences
        fields = ["theme", "default_model", "default_thinking", "default_web_search"]
        widgets = {"theme": forms.RadioSelect}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        offered = catalogue.offered()
        choices = [("", _("The server's default"))] + [(m, m) for m in offered]
        if self.instance.default_model and self.instance.default_model not in offered:
            choices.append((self.instance.default_model, self.instance.default_model))
        self.fields["default_model"] = forms.ChoiceField(
            label=_("Default model"), choices=choices, required=False
        )
