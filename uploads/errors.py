"""Why a file is refused or could not be read: the codes saved with a file, and their text in
the reader's language."""

from django.utils.translation import gettext_lazy as _

# Why a file is refused or could not be read, by code; shown in the reader's language.
ERRORS = {
    "type": _(
        "this type of file is not supported. Upload PDF, Word (.docx), Excel (.xlsx), "
        "PowerPoint (.pptx), text, Markdown, CSV, JSON, HTML, source code or images "
        "(PNG, JPEG, WebP, GIF)."
    ),
    "legacy": _(
        "old Office formats (.doc, .xls, .ppt) cannot be read. Save it as .docx, .xlsx or "
        ".pptx and upload that."
    ),
    "mismatch": _("its content does not match its name: it is not really a %(kind)s file."),
    "too_large": _("it is larger than %(limit)s, the most allowed."),
    "empty": _("it is empty."),
    "encrypted": _("it is protected by a password. Remove the password and upload it again."),
    "no_text": _(
        "it has no text layer: it is a scan or pictures of text, which KimiChat cannot read "
        "by itself."
    ),
    "corrupt": _("it is damaged and cannot be read."),
    "bomb": _("it unpacks to more than %(limit)s, the most allowed."),
    "timeout": _("reading it took longer than %(seconds)s seconds, the most allowed."),
    "memory": _("reading it needs more than %(limit)s of memory, the most allowed."),
    "pixels": _("the image is larger than %(limit)s pixels, the most allowed."),
    "interrupted": _("reading it stopped when KimiChat restarted. Upload it again."),
    "ocr": _("Kimi could not read its text."),
    "storage": _(
        "your files would take more than %(limit)s, the most allowed. Delete files you no "
        "longer need, then upload it again."
    ),
    "count": _(
        "you have %(count)s files, the most allowed. Delete files you no longer need, then "
        "upload it again."
    ),
}


class ExtractError(Exception):
    """A file refused or unreadable: `code` is one of ERRORS."""

    def __init__(self, code: str, **params) -> None:
        super().__init__(code)
        self.code, self.params = code, params

    @property
    def detail(self) -> str:
        return str(ERRORS[self.code] % self.params) if self.params else str(ERRORS[self.code])


def error_text(code: str, detail: str = "") -> str:
    """A saved error, in the reader's language; `detail` when the code takes parameters."""
    if detail or code not in ERRORS:
        return detail
    return str(ERRORS[code])
