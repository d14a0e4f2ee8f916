"""`@` references in a message → the files its author may read.

`@file-<id>` names a file by id; `@` followed by a file's exact name names it by name (the
longest name that fits wins, so "@q3 report.pdf" finds a name with spaces; of an own file and
a team's with one name, the own one); `@<team reference>` names every document in a team's
library (read, or being read; images and files that failed are left out); files attached in
the composer come by id. A reference to a file that does not exist and one to a file the
author may not read get the same answer."""

import re
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from teams.models import Team
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


def resolve(*, user: User, text: str, attached: Sequence[int] = ()) -> list[UploadedFile]:
    """The files a message refers to, in the order it names them (attached ones last)."""
    readable = UploadedFile.objects.for_user(user)
    wanted: list[int] = []
    starts = [m.start() for m in AT.finditer(text)]
    if starts:
        names = _names(readable) + _teams(user)
        for start in starts:
            for file_id in _reference(text, start + 1, names):
                if file_id not in wanted:
                    wanted.append(file_id)
    for file_id in attached:
        if file_id not in wanted:
            wanted.append(file_id)
    files = readable.in_bulk(wanted)
    missing = [i for i in wanted if i not in files]
    if missing:
        raise NotFound(f"file-{missing[0]}")
    return [files[i] for i in wanted]


def _names(readable) -> list[tuple[str, list[int]]]:
    # Newest first: of two files with one name, the newer is meant; an own file before a
    # team's.
    rows = readable.order_by("-created_at", "-id").values_list("name", "id", "team_id")
    rows = sorted(rows, key=lambda row: (-len(row[0]), row[2] is not None))
    return [(name, [file_id]) for name, file_id, _ in rows]


def _teams(user: User) -> list[tuple[str, list[int]]]:
    """Each of the user's teams' references, with the documents of its library."""
    documents = (
        UploadedFile.objects.filter(team__memberships__user=user)
        .exclude(kind=UploadedFile.Kind.IMAGE)
        .exclude(status=UploadedFile.Status.FAILED)
        .order_by("name", "id")
        .values_list("team_id", "id")
    )
    library: dict[int, list[int]] = {}
    for team_id, file_id in documents:
        library.setdefault(team_id, []).append(file_id)
    teams = Team.objects.for_user(user).values_list("slug", "id")
    return sorted(
        ((slug, library.get(team_id, [])) for slug, team_id in teams), key=lambda t: -len(t[0])
    )


def _reference(text: str, at: int, names: list[tuple[str, list[int]]]) -> list[int]:
    rest = text[at:]
    by_id = BY_ID.match(rest)
    if by_id and _ends(rest, by_id.end()):
        return [int(by_id.group(1))]
    for name, file_ids in names:
        if rest.startswith(name) and _ends(rest, len(name)):
            return file_ids
    looks = LOOKS_LIKE_FILE.match(rest)
    if looks and looks.group(1).lower() in extract.KNOWN:
        # "@draft.pdf" names a file even when there is none: say so rather than ignore it.
        raise NotFound(looks.group(0).rstrip(".,;:!?)]}>'\""))
    return []  # "@kimi", "@here": not a file


def _ends(rest: str, length: int) -> bool:
    if length == len(rest):
        return True
    after = rest[length]
    if after in ".,;:!?" and length + 1 < len(rest) and not rest[length + 1].isspace():
        return False  # "@a.pdf.zip" is not "@a.pdf"
    return after in END
