"""File → text: what an upload is (checked by content, not by name), and its text with page,
sheet and slide markers. Pure functions over local files, run off the event loop."""

import codecs
import html
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import nh3
from charset_normalizer import from_bytes
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from uploads.errors import ExtractError
from uploads.kinds import Kind

# Called between pages (sheets, slides): raises ExtractError("timeout") past the deadline.
InTime = Callable[[], None]

PDF = {".pdf"}
OFFICE = {".docx": Kind.DOCX, ".xlsx": Kind.XLSX, ".pptx": Kind.PPTX}
OFFICE_PART: dict[str, str] = {Kind.DOCX: "word/document.xml", Kind.XLSX: "xl/", Kind.PPTX: "ppt/"}
LEGACY_OFFICE = {".doc", ".xls", ".ppt", ".docm", ".xlsm", ".pptm"}
IMAGES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
HTML = {".html", ".htm", ".xhtml"}
TEXT = {
    # Documents and data
    *(
        ".txt .text .md .markdown .rst .csv .tsv .json .jsonl .xml .yaml .yml .toml .ini .cfg"
        " .conf .log .tex .srt .vtt .env .properties".split()
    ),
    # Source code
    *(
        ".py .pyi .js .mjs .cjs .ts .tsx .jsx .java .kt .kts .scala .go .rs .c .h .cc .cpp .cxx"
        " .hpp .cs .m .mm .swift .rb .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hs .ml .clj"
        " .sh .bash .zsh .fish .ps1 .bat .sql .css .scss .sass .less .vue .svelte .graphql .proto"
        " .gradle .cmake .dockerfile .tf .nix .zig .v .sol .ipynb".split()
    ),
    *HTML,
}
KNOWN = PDF | set(IMAGES) | set(OFFICE) | LEGACY_OFFICE | TEXT
# Files named by convention rather than by extension.
TEXT_NAMES = {"makefile", "dockerfile", "readme", "license", "changelog", "gemfile", "procfile"}
# Starts of files that are never text, whatever their name says.
BINARY_MAGIC = (
    b"\x7fELF",
    b"MZ",
    b"PK\x03\x04",
    b"%PDF-",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\xca\xfe\xba\xbe",
    b"\xcf\xfa\xed\xfe",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
    b"\xd0\xcf\x11\xe0",
)
# Characters that are never text (PDFs use some as glyph placeholders); tabs and newlines stay.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SPREADSHEET_MAX_ROWS = 5000
SPREADSHEET_MAX_COLUMNS = 100


@dataclass
class Checked:
    kind: str
    content_type: str


@dataclass
class Extracted:
    text: str
    pages: int  # pages, sheets or slides; 0 where a format has none


def check(name: str, f: BinaryIO, size: int) -> Checked:
    """What an upload really is, from its name and its first bytes; raises ExtractError for a
    file that must be refused. Cheap: nothing is read beyond the headers."""
    extension = os.path.splitext(name)[1].lower()
    if size > settings.UPLOAD_MAX_BYTES:
        raise ExtractError("too_large", limit=filesizeformat(settings.UPLOAD_MAX_BYTES))
    if size == 0:
        raise ExtractError("empty")
    f.seek(0)
    head = f.read(8192)
    f.seek(0)
    if extension in PDF:
        if b"%PDF-" not in head[:1024]:
            raise ExtractError("mismatch", kind="PDF")
        _check_pdf(f)
        return Checked(Kind.PDF, "application/pdf")
    if extension in OFFICE:
        kind = OFFICE[extension]
        _check_office(f, kind, head)
        return Checked(kind, _OFFICE_TYPES[kind])
    if extension in IMAGES:
        return Checked(Kind.IMAGE, _check_image(f, extension))
    if extension in LEGACY_OFFICE:
        raise ExtractError("legacy")
    if extension in TEXT or os.path.basename(name).lower() in TEXT_NAMES:
        if head.startswith(BINARY_MAGIC) or not _looks_like_text(head):
            raise ExtractError("mismatch", kind=_("text"))
        return Checked(Kind.TEXT, "text/html" if extension in HTML else "text/plain")
    raise ExtractError("type")


def _looks_like_text(head: bytes) -> bool:
    # UTF-8 first: the head may end inside a character, which charset-normalizer takes for
    # binary (a long Chinese file was refused). NULs say UTF-16, or binary: it decides those.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        if b"\x00" not in head:
            return True
    except UnicodeDecodeError:
        pass
    return from_bytes(head).best() is not None


_OFFICE_TYPES = {
    Kind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    Kind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Kind.PPTX: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def _check_pdf(f: BinaryIO) -> None:
    import pypdfium2

    try:
        pypdfium2.PdfDocument(f).close()
    except pypdfium2.PdfiumError as e:
        if getattr(e, "err_code", None) == pypdfium2.raw.FPDF_ERR_PASSWORD:
            raise ExtractError("encrypted") from e
        raise ExtractError("corrupt") from e
    finally:
        f.seek(0)


def _check_office(f: BinaryIO, kind: str, head: bytes) -> None:
    if not head.startswith(b"PK\x03\x04"):
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            # An encrypted Office file is an OLE container, like the old formats.
            raise ExtractError("encrypted" if b"E\x00n\x00c\x00r\x00y" in head else "legacy")
        raise ExtractError("mismatch", kind=Kind(kind).label)
    try:
        with zipfile.ZipFile(f) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ExtractError("corrupt") from e
    finally:
        f.seek(0)
    names = [m.filename for m in members]
    if "[Content_Types].xml" not in names:
        raise ExtractError("mismatch", kind=Kind(kind).label)
    if not any(n.startswith(OFFICE_PART[kind]) for n in names):
        raise ExtractError("mismatch", kind=Kind(kind).label)
    # Sizes come from the archive's directory; zipfile stops reading a member at its stated
    # size, so an archive cannot unpack to more than this by lying about them.
    if sum(m.file_size for m in members) > settings.UPLOAD_MAX_UNPACKED_BYTES:
        raise ExtractError("bomb", limit=filesizeformat(settings.UPLOAD_MAX_UNPACKED_BYTES))


def _check_image(f: BinaryIO, extension: str) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as image:
            image_format = image.format
            image.verify()
    except Image.DecompressionBombError as e:
        # Pillow refuses past twice its warning size (~179 million pixels).
        raise ExtractError("pixels", limit=f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,}") from e
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ExtractError("mismatch", kind=IMAGES[extension]) from e
    finally:
        f.seek(0)
    if image_format not in IMAGE_TYPES:
        raise ExtractError("mismatch", kind=IMAGES[extension])
    return IMAGE_TYPES[image_format]


def extract(path: str, kind: str, *, timeout: float | None = None) -> Extracted:
    """The text of a checked file. Stops at EXTRACT_MAX_PAGES pages (saying so in the text)
    and raises ExtractError("timeout") past `timeout` seconds."""
    timeout = settings.EXTRACT_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout

    def in_time() -> None:
        if time.monotonic() > deadline:
            raise ExtractError("timeout", seconds=f"{timeout:g}")

    readers: dict[str, Callable[[str, InTime], Extracted]] = {
        Kind.PDF: _pdf,
        Kind.DOCX: _docx,
        Kind.XLSX: _xlsx,
        Kind.PPTX: _pptx,
        Kind.TEXT: _text,
        Kind.IMAGE: lambda path, in_time: Extracted("", 0),
    }
    try:
        if kind in OFFICE_PART:
            _check_unpacked(path, in_time)
        return readers[kind](path, in_time)
    except (ExtractError, MemoryError):
        raise
    except Exception as e:
        if _out_of_memory(e):
            raise MemoryError from e
        # Each library fails in its own words on a damaged file; to the user it is damaged.
        raise ExtractError("corrupt") from e


def _out_of_memory(e: Exception) -> bool:
    # libxml2 (through lxml) reports an allocation that failed as an "unknown error".
    message = str(e).lower()
    return "memory" in message or (type(e).__name__ == "XMLSyntaxError" and "unknown" in message)


def _check_unpacked(path: str, in_time: InTime) -> None:
    """Unpack every part of an Office file once, counting the bytes really produced (a part
    may claim less than it holds): over UPLOAD_MAX_UNPACKED_BYTES, the file is refused
    before a library inflates any part whole; a part that lies about its size is damaged."""
    limit = settings.UPLOAD_MAX_UNPACKED_BYTES
    total = 0
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            with archive.open(member) as part:
                while chunk := part.read(1 << 20):
                    total += len(chunk)
                    if total > limit:
                        raise ExtractError("bomb", limit=filesizeformat(limit))
                    in_time()


def _pdf(path: str, in_time: InTime) -> Extracted:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as e:
        if getattr(e, "err_code", None) == pypdfium2.raw.FPDF_ERR_PASSWORD:
            raise ExtractError("encrypted") from e
        raise
    try:
        count = len(pdf)
        read = min(count, settings.EXTRACT_MAX_PAGES)
        parts, found = [], False
        for number in range(read):
            in_time()
            page = pdf[number]
            textpage = page.get_textpage()
            text = textpage.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
            textpage.close()
            page.close()
            text = tidy(text)
            found = found or bool(text)
            parts.append(f"[Page {number + 1}]\n{text}")
    finally:
        pdf.close()
    if not found:
        raise ExtractError("no_text")
    if read < count:
        parts.append(f"[Pages {read + 1}–{count} were not read: at most {read} pages are.]")
    return Extracted("\n\n".join(parts), count)


def _docx(path: str, in_time: InTime) -> Extracted:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(path)
    lines = []
    # Paragraphs and tables in the order they appear.
    for element in document.element.body.iterchildren():
        in_time()
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = paragraph.text.strip()
            style = paragraph.style.name if paragraph.style is not None else ""
            level = re.match(r"Heading (\d)", style or "")
            if text and level:
                text = "#" * int(level.group(1)) + " " + text
            lines.append(text)
        elif tag == "tbl":
            for row in Table(element, document).rows:
                lines.append(_table(_cell_text(c) for c in row.cells))
    return Extracted(tidy("\n".join(lines)), 0)


def _cell_text(cell) -> str:
    return " ".join(cell.text.split())


def _table(cells: Iterator[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _xlsx(path: str, in_time: InTime) -> Extracted:
    """Each sheet as a table, until SPREADSHEET_MAX_ROWS rows with text in all: reading stops
    there (a sheet of 200,000 rows is not read to its end), saying which rows were left out."""
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    parts = []
    budget = SPREADSHEET_MAX_ROWS
    try:
        for sheet in workbook.worksheets:
            if budget == 0:
                parts.append(f"[Sheet: {sheet.title}]\n{_rows_left(1, sheet.max_row)}")
                continue
            rows, stopped_at = _sheet_rows(sheet, budget, in_time)
            budget -= len(rows)
            if stopped_at:
                rows.append(_rows_left(stopped_at, sheet.max_row))
            parts.append(f"[Sheet: {sheet.title}]\n" + "\n".join(rows))
        count = len(workbook.worksheets)
    finally:
        workbook.close()
    return Extracted("\n\n".join(parts), count)


def _sheet_rows(sheet, budget: int, in_time: InTime) -> tuple[list[str], int]:
    """The sheet's rows with text, as table lines, at most `budget` of them; and the number of
    the first row not read (0 when the sheet was read to its end)."""
    rows: list[str] = []
    for number, row in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1):
        in_time()
        if len(rows) == budget:
            return rows, number
        values = ["" if v is None else str(v) for v in row[:SPREADSHEET_MAX_COLUMNS]]
        if any(v.strip() for v in values):
            rows.append(_table(" ".join(v.split()) for v in values))
    return rows, 0


def _rows_left(first: int, last: int | None) -> str:
    # The sheet's size as its file states it (a spreadsheet program writes it), if it does.
    cap = SPREADSHEET_MAX_ROWS
    if last is not None and last >= first:
        return f"[Rows {first}–{last} were not read: at most {cap} rows of a workbook are.]"
    return f"[The rows from row {first} on were not read: at most {cap} rows of a workbook are.]"


def _pptx(path: str, in_time: InTime) -> Extracted:
    import pptx

    presentation = pptx.Presentation(path)
    parts = []
    for number, slide in enumerate(presentation.slides, 1):
        in_time()
        lines = list(_shape_texts(slide.shapes))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                lines.append("Notes: " + notes.text.strip())
        parts.append(f"[Slide {number}]\n" + "\n".join(lines))
    return Extracted(tidy("\n\n".join(parts)), len(parts))


def _shape_texts(shapes) -> Iterator[str]:
    for shape in shapes:
        if shape.shape_type == 6:  # a group: its shapes, in order
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                yield _table(_cell_text(c) for c in row.cells)
        elif getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
            yield shape.text_frame.text.strip()


def _text(path: str, in_time: InTime) -> Extracted:
    with open(path, "rb") as f:
        data = f.read()
    best = from_bytes(data).best()
    if best is None:
        raise ExtractError("corrupt")
    text = str(best)
    if os.path.splitext(path)[1].lower() in HTML:
        text = html.unescape(nh3.clean(text, tags=set()))
    return Extracted(tidy(text), 0)


def tidy(text: str) -> str:
    """Trailing spaces and runs of blank lines go; the rest is kept as written."""
    text = CONTROL.sub("", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
