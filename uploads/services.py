"""Uploaded files' I/O: saving, reading their text, deleting: keyword-only `file_<action>`."""

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import openai
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile as Upload
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

import kimi
from kimi import catalogue
from realtime import live
from teams import services as teams
from teams.models import Membership, Team
from uploads import extract, reader, retrieval
from uploads.errors import ExtractError
from uploads.models import UploadedFile

log = logging.getLogger(__name__)

# Errors that say nothing about the file itself: uploading the same bytes again retries.
RETRYABLE = {"interrupted", "timeout", "ocr"}


@dataclass
class Saved:
    file: UploadedFile
    read_needed: bool  # new (or retried) bytes whose text must be read


def file_create(*, owner: User, upload: Upload, team: Team | None = None) -> Saved:
    """Check and store an upload (in `team`'s library, or the owner's own); raises
    ExtractError for a file that must be refused. The same bytes uploaded again to the same
    library give the file already there."""
    name = clean_name(upload.name or "")
    size = upload.size or 0
    checked = extract.check(name, cast(BinaryIO, upload.file), size)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    sha256 = digest.hexdigest()
    library = {"team": team} if team is not None else {"owner": owner, "team": None}
    existing = UploadedFile.objects.filter(sha256=sha256, **library).first()
    if existing is not None:
        return Saved(existing, _retry(existing))
    room_check(owner=owner, size=size)
    file = UploadedFile(
        owner=owner,
        team=team,
        name=name,
        size=size,
        sha256=sha256,
        kind=checked.kind,
        content_type=checked.content_type,
    )
    upload.seek(0)
    file.file.save(name, upload, save=False)
    try:
        with transaction.atomic():
            file.save()
    except IntegrityError:
        # The same bytes, uploaded twice at once: keep the first.
        file.file.delete(save=False)
        return Saved(UploadedFile.objects.get(sha256=sha256, **library), False)
    return Saved(file, True)


def room_check(*, owner: User, size: int) -> None:
    """Refuse a file its owner has no room left for (USER_STORAGE_MB, USER_MAX_FILES)."""
    held = UploadedFile.objects.filter(owner=owner).aggregate(count=Count("id"), bytes=Sum("size"))
    if held["count"] >= settings.USER_MAX_FILES:
        raise ExtractError("count", count=settings.USER_MAX_FILES)
    limit = settings.USER_STORAGE_MB * 1024 * 1024
    if (held["bytes"] or 0) + size > limit:
        raise ExtractError("storage", limit=filesizeformat(limit))


def _retry(file: UploadedFile) -> bool:
    if file.status != UploadedFile.Status.FAILED or file.error_code not in RETRYABLE:
        return False
    UploadedFile.objects.filter(pk=file.pk).update(
        status=UploadedFile.Status.PROCESSING, error_code="", error=""
    )
    file.status, file.error_code, file.error = UploadedFile.Status.PROCESSING, "", ""
    return True


def clean_name(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/"))
    name = "".join(c for c in name if c.isprintable()).strip() or "file"
    stem, extension = os.path.splitext(name)
    return stem[: 255 - len(extension)] + extension


def file_read(*, file_id: int) -> None:
    """Read a stored file's text and save it, then tell the owner's pages."""
    file = UploadedFile.objects.filter(pk=file_id).first()
    if file is None:
        return
    fields: dict[str, Any]
    try:
        with local_copy(file) as path:
            extracted = reader.read(path, file.kind, owner_id=file.owner_id)
    except ExtractError as e:
        fields = {"status": UploadedFile.Status.FAILED, "error_code": e.code}
        fields["error"] = e.detail if e.params else ""
    except Exception:
        log.exception("Reading file %s failed", file_id)
        fields = {"status": UploadedFile.Status.FAILED, "error_code": "corrupt", "error": ""}
    else:
        # Indexed before it is said to be ready: a question may come at once.
        retrieval.passages_build(file=file, text=extracted.text)
        fields = {
            "status": UploadedFile.Status.READY,
            "text": extracted.text,
            "pages": extracted.pages,
            "tokens": catalogue.estimate_tokens(extracted.text) if extracted.text else 0,
        }
    file_update(file=file, **fields)


async def file_read_with_kimi(*, file_id: int) -> None:
    """Kimi's file-extract (with OCR) for a PDF without a text layer: upload it to Kimi, take
    the text, delete it there."""
    file = await UploadedFile.objects.filter(pk=file_id).afirst()
    if file is None:
        return
    data = await database_sync_to_async(_read_stored)(file)
    client = kimi.client()
    fields: dict[str, Any] = {
        "status": UploadedFile.Status.FAILED,
        "error_code": "ocr",
        "error": "",
    }
    try:
        # Kimi's own purpose, which the SDK's types do not list.
        purpose: Any = "file-extract"
        uploaded = await client.files.create(file=(file.name, data), purpose=purpose)
        try:
            content = (await client.files.content(uploaded.id)).text
        finally:
            await client.files.delete(uploaded.id)
        try:
            text = str(json.loads(content).get("content", ""))
        except (ValueError, AttributeError):
            text = content
        text = extract.tidy(text)
        if text:
            await database_sync_to_async(retrieval.passages_build)(file=file, text=text)
            fields = {
                "status": UploadedFile.Status.READY,
                "error_code": "",
                "text": text,
                "tokens": catalogue.estimate_tokens(text),
            }
        else:
            fields["error_code"] = "no_text"
    except (openai.APIError, kimi.NoKeyConfigured) as e:
        code, detail = kimi.error_code(e)
        fields["error"] = kimi.error_text(code, detail)
    await database_sync_to_async(file_update)(file=file, **fields)


def _read_stored(file: UploadedFile) -> bytes:
    with file.file.open("rb") as f:
        return f.read()


def file_update(*, file: UploadedFile, **fields) -> None:
    UploadedFile.objects.filter(pk=file.pk).update(updated_at=timezone.now(), **fields)
    file_changed(file=file)


def file_changed(*, file: UploadedFile) -> None:
    """Tell every page showing the file: its owner's, or every team member's."""
    readers = [file.owner_id]
    if file.team_id is not None:
        members = Membership.objects.filter(team_id=file.team_id)
        readers = list(members.values_list("user_id", flat=True))
    live.file_changed(file.pk, readers=readers)


def file_delete(*, file: UploadedFile) -> None:
    stored = file.file.name
    file.delete()
    # After the row: a failure here leaves an orphan object, never a row without its file.
    if stored:
        file.file.storage.delete(stored)


@contextlib.contextmanager
def local_copy(file: UploadedFile) -> Iterator[str]:
    """A path to the file's bytes: the stored file itself on local disk, a temporary copy when
    it lives in S3."""
    try:
        yield file.file.path
        return
    except NotImplementedError:
        pass
    extension = os.path.splitext(file.file.name or "")[1]
    with tempfile.NamedTemporaryFile(suffix=extension) as copy:
        with file.file.open("rb") as stored:
            while chunk := stored.read(1 << 20):
                copy.write(chunk)
        copy.flush()
        yield copy.name


def bucket_create_missing() -> bool:
    """With S3 storage, create the bucket if it does not exist yet (a fresh MinIO): True
    when it was created."""
    from django.core.files.storage import default_storage

    bucket = getattr(default_storage, "bucket", None)
    if bucket is None:
        return False
    client = bucket.meta.client
    try:
        client.head_bucket(Bucket=bucket.name)
        return False
    except client.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
            raise
    client.create_bucket(Bucket=bucket.name)
    return True


def files_hand_to_teams(*, user: User) -> None:
    """Before `user`'s account is deleted: what it put in a team's library stays the team's,
    as when a member leaves. Each team keeps an owner, and the files `user` uploaded there (of
    teams left since too) are handed to that owner. Files in a team nobody else is in go with
    the account."""
    files = UploadedFile.objects.filter(owner=user).exclude(team=None)
    team_ids = {*files.values_list("team", flat=True)}
    team_ids |= {*Membership.objects.filter(user=user).values_list("team", flat=True)}
    for team_id in team_ids:
        owner_id = teams.team_owner_after(team_id=team_id, leaving=user)
        if owner_id is not None:
            files.filter(team=team_id).update(owner=owner_id)
