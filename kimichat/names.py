"""The one rule for names people give things (a conversation's title, a file's name, a team's
name): no control characters. A NUL breaks what stores or exports the name; a right-to-left
override shows "invoice\u202efdp.exe" as "invoiceexe.pdf". Such a name is refused with a
clear message wherever it is typed in (forms, uploads, the admin); a name made from other
text (a first message, Kimi's title, a refused file's name shown back) is cleaned instead."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Characters that change the direction of the text around them (Unicode's bidi controls).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Control characters (NUL and the rest), half characters, line and paragraph separators.
CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

NAME_REFUSED = _(
    "A name cannot contain control characters, such as NUL or a right-to-left override. "
    "Remove them and try again."
)


def is_control(character: str) -> bool:
    return character in BIDI_CONTROLS or unicodedata.category(character) in CONTROL_CATEGORIES


def validate_name(value: str) -> None:
    """Refuse a name that holds a control character (a Django validator)."""
    if any(is_control(c) for c in value):
        raise ValidationError(NAME_REFUSED, code="control_characters")


def printable(value: str) -> str:
    """`value` without its control characters."""
    return "".join(c for c in value if not is_control(c))
