"""`@` references in a message → the files its author may read.

`@file-<id>` (or `@file_<id>`) names a file by id; `@` followed by a file's exact name names
it by name (the longest name that fits wins, so "@q3 report.pdf" finds a name with spaces; of
an own file and a team's with one name, the own one); `@<team reference>` names every
document in a team's library (read, or being read; images and files that failed are left
out); files attached in the composer come by id. A reference to a file that does not exist
and one to a file the author may not read get the same answer."""

import itertools
import re
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from teams.models import Team
from uploads import extract
from uploads.models import UploadedFile

AT = re.compile(r"(?<![\w@.])@(?=\S)")
# Ids are written "file-12" or, as Kimi's newer file ids are, "file_12": both are taken.
BY_ID = re.compile(r"file[-_](\d+)")
ID_PREFIXES = ("file-", "file_")
# What may follow a name: the end, a space, or punctuation closing a sentence or a bracket.
END = set(" \t\n\r,.;:!?)]}>'\"，。；：！？）」』、")
LOOKS_LIKE_FILE = re.compile(r"[^\s@]+(\.[A-Za-z0-9]{1,10})")
WORD = re.compile(r"\S+")
# File names are kept to 255 characters (services.clean_name), team references to fewer.
MAX_NAME = 255
MAX_MENTIONS = 200
MAX_REFERENCES = 20


class NotFound(Exception):
    def __init__(self, reference: str, message: str = "") -> None:
        super().__init__(
            message
            or _("There is no file “%(name)s” that you can read. Check the name, or upload it.")
            % {"name": reference}
        )

    @classmethod
    def too_many(cls) -> "NotFound":
        return cls(
            "",
            _("A message can name at most %(count)s files or teams with @. Name fewer.")
            % {"count": MAX_REFERENCES},
        )


def plain_id(value: object) -> object:
    """A file id as sent ("file_12", "file-12", "12" or 12) without its prefix."""
    if isinstance(value, str) and value.startswith(ID_PREFIXES):
        return value[len("file-") :]
    return value


def resolve(*, user: User, text: str, attached: Sequence[int] = ()) -> list[UploadedFile]:
    """The files a message refers to, in the order it names them (attached ones last).
    The first MAX_MENTIONS `@` are looked at (the rest are text); at most MAX_REFERENCES of
    them may name files."""
    readable = UploadedFile.objects.for_user(user)
    wanted: list[int] = []
    starts = [m.start() for m in itertools.islice(AT.finditer(text), MAX_MENTIONS)]
    if starts:
        index = _index(_names(readable) + _teams(user))
        named = 0
        for start in starts:
            found = _reference(text, start + 1, index)
            named += bool(found)
            if named > MAX_REFERENCES:
                raise NotFound.too_many()
            for file_id in found:
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


Index = dict[str, list[tuple[int, dict[str, list[int]]]]]


def _index(names: list[tuple[str, list[int]]]) -> Index:
    """Names by their first word, then by length, longest first (of two equal names, the
    first given wins): a few dictionary look-ups per `@`, not a comparison with every name."""
    by_word: dict[str, dict[int, dict[str, list[int]]]] = {}
    for name, file_ids in names:
        words = name.split(maxsplit=1)
        lengths = by_word.setdefault(words[0] if words else name, {})
        lengths.setdefault(len(name), {}).setdefault(name, file_ids)
    return {
        word: sorted(lengths.items(), key=lambda item: -item[0])
        for word, lengths in by_word.items()
    }


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


def _reference(text: str, at: int, index: Index) -> list[int]:
    # No name is longer than this: what follows decides only whether the name ends there.
    rest = text[at : at + MAX_NAME + 2]
    by_id = BY_ID.match(rest)
    if by_id and _ends(rest, by_id.end()):
        if len(by_id.group(1)) > 18:
            raise NotFound(by_id.group(0))  # no id is that long
        return [int(by_id.group(1))]
    word = WORD.match(rest)
    if word:
        # "@report.pdf," and "@report.pdf" both find "report.pdf".
        keys = dict.fromkeys((word.group(), word.group().rstrip("".join(END))))
        for key in keys:
            for length, named in index.get(key, []):
                file_ids = named.get(rest[:length])
                if file_ids is not None and _ends(rest, length):
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
