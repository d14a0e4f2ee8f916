"""`{% preferences_form %}`: the Preferences section, for any page that shows it (the
Account page) without that page's view having to build the form."""

from django import template

from accounts.forms import PreferencesForm
from accounts.models import Preferences

register = template.Library()


@register.inclusion_tag("accounts/_preferences.html", takes_context=True)
def preferences_form(context: template.Context, form: PreferencesForm | None = None) -> dict:
    request = context["request"]
    if form is None:
        form = PreferencesForm(instance=Preferences.objects.for_user(request.user))
    return {"preferences_form": form, "request": request, "csrf_token": context.get("csrf_token")}
