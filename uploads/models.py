import os
import uuid
from operator import itemgetter

from django.conf import settings
from django.db import connections, models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

import kimi
from kimi import catalogue
from kimichat.names import validate_name
from teams.models import Membership
from uploads import errors
from uploads.kinds import Kind


def storage_name(instance: "UploadedFile", filename: str) -> str:
    # The user's file name never reaches the storage: it is kept in `name` and given back on
    # download.
    extension = os.path.splitext(filename)[1].lower()[:10]
    return f"uploads/{instance.owner_id}/{uuid.uuid4().hex}{extension}"


class UploadedFileQuerySet(models.QuerySet):
    def for_user(self, user) -> "UploadedFileQuerySet":
        """The files `user` may read, download and reference."""
        if not user.is_authenticated:
            return self.none()
        # Team files belong to the team: its members read them, and nobody else (not even
        # the one who uploaded them, once out of the team).
        return self.filter(Q(owner=user, team=None) | Q(team__memberships__user=user))

    def deletable_by(self, user) -> "UploadedFileQuerySet":
        """The files `user` may delete: their own by their owner; a team's by who uploaded
        them, while a member, and by the team's owners and admins."""
        if not user.is_authenticated:
            return self.none()
        # One filter() call: both conditions on memberships are about the user's membership.
        return self.filter(
            Q(owner=user, team=None)
            | (
                Q(team__memberships__user=user)
                & (Q(owner=user) | Q(team__memberships__role__in=Membership.MANAGERS))
            )
        )


class UploadedFile(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "processing", _("Reading…")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    Kind = Kind

    # Who uploaded it; for a team file, the team is what gives access.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="files")
    team = models.ForeignKey(
        "teams.Team", models.CASCADE, null=True, blank=True, related_name="files"
    )
    name = models.CharField(_("name"), max_length=255, validators=[validate_name])
    file = models.FileField(upload_to=storage_name, max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(_("type"), max_length=8, choices=Kind.choices)
    content_type = models.CharField(max_length=100)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PROCESSING
    )
    # Why reading failed, as one of errors.ERRORS' codes, plus details where they help.
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    # Page, sheet and slide markers ("[Page 3]") keep where each passage came from.
    text = models.TextField(blank=True)
    pages = models.PositiveIntegerField(_("pages"), default=0)
    tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UploadedFileQuerySet.as_manager()

    class Meta:
        verbose_name = _("uploaded file")
        verbose_name_plural = _("uploaded files")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "sha256"], condition=Q(team=None), name="one_copy_per_owner"
            ),
            models.UniqueConstraint(
                fields=["team", "sha256"], condition=~Q(team=None), name="one_copy_per_team"
            ),
        ]
        indexes = [models.Index(fields=["owner", "name"]), models.Index(fields=["team", "name"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("file-download", args=[self.pk])

    @property
    def is_image(self) -> bool:
        return self.kind == self.Kind.IMAGE

    @property
    def is_processing(self) -> bool:
        return self.status == self.Status.PROCESSING

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def reference(self) -> str:
        """How a message refers to this file."""
        return f"@{self.name}"

    @property
    def error_text(self) -> str:
        return errors.error_text(self.error_code, self.error)

    @property
    def ocr_possible(self) -> bool:
        return self.error_code == "no_text" and kimi.is_configured()

    def context_tokens(self) -> int:
        return catalogue.IMAGE_TOKENS if self.is_image else self.tokens


class Passage(models.Model):
    """A piece of a file's text, with where it came from: what retrieval searches and sends
    when the whole file does not fit. Indexed by its postings (see uploads/retrieval.py)."""

    file = models.ForeignKey(UploadedFile, models.CASCADE, related_name="passages")
    ordinal = models.PositiveIntegerField()  # its place in the file
    locator = models.CharField(max_length=200, blank=True)  # "Page 3", "Sheet: Q3", "Slide 2"
    page = models.PositiveIntegerField(null=True, blank=True)  # page or slide, to link to
    text = models.TextField()
    length = models.PositiveIntegerField(default=0)  # how many terms it has (BM25 needs it)

    class Meta:
        ordering = ["file_id", "ordinal"]
        indexes = [models.Index(fields=["file", "ordinal"])]

    def __str__(self) -> str:
        return f"{self.file.name} {self.locator or self.ordinal}"


class PostingQuerySet(models.QuerySet):
    def write(self, rows: list[tuple[str, int, int, int, int]]) -> None:
        """Add postings, (term, file_id, passage_id, count, length) rows in the passages'
        order, in one statement (PostgreSQL's COPY; SQLite, one prepared INSERT): hundreds
        a passage, without a model object for each."""
        # Sorted by term (stable: the passages keep their order), the key's order: each
        # page of the index is written once, not once a row.
        rows = sorted(rows, key=itemgetter(0))
        table, columns = self.model._meta.db_table, "term, file_id, passage_id, count, length"
        connection = connections[self.db]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as stream:
                    for row in rows:
                        stream.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)", rows
                )


class Posting(models.Model):
    """One term of one passage, and how often it occurs there: the search index, in the
    database's own tables so that every server process (and PostgreSQL at scale) reads the
    same one, and adding or deleting a file updates it at once.

    The table is its own search index: the key starts with the term, and the passage's file
    and length are kept here too, so that a question answers from it alone (BM25 included)
    without visiting the passages. SQLite keeps it as a table WITHOUT ROWID ordered by the
    key, PostgreSQL as a key that includes the count and length (migration 0006; a later
    migration that rebuilds the table on SQLite must keep that). Nothing else is indexed
    but the file, to delete a file's postings."""

    pk = models.CompositePrimaryKey("term", "file", "passage")
    term = models.CharField(max_length=40)
    # Deleted with their file (Django's cascade, one statement; passages_build deletes them
    # before the file's passages). Neither key is a constraint: PostgreSQL would check a
    # file's for each posting written (more than writing it), and a passage's by searching
    # the postings for each passage deleted.
    file = models.ForeignKey(
        UploadedFile, models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    passage = models.ForeignKey(
        Passage, models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    count = models.PositiveIntegerField()
    length = models.PositiveIntegerField()  # the passage's

    objects = PostingQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["file"], name="uploads_posting_file")]

    def __str__(self) -> str:
        return f"{self.term} ×{self.count}"


class PassageVector(models.Model):
    """What a passage means, as a unit vector of the model named (uploads/embeddings.py):
    float16 bytes, the same on every database. Deleted with the passage. A passage has one,
    of the model that was configured when it was made; a question reads only those of the
    model configured now."""

    passage = models.OneToOneField(Passage, models.CASCADE, related_name="vector")
    # The passage's file, kept here too: a question reads its library's vectors alone.
    file = models.ForeignKey(UploadedFile, models.DO_NOTHING, related_name="+", db_index=False)
    model = models.CharField(max_length=200)
    vector = models.BinaryField()

    class Meta:
        # The id too: a library's count and highest id tell a process whether the vectors it
        # keeps in memory are still the ones stored (ids are never reused).
        indexes = [models.Index(fields=["file", "model", "id"], name="uploads_vector_library")]

    def __str__(self) -> str:
        return f"{self.model} ({len(self.vector) // 2} dimensions)"
