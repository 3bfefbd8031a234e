"""PDFs for the parser tests, rendered at test time with fpdf2 (no binary fixtures committed).

`render_letter_pdf` lays a text letter out the way Ofsted's PDFs are: a letterhead on the first
page, a running header on every page, "Page N of M" footers, and an optional forced page break
in the middle of a finding. The bad PDFs (encrypted, image-only, truncated) come from here too.
"""

from __future__ import annotations

import io

from fpdf import FPDF

LETTERHEAD = (
    "Alexandra House 33 Kingsway London WC2B 6SE T 08456 404040 enquiries@ofsted.gov.uk www.ofsted.gov.uk",
    "Direct T 0117 945 6333",
    "Direct F 0117 945 6554",
)
PAGE_BREAK = "<<page break>>"  # put this inside a line of the letter to break the page there


class _LetterPDF(FPDF):
    running_header: str | None = None
    page_footer: bool = True
    first_page_footer: str | None = None  # e.g. Ofsted's address at the foot of page 1 only

    def header(self) -> None:
        if self.running_header:
            self.set_font("Helvetica", "", 8)
            self.cell(0, 5, self.running_header, align="R", new_x="LMARGIN", new_y="NEXT")
            self.ln(3)

    def footer(self) -> None:
        if self.first_page_footer and self.page_no() == 1:
            self.set_y(-20)
            self.set_font("Helvetica", "", 7)
            self.cell(0, 4, self.first_page_footer, align="C")
        if self.page_footer:
            self.set_y(-15)
            self.set_font("Helvetica", "", 8)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")


def _new_pdf(running_header: str | None = None, footer: bool = True,
             first_page_footer: str | None = None) -> _LetterPDF:
    pdf = _LetterPDF(format="A4")
    pdf.running_header = running_header
    pdf.page_footer = footer
    pdf.first_page_footer = first_page_footer
    pdf.core_fonts_encoding = "windows-1252"  # so the core font has • – ’
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(True, margin=26)
    pdf.set_margins(20, 15, 20)
    return pdf


def render_letter_pdf(
    text: str,
    *,
    letterhead: bool = True,
    running_header: str | None = None,
    footer: bool = True,
    first_page_footer: str | None = None,
    font_size: float = 10.5,
) -> bytes:
    """The letter's lines as a PDF. Blank lines become vertical space (PDF text has none)."""
    pdf = _new_pdf(running_header, footer, first_page_footer)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    if letterhead:
        pdf.set_font("Helvetica", "B", 18)
        pdf.cell(0, 9, "Ofsted", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 7)
        for line in LETTERHEAD:
            pdf.multi_cell(width, 3.5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(5)
    pdf.set_font("Helvetica", "", font_size)
    lh = font_size * 0.5
    for line in text.splitlines():
        if not line.strip():
            pdf.ln(lh * 0.6)
            continue
        before, brk, after = line.partition(PAGE_BREAK)
        bullet = before[:2] if before[:2] in ("- ", "\u2022 ") else ""
        if bullet:
            pdf.cell(6, lh, "\u2022")
            pdf.multi_cell(width - 6, lh, before[2:].strip(), new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.multi_cell(width, lh, before.strip(), new_x="LMARGIN", new_y="NEXT")
        if brk:
            pdf.add_page()
            pdf.set_x(pdf.l_margin + (6 if bullet else 0))
            pdf.multi_cell(width - (6 if bullet else 0), lh, after.strip(), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def encrypted_pdf(text: str) -> bytes:
    """A letter that needs a password to open."""
    pdf = _new_pdf()
    pdf.set_encryption(owner_password="owner-secret", user_password="user-secret")
    pdf.add_page()
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def image_only_pdf() -> bytes:
    """A 'scanned' letter: a grey picture and a drawn box, no text layer."""
    from PIL import Image  # fpdf2's own dependency

    pdf = _new_pdf(footer=False)
    pdf.add_page()
    buf = io.BytesIO()
    Image.new("L", (200, 280), color=200).save(buf, format="PNG")
    pdf.image(buf, x=20, y=20, w=120)
    pdf.rect(15, 15, 180, 260)
    pdf.add_page()
    pdf.rect(30, 30, 50, 50, style="F")
    return bytes(pdf.output())
