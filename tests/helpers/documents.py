"""Office documents, PDFs and images made in the tests, in Chinese and English."""

import io
import zipfile

from PIL import Image


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("季度报告 Quarterly report", level=1)
    document.add_paragraph("收入增长了百分之十二。Revenue grew by twelve percent.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "地区 Region", "收入 Revenue"
    table.cell(1, 0).text, table.cell(1, 1).text = "华东 East", "42"
    document.add_paragraph("表格之后的结论。The conclusion after the table.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "销售 Sales"
    sheet.append(["产品 Product", "数量 Units"])
    sheet.append(["茶 Tea", 120])
    second = workbook.create_sheet("Notes")
    second.append(["备注: remember the 茶 order"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    import pptx

    presentation = pptx.Presentation()
    for title, body, notes in [
        ("第一页 First slide", "你好，世界 Hello world", "讲者备注 Speaker notes one"),
        ("Second slide", "The launch is on 五月 May 5", ""),
    ]:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def pdf_bytes(pages: list[str]) -> bytes:
    """A PDF with one line of (Latin) text per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def zip_bomb_docx(unpacked: int) -> bytes:
    """A .docx-shaped archive whose one member unpacks to `unpacked` bytes of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * unpacked)
    return out.getvalue()
