from django import forms
from django.utils.translation import gettext_lazy as _

from kimichat.names import validate_name
from teams.models import Membership


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Team name"), max_length=80, validators=[validate_name])


class MemberForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)
