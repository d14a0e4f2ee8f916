from django import template
from django.utils.safestring import SafeString, mark_safe

from conversations import markdown as md

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    # Safe: markdown-it escapes raw HTML and nh3 strips anything outside the allow-list.
    return mark_safe(md.render(text))
