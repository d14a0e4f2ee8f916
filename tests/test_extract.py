"""Reading text out of real-world PDFs and of Office files made here, in Chinese and English."""

import io
import re
from pathlib import Path

import pytest

from tests.helpers import documents
from uploads.errors import ExtractError
from uploads.extract import check, extract

# Real-world PDFs with their licence and sources (tests/data/README.md).
TESTDATA = Path(__file__).resolve().parent / "data" / "pdf"


def read(tmp_path, name: str, data: bytes):
    checked = check(name, io.BytesIO(data), len(data))
    path = tmp_path / name
    path.write_bytes(data)
    return extract(str(path), checked.kind)


def refusal(name: str, data: bytes) -> str:
    with pytest.raises(ExtractError) as refused:
        check(name, io.BytesIO(data), len(data))
    return refused.value.code


@pytest.mark.parametrize(
    ("name", "pages", "found"),
    [
        ("pdflatex-4-pages.pdf", 4, "Hello, here is some text without a meaning"),
        ("multicolumn.pdf", 3, "Two-Column Document with Lorem Ipsum"),
        ("GeoTopo-komprimiert.pdf", 117, "Geometrie und Topologie"),
        ("habibi.pdf", 1, "habibi"),
        ("google-doc-document.pdf", 1, "Beautiful is better than ugly."),
        ("crazyones-pdfa.pdf", 1, "Heres to the crazy ones"),
    ],
)
def test_real_pdfs_give_their_text_with_page_markers(tmp_path, name, pages, found):
    data = (TESTDATA / name).read_bytes()
    extracted = read(tmp_path, name, data)
    assert extracted.pages == pages
    assert found in extracted.text
    assert extracted.text.startswith("[Page 1]\n")
    assert f"[Page {pages}]" in extracted.text


def test_arabic_text_comes_through_as_arabic_letters(tmp_path):
    text = read(tmp_path, "habibi.pdf", (TESTDATA / "habibi.pdf").read_bytes()).text
    assert re.search("[\u0621-\u064a]{3}", text)


def test_a_multi_page_pdf_keeps_each_pages_text_under_its_marker(tmp_path):
    data = documents.pdf_bytes(["alpha on one", "beta on two", "gamma on three"])
    text = read(tmp_path, "three.pdf", data).text
    assert text.index("[Page 2]") < text.index("beta on two") < text.index("[Page 3]")


def test_an_encrypted_pdf_is_refused_at_upload():
    data = (TESTDATA / "libreoffice-writer-password.pdf").read_bytes()
    assert refusal("secret.pdf", data) == "encrypted"


def test_a_pdf_of_images_has_no_text_layer(tmp_path):
    with pytest.raises(ExtractError) as failed:
        read(tmp_path, "scan.pdf", (TESTDATA / "imagemagick-images.pdf").read_bytes())
    assert failed.value.code == "no_text"


def test_word_paragraphs_and_tables_come_in_document_order(tmp_path):
    text = read(tmp_path, "report.docx", documents.docx_bytes()).text
    assert text.startswith("# 季度报告 Quarterly report")
    order = [
        "收入增长了百分之十二。Revenue grew by twelve percent.",
        "| 地区 Region | 收入 Revenue |",
        "| 华东 East | 42 |",
        "表格之后的结论。The conclusion after the table.",
    ]
    assert [text.index(line) for line in order] == sorted(text.index(line) for line in order)


def test_each_excel_sheet_is_a_table(tmp_path):
    extracted = read(tmp_path, "sales.xlsx", documents.xlsx_bytes())
    assert extracted.pages == 2
    assert "[Sheet: 销售 Sales]\n| 产品 Product | 数量 Units |\n| 茶 Tea | 120 |" in extracted.text
    assert "[Sheet: Notes]\n| 备注: remember the 茶 order |" in extracted.text


def test_powerpoint_slides_give_their_text_and_notes(tmp_path):
    extracted = read(tmp_path, "deck.pptx", documents.pptx_bytes())
    assert extracted.pages == 2
    first, second = extracted.text.split("[Slide 2]")
    assert "第一页 First slide" in first and "你好，世界 Hello world" in first
    assert "Notes: 讲者备注 Speaker notes one" in first
    assert "The launch is on 五月 May 5" in second


def test_text_in_a_legacy_chinese_encoding_is_decoded(tmp_path):
    text = "这是一个用国标码保存的文件。我们的季度会议在星期三下午三点举行，请准时参加。\n" * 4
    extracted = read(tmp_path, "notes.txt", text.encode("gb18030"))
    assert "季度会议在星期三下午三点举行" in extracted.text


def test_html_gives_its_text_without_markup_or_scripts(tmp_path):
    page = b"<html><script>alert(1)</script><h1>Title &amp; more</h1><p>Body text</p></html>"
    text = read(tmp_path, "page.html", page).text
    assert "Title & more" in text and "Body text" in text
    assert "<" not in text and "alert" not in text


def test_reading_stops_at_the_page_cap_and_says_so(tmp_path, settings):
    settings.EXTRACT_MAX_PAGES = 2
    extracted = read(tmp_path, "long.pdf", documents.pdf_bytes(["one", "two", "three", "four"]))
    assert extracted.pages == 4
    assert "[Page 2]" in extracted.text and "[Page 3]" not in extracted.text
    assert "Pages 3–4 were not read" in extracted.text


def test_reading_past_the_time_cap_fails(tmp_path, settings):
    settings.EXTRACT_TIMEOUT = 0.000001
    with pytest.raises(ExtractError) as failed:
        read(tmp_path, "slow.pdf", documents.pdf_bytes(["one", "two"]))
    assert failed.value.code == "timeout"


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("program.exe", b"MZ\x90\x00", "type"),
        ("invoice.pdf", b"\x7fELF\x02\x01\x01" + b"\0" * 64, "mismatch"),
        ("notes.txt", b"\x7fELF\x02\x01\x01" + b"\0" * 64, "mismatch"),
        ("photo.png", b"not a picture at all", "mismatch"),
        ("report.docx", b"plain text pretending", "mismatch"),
        ("report.docx", b"PK\x03\x04 truncated archive", "corrupt"),
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy"),
        ("empty.txt", b"", "empty"),
        ("damaged.pdf", b"%PDF-1.7\n garbage", "corrupt"),
    ],
)
def test_bad_files_are_refused_by_content_not_by_name(name, data, code):
    assert refusal(name, data) == code


def test_a_zip_bomb_is_refused(settings):
    settings.UPLOAD_MAX_UNPACKED_BYTES = 1024 * 1024
    assert refusal("bomb.docx", documents.zip_bomb_docx(5 * 1024 * 1024)) == "bomb"


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.UPLOAD_MAX_BYTES = 10
    assert refusal("big.txt", b"more than ten bytes") == "too_large"


def test_a_damaged_office_file_fails_to_read(tmp_path):
    data = documents.zip_bomb_docx(100)  # the right shape, but no Word document inside
    with pytest.raises(ExtractError) as failed:
        read(tmp_path, "broken.docx", data)
    assert failed.value.code == "corrupt"
