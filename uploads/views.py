from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, Count, Q, When
from django.http import FileResponse, HttpResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

import kimi
from kimichat.http import AuthenticatedRequest
from teams.models import Team
from uploads import background, services, tasks
from uploads.extract import ExtractError
from uploads.models import UploadedFile

SUGGESTIONS = 8
# The largest upload form with no file in it (the CSRF token, a team, the boundaries).
EMPTY_FORM_BYTES = 1024


def _get_file_for_user(request: AuthenticatedRequest, file_id: int) -> UploadedFile:
    """The one permission check: a file the user may not read is a 404, like a missing one."""
    return get_object_or_404(UploadedFile.objects.for_user(request.user), pk=file_id)


@login_required
@require_GET
def files(request: AuthenticatedRequest) -> HttpResponse:
    # One's own library; team libraries are on the teams' pages.
    ctx = {
        "files": UploadedFile.objects.filter(owner=request.user, team=None).defer("text"),
        "max_bytes": settings.UPLOAD_MAX_BYTES,
    }
    return render(request, "uploads/files.html", ctx)


@login_required
@require_POST
async def file_upload(request: AuthenticatedRequest) -> HttpResponse:
    """Take one or several files ("file" fields): each is checked and stored, and its text is
    read in the background; the page hears when it is ready. With a "team" field the files
    go to that team's library (its members only). From the composer (an htmx request) the
    answer is each file's chip, or a refused chip and why, shown above the composer; from the
    Files page's or a team page's form, a redirect back to it."""
    user = await request.auser()
    try:
        # Parsed off the event loop: a large body takes a while, and live answers share it.
        post = await sync_to_async(_parsed, thread_sensitive=False)(request)
    except MultiPartParserError:
        why = _("This upload could not be read. If a file's name is very long, shorten it.")
        return await _refused(request, [("", why)])
    team = None
    if post.get("team"):
        team = await Team.objects.for_user(user).filter(pk=_int(str(post["team"]))).afirst()
        if team is None:
            return HttpResponse(status=404)
    saved, refused = await sync_to_async(_save_uploads, thread_sensitive=False)(request, user, team)
    for item in saved:
        if item.read_needed:
            background.start(tasks.read_file_enqueue, item.file.pk)
    if not request.htmx:
        await sync_to_async(_flash)(request, saved, refused)
        return redirect(team or "files")
    ctx = {"files": [item.file for item in saved], "refused": refused}
    if post.get("into") == "list":
        # The Files page's or a team page's form, through htmx (with its progress bar): the
        # new rows go on top of its list, and their status changes live.
        return await sync_to_async(render)(request, "uploads/_uploaded_rows.html", ctx)
    return await sync_to_async(render)(
        request, "uploads/_uploaded.html", ctx, status=400 if refused else 200
    )


def _parsed(request: AuthenticatedRequest) -> QueryDict:
    request.FILES  # noqa: B018 (reading them parses the body, files and fields alike)
    return request.POST


async def _refused(request: AuthenticatedRequest, refused: list[tuple[str, str]]) -> HttpResponse:
    if not request.htmx:
        await sync_to_async(_flash)(request, [], refused)
        return redirect("files")
    ctx = {"files": [], "refused": refused}
    return await sync_to_async(render)(request, "uploads/_uploaded.html", ctx, status=400)


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _save_uploads(
    request: AuthenticatedRequest, user, team: Team | None
) -> tuple[list[services.Saved], list[tuple[str, str]]]:
    """The files saved, and (name, why) for each one refused ("" for no file at all)."""
    saved, refused = [], []
    uploads = request.FILES.getlist("file")
    if not uploads and int(request.META.get("CONTENT_LENGTH") or 0) > EMPTY_FORM_BYTES:
        # Bytes came, but no file could be taken from them: a name that is not UTF-8.
        why = _("No file could be read from this upload: is its name in UTF-8? Rename it.")
        refused.append(("", why))
    elif not uploads:
        refused.append(("", _("Choose a file to upload.")))
    for upload in uploads:
        try:
            saved.append(services.file_create(owner=user, upload=upload, team=team))
        except ExtractError as e:
            name = upload.name or ""
            refused.append((name, refusal(name, e.detail)))
    return saved, refused


def refusal(name: str, reason: str) -> str:
    return _("“%(name)s” was not uploaded: %(reason)s") % {"name": name, "reason": reason}


def _flash(request: AuthenticatedRequest, saved: list, refused: list[tuple[str, str]]) -> None:
    for _name, error in refused:
        messages.error(request, error)
    if saved:
        messages.success(
            request,
            _("Uploaded: %(names)s. Reading them now.")
            % {"names": ", ".join(item.file.name for item in saved)},
        )


@login_required
@require_GET
def file_download(request: AuthenticatedRequest, file_id: int) -> FileResponse:
    return _serve(_get_file_for_user(request, file_id), attachment=True)


@login_required
@require_GET
def file_view(request: AuthenticatedRequest, file_id: int) -> FileResponse:
    """A source of an answer, opened in the browser: PDFs (at the page, from the link's
    #page=) and images inline; anything else, which could hold script, is downloaded."""
    file = _get_file_for_user(request, file_id)
    inline = file.kind in (UploadedFile.Kind.PDF, UploadedFile.Kind.IMAGE)
    return _serve(file, attachment=not inline)


def _serve(file: UploadedFile, *, attachment: bool) -> FileResponse:
    return FileResponse(
        file.file.open("rb"),
        as_attachment=attachment,
        filename=file.name,
        content_type=file.content_type,
    )


@login_required
@require_POST
def file_delete(request: AuthenticatedRequest, file_id: int) -> HttpResponse:
    file = _get_file_for_user(request, file_id)  # unreadable: a 404
    if not UploadedFile.objects.deletable_by(request.user).filter(pk=file.pk).exists():
        return HttpResponse(status=403)  # a team file, readable but not theirs to delete
    services.file_delete(file=file)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, _("Deleted “%(name)s”.") % {"name": file.name})
    return redirect(file.team or "files")


@login_required
@require_GET
def file_suggest(request: AuthenticatedRequest) -> HttpResponse:
    """The composer's `@` suggestions, as listbox options: the user's teams (a whole library)
    and files, own and teams', whose names contain what was typed."""
    query = request.GET.get("q", "").strip()
    teams = Team.objects.for_user(request.user).annotate(count=Count("files"))
    found = (
        UploadedFile.objects.for_user(request.user)
        .select_related("team")
        .only("id", "name", "kind", "size", "team__name")
    )
    if query:
        teams = teams.filter(Q(name__icontains=query) | Q(slug__icontains=query))
        # Names that start with what was typed first, then those with a word that does.
        found = found.filter(name__icontains=query).order_by(
            Case(
                When(name__istartswith=query, then=0),
                When(
                    Q(name__icontains=f" {query}")
                    | Q(name__icontains=f"-{query}")
                    | Q(name__icontains=f"_{query}"),
                    then=1,
                ),
                default=2,
            ),
            "-created_at",
            "-id",
        )
    shown = list(teams[:SUGGESTIONS])
    ctx = {"teams": shown, "files": found[: SUGGESTIONS - len(shown)]}
    return render(request, "uploads/_suggestions.html", ctx)


@login_required
@require_POST
async def file_read_with_kimi(request: AuthenticatedRequest, file_id: int) -> HttpResponse:
    """Offered for a PDF without a text layer when a Kimi key is configured: Kimi's
    file-extract reads it (with OCR)."""
    user = await request.auser()
    file = await UploadedFile.objects.for_user(user).filter(pk=file_id).afirst()
    if file is None:
        return HttpResponse(status=404)
    if file.error_code == "no_text" and kimi.is_configured():
        await sync_to_async(services.file_update)(
            file=file, status=UploadedFile.Status.PROCESSING, error_code="", error=""
        )
        background.start(tasks.read_file_with_kimi.enqueue, file.pk)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("files")


def team_library(request: AuthenticatedRequest, team: Team) -> dict[str, Any]:
    """A team's library, as its page shows it (teams/views.py: team_section)."""
    files = UploadedFile.objects.filter(team=team).select_related("owner").defer("text")
    deletable = set(files.deletable_by(request.user).values_list("pk", flat=True))
    return {
        "template": "uploads/_team_library.html",
        "files": [(f, f.pk in deletable) for f in files],
    }
