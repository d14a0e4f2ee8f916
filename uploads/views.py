from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from kimichat import kimi
from uploads import background, services, tasks
from uploads.extract import ExtractError
from uploads.models import UploadedFile

SUGGESTIONS = 8


def _get_file_for_user(request: HttpRequest, file_id: int) -> UploadedFile:
    """The one permission check: a file the user may not read is a 404, like a missing one."""
    return get_object_or_404(UploadedFile.objects.for_user(request.user), pk=file_id)


@login_required
@require_GET
def files(request: HttpRequest) -> HttpResponse:
    ctx = {
        "files": UploadedFile.objects.for_user(request.user).defer("text"),
        "max_bytes": settings.UPLOAD_MAX_BYTES,
    }
    return render(request, "uploads/files.html", ctx)


@login_required
@require_POST
async def file_upload(request: HttpRequest) -> HttpResponse:
    """Take one or several files ("file" fields): each is checked and stored, and its text is
    read in the background; the page hears when it is ready. From the composer (which asks
    for JSON) the answer is each file's chip or why it was refused; from the Files page's
    form, a redirect back to it."""
    user = await request.auser()
    saved, errors = await sync_to_async(_save_uploads, thread_sensitive=False)(request, user)
    for item in saved:
        if item.read_needed:
            background.start(tasks.read_file, item.file.pk)
    if "application/json" not in request.headers.get("Accept", ""):
        await sync_to_async(_flash)(request, saved, errors)
        return redirect("files")
    chips = [
        {
            "id": item.file.pk,
            "name": item.file.name,
            "html": render_to_string(
                "uploads/_file_chip.html", {"file": item.file, "removable": True}, request
            ),
        }
        for item in saved
    ]
    return JsonResponse({"files": chips, "errors": errors}, status=400 if errors else 200)


def _save_uploads(request: HttpRequest, user) -> tuple[list[services.Saved], list[str]]:
    saved, errors = [], []
    uploads = request.FILES.getlist("file")
    if not uploads:
        errors.append(_("Choose a file to upload."))
    for upload in uploads:
        try:
            saved.append(services.file_create(owner=user, upload=upload))
        except ExtractError as e:
            errors.append(refusal(upload.name, e.detail))
    return saved, errors


def refusal(name: str, reason: str) -> str:
    return _("“%(name)s” was not uploaded: %(reason)s") % {"name": name, "reason": reason}


def _flash(request: HttpRequest, saved: list, errors: list[str]) -> None:
    for error in errors:
        messages.error(request, error)
    if saved:
        messages.success(
            request,
            _("Uploaded: %(names)s. Reading them now.")
            % {"names": ", ".join(item.file.name for item in saved)},
        )


@login_required
@require_GET
def file_download(request: HttpRequest, file_id: int) -> FileResponse:
    file = _get_file_for_user(request, file_id)
    return FileResponse(
        file.file.open("rb"),
        as_attachment=True,
        filename=file.name,
        content_type=file.content_type,
    )


@login_required
@require_POST
def file_delete(request: HttpRequest, file_id: int) -> HttpResponse:
    file = _get_file_for_user(request, file_id)
    services.file_delete(file=file)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, _("Deleted “%(name)s”.") % {"name": file.name})
    return redirect("files")


@login_required
@require_GET
def file_suggest(request: HttpRequest) -> JsonResponse:
    """Files for the composer's `@` suggestions: names containing what was typed."""
    query = request.GET.get("q", "").strip()
    found = UploadedFile.objects.for_user(request.user).only(
        "id", "name", "kind", "status", "size", "pages"
    )
    if query:
        found = found.filter(name__icontains=query)
    return JsonResponse(
        {
            "files": [
                {
                    "id": f.pk,
                    "name": f.name,
                    "reference": f.reference,
                    "detail": f"{f.get_kind_display()} · {filesizeformat(f.size)}",
                    "status": f.status,
                }
                for f in found[:SUGGESTIONS]
            ]
        }
    )


@login_required
@require_POST
async def file_read_with_kimi(request: HttpRequest, file_id: int) -> HttpResponse:
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
        background.start(tasks.read_file_with_kimi, file.pk)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("files")
