"""PDF letters, rendered at test time with fpdf2: letterhead, running headers, "Page N of M"
footers, a page break inside a finding; and PDFs the parser must refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _parse_support import LETTERHEAD, PAGE_BREAK, encrypted_pdf, image_only_pdf, render_letter_pdf
from fpdf import FPDF

from ingest.letters.models import RejectedDocument
from ingest.letters.parse import parse_document

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "letters"
BROKEN_FINDING = "Core assessments do not consistently analyse the impact of parental mental health on"


def _fixture(case: str) -> tuple[str, dict]:
    text = (FIXTURES / f"{case}.txt").read_bytes().decode("utf-8")
    expected = json.loads((FIXTURES / f"{case}.expected.json").read_text(encoding="utf-8"))
    return text, expected


def _as_printed(data: bytes, name: str = "letter.pdf") -> dict:
    return json.loads(json.dumps(parse_document(data, name).to_json()))


def _assert_matches(got: dict, expected: dict) -> None:
    assert got["source_format"] == "pdf"
    for key, value in expected.items():
        assert got[key] == value, key


@pytest.fixture(scope="module")
def plain() -> tuple[str, dict]:
    return _fixture("plain_utf8")


def _with_break_inside_finding(text: str) -> str:
    assert BROKEN_FINDING in text
    return text.replace(BROKEN_FINDING, BROKEN_FINDING + PAGE_BREAK)


def test_pdf_letter_with_letterhead_headers_footers_and_a_break_inside_a_finding(plain):
    text, expected = plain
    pdf = render_letter_pdf(
        _with_break_inside_finding(text),
        running_header="Wiltshire Council - unannounced inspection, March 2011",
    )
    got = _as_printed(pdf)
    _assert_matches(got, expected)
    # the finding cut by the page break is whole again, without the header or footer in it
    a1 = next(f for f in got["findings"] if f["text"].startswith("Core assessments"))
    assert a1["text"].endswith(
        "mental health on children, and so plans do not always address the risks identified."
    )


def test_pdf_letter_with_ofsted_address_in_the_first_page_footer(plain):
    """Ofsted's address sits at the foot of page 1, which falls between two findings."""
    text, expected = plain
    got = _as_printed(render_letter_pdf(
        _with_break_inside_finding(text), letterhead=False, first_page_footer=LETTERHEAD[0],
    ))
    _assert_matches(got, expected)


def test_pdf_letter_over_three_pages_small_pages(plain):
    """Large type: more pages, more headers and footers, breaks wherever the text reaches them."""
    text, expected = plain
    pdf = render_letter_pdf(text, running_header="Ofsted - contact, referral and assessment", font_size=16)
    got = _as_printed(pdf)
    assert got["findings"] == expected["findings"]
    assert got["copy_recipients"] == expected["copy_recipients"]
    assert got["letter_date"] == expected["letter_date"]


def test_pdf_letter_without_header_or_footer(plain):
    text, expected = plain
    got = _as_printed(render_letter_pdf(text, letterhead=False, footer=False))
    _assert_matches(got, expected)


def test_pdf_from_cp1252_letter_with_curly_quotes_and_bullets():
    data = (FIXTURES / "cp1252_curly_quotes.txt").read_bytes().decode("cp1252")
    expected = json.loads((FIXTURES / "cp1252_curly_quotes.expected.json").read_text(encoding="utf-8"))
    got = _as_printed(render_letter_pdf(data, running_header="Wiltshire Council"))
    _assert_matches(got, expected)


def test_pdf_letter_with_hyphenated_line_ends(plain):
    """fpdf2 breaks long words at a hyphen it is given; pdfium reports the break as U+FFFE."""
    text, expected = plain
    narrow = text.replace("consistent oversight", "consis-\ntent oversight")
    got = _as_printed(render_letter_pdf(narrow))
    assert got["findings"] == expected["findings"]


def test_pdf_detected_by_content_whatever_the_name(plain):
    text, expected = plain
    got = _as_printed(render_letter_pdf(text), name="letter.bin")
    _assert_matches(got, expected)


def test_owner_password_only_pdf_is_readable_and_parsed(plain):
    """Permissions-only encryption (no password to open) hides nothing: the letter is parsed."""
    text, expected = plain
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner-only")
    pdf.add_page()
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 4, text.replace("\u2013", "-"), new_x="LMARGIN", new_y="NEXT")
    got = _as_printed(bytes(pdf.output()))
    assert got["findings"] == expected["findings"]


# --- PDFs the parser refuses ------------------------------------------------------------------

def _reason(data: bytes, name: str = "letter.pdf") -> str:
    with pytest.raises(RejectedDocument) as err:
        parse_document(data, name)
    return err.value.reason


def test_encrypted_pdf_is_rejected(plain):
    assert _reason(encrypted_pdf(plain[0].replace("\u2013", "-"))) == (
        "encrypted PDF: a password is needed to open it"
    )


def test_image_only_pdf_is_rejected():
    assert _reason(image_only_pdf()) == "PDF has no text layer (image-only or scanned)"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_pdf_is_rejected(plain, keep):
    pdf = render_letter_pdf(plain[0])
    assert _reason(pdf[: int(len(pdf) * keep)]) == "corrupt PDF: truncated (no %%EOF marker at the end)"


def test_garbage_after_pdf_header_is_rejected():
    data = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
    assert _reason(data) == "corrupt PDF: PDFium cannot open it"


def test_pdf_of_another_kind_of_letter_is_rejected(plain):
    text = plain[0].replace(
        "Annual unannounced inspection of contact, referral and assessment arrangements within Wiltshire "
        "children's services",
        "Inspection of Wiltshire Council fostering agency",
    )
    assert _reason(render_letter_pdf(text)).startswith(
        "not a contact, referral and assessment inspection letter"
    )
