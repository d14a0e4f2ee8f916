"""`{% notices %}`: the messages (django.contrib.messages) waiting for this person, on every
page that does not show them itself (base.html), so that none turns up pages later. It reads
them from the request: a page's own `messages` (a chat's) cannot hide them."""

from django import template
from django.contrib.messages import get_messages

register = template.Library()


@register.inclusion_tag("accounts/_notices.html", takes_context=True)
def notices(context: template.Context) -> dict:
    request = context.get("request")
    return {"notices": list(get_messages(request)) if request is not None else []}


@register.simple_tag
def email_sends() -> bool:
    """Whether this KimiChat sends e-mail (so a password can be reset by a link)."""
    from django.conf import settings

    return bool(settings.EMAIL)


@register.simple_tag(takes_context=True)
def pending_signups(context: template.Context) -> int:
    """How many sign-ups wait for a moderator, for one who may see them (the admin's home)."""
    from accounts.models import Approval

    user = context["request"].user
    if not user.has_perm("accounts.view_approval"):
        return 0
    return Approval.objects.pending().count()
