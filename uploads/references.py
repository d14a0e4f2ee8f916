"""`@` references in a message → the files its author may read.

`@file-<id>` names a file by id; `@` followed by a file's exact name names it by name (the
longest name that fits wins, so "@q3 report.pdf" finds a name with spaces); files attached in
the composer come by id. A reference to a file that does not exist and one to a file the
author may not read get the same answer."""

import re

from django.utils.translation import gettext as _

from uploads import extract
from uploads.models import UploadedFile

AT = re.compile(r"(?<![\w@.])@(?=\S)")
BY_ID = re.compile(r"file-(\d+)")
# What may follow a name: the end, a space, or punctuation closing a sentence or a bracket.
END = set(" \t\n\r,.;:!?)]}>'\"，。；：！？）」』、")
LOOKS_LIKE_FILE = re.compile(r"[^\s@]+(\.[A-Za-z0-9]{1,10})")


class NotFound(Exception):
    def __init__(self, reference: str) -> None:
        super().__init__(
            _("There is no file “%(name)s” that you can read. Check the name, or upload it.")
            % {"name": reference}
        )


def resolve(*, user, text: str, attached: list[int] = ()) -> list[UploadedFile]:
    """The files a message refers to, in the order it names them (attached ones last)."""
    readable = UploadedFile.objects.for_user(user)
    wanted: list[int] = []
    starts = [m.start() for m in AT.finditer(text)]
    if starts:
        names = _names(readable)
        for start in starts:
            file_id = _reference(text, start + 1, names)
            if file_id is not None and file_id not in wanted:
                wanted.append(file_id)
    for file_id in attached:
        if file_id not in wanted:
            wanted.append(file_id)
    files = readable.in_bulk(wanted)
    missing = [i for i in wanted if i not in files]
    if missing:
        raise NotFound(f"file-{missing[0]}")
    return [files[i] for i in wanted]


def _names(readable) -> list[tuple[str, int]]:
    # Newest first: of two files with one name, the newer is meant.
    rows = readable.order_by("-created_at", "-id").values_list("name", "id")
    return sorted(rows, key=lambda row: -len(row[0]))  # stable: longest, then newest


def _reference(text: str, at: int, names: list[tuple[str, int]]) -> int | None:
    rest = text[at:]
    by_id = BY_ID.match(rest)
    if by_id and _ends(rest, by_id.end()):
        return int(by_id.group(1))
    for name, file_id in names:
        if rest.startswith(name) and _ends(rest, len(name)):
            return file_id
    looks = LOOKS_LIKE_FILE.match(rest)
    if looks and looks.group(1).lower() in extract.KNOWN:
        # "@draft.pdf" names a file even when there is none: say so rather than ignore it.
        raise NotFound(looks.group(0).rstrip(".,;:!?)]}>'\""))
    return None  # "@kimi", "@here": not a file


def _ends(rest: str, length: int) -> bool:
    if length == len(rest):
        return True
    after = rest[length]
    if after in ".,;:!?" and length + 1 < len(rest) and not rest[length + 1].isspace():
        return False  # "@a.pdf.zip" is not "@a.pdf"
    return after in END
