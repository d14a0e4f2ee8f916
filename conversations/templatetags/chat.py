from django import template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from conversations import forms, parts
from conversations import markdown as md
from kimi import tools

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    # Safe: markdown-it escapes raw HTML and nh3 strips anything outside the allow-list.
    return mark_safe(md.render(text))


@register.filter
def source_label(source: dict) -> str:
    """ "report.pdf, page 3": a source of an answer, in the page's language."""
    locator, name = source.get("locator", ""), source.get("name", "")
    kind, __, rest = locator.partition(" ")
    if kind == "Page":
        return _("%(name)s, page %(page)s") % {"name": name, "page": rest}
    if kind == "Slide":
        return _("%(name)s, slide %(slide)s") % {"name": name, "slide": rest}
    if locator.startswith("Sheet: "):
        return _("%(name)s, sheet %(sheet)s") % {"name": name, "sheet": locator[7:]}
    return name


@register.filter
def place_label(source: dict) -> str:
    """ "3", "Q3": where in its file a source is, as listed after the file's name."""
    locator = source.get("locator", "")
    return locator[7:] if locator.startswith("Sheet: ") else locator.partition(" ")[2]


@register.filter
def by_file(sources: list[dict]) -> list[dict]:
    """An answer's sources, a file each (in the order each file first comes), with the places
    in it: {"file", "name", "kind", "places"}. A long document's dozens of pages make one
    line, not dozens."""
    files: dict[int, dict] = {}
    for source in sources:
        group = files.setdefault(
            source["file"],
            {"file": source["file"], "name": source.get("name", ""), "kind": "", "places": []},
        )
        if source.get("locator"):
            group["places"].append(source)
            group["kind"] = group["kind"] or _kind(source["locator"])
    return list(files.values())


def _kind(locator: str) -> str:
    if locator.startswith("Sheet: "):
        return pgettext("sources of an answer", "sheets")
    if locator.startswith("Slide "):
        return pgettext("sources of an answer", "slides")
    return pgettext("sources of an answer", "pages")


@register.filter
def thinking_modes(form: forms.ConversationSettingsForm) -> str:
    return forms.thinking_modes(form)


@register.filter
def step_text(step: dict) -> str:
    """ "Searching: …", "Reading: example.org/…": a step of Kimi's tools, as it runs."""
    return tools.step_text(step)


@register.filter
def page_label(url: str) -> str:
    return tools.page_label(url)


@register.simple_tag
def streamed_parts() -> tuple[parts.Part, ...]:
    """The parts of an answer, in the order they stream and are shown."""
    return parts.PARTS
