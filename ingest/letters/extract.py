"""Bytes -> plain text, for the letter parser. Pure: no file I/O, no network.

PDFs go through pypdfium2 (one string per page, pages joined by a form feed so the parser can
find repeated page headers and footers). Text files are decoded as UTF-8 (with or without a
byte-order mark), UTF-16 with a byte-order mark, or cp1252. Anything that cannot be read
raises `RejectedDocument` with a one-line reason.
"""

from __future__ import annotations

import codecs
import re

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.letters.models import RejectedDocument

MAX_PDF_PAGES = 50  # an inspection letter has 2-6 pages; more is not one of these letters

_PDF_MAGIC = b"%PDF-"
# C0 control characters other than tab, line feed, vertical tab, form feed, carriage return.
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def looks_like_pdf(data: bytes, filename: str) -> bool:
    """True when the bytes carry a PDF header, or the file name says PDF."""
    return _PDF_MAGIC in data[:1024] or filename.lower().endswith(".pdf")


def extract_pdf_text(data: bytes) -> str:
    """Text of every page, pages separated by form feeds. Rejects unreadable PDFs."""
    if _PDF_MAGIC not in data[:1024]:
        raise RejectedDocument("corrupt PDF: no %PDF header")
    if b"%%EOF" not in data[-2048:]:
        # PDFium would repair a cut-off file and hand back the pages it could find: half a letter
        raise RejectedDocument("corrupt PDF: truncated (no %%EOF marker at the end)")
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise RejectedDocument("encrypted PDF: a password is needed to open it") from None
        raise RejectedDocument("corrupt PDF: PDFium cannot open it") from None
    try:
        n_pages = len(doc)
        if n_pages > MAX_PDF_PAGES:
            raise RejectedDocument(f"PDF has {n_pages} pages; a letter has at most {MAX_PDF_PAGES}")
        pages = []
        for i in range(n_pages):
            page = doc.get_page(i)
            try:
                textpage = page.get_textpage()
                try:
                    pages.append(textpage.get_text_range())
                finally:
                    textpage.close()
            finally:
                page.close()
    except pdfium.PdfiumError:
        raise RejectedDocument("corrupt PDF: a page cannot be read") from None
    finally:
        doc.close()
    if not any(p.strip() for p in pages):
        raise RejectedDocument("PDF has no text layer (image-only or scanned)")
    return "\f".join(pages)


def decode_text(data: bytes) -> str:
    """Decode a text letter: UTF-8 (BOM or not), UTF-16 with BOM, else cp1252."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            text = data[3:].decode("utf-8")
        except UnicodeDecodeError:
            raise RejectedDocument("undecodable text: UTF-8 byte-order mark but invalid UTF-8") from None
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise RejectedDocument("undecodable text: UTF-16 byte-order mark but invalid UTF-16") from None
    elif b"\x00" in data:
        raise RejectedDocument("binary data, not a text letter")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise RejectedDocument("undecodable text: neither UTF-8 nor cp1252") from None
    n_binary = len(_BINARY_CHARS.findall(text))
    if n_binary and (n_binary > 8 or "\x00" in text):
        raise RejectedDocument("binary data, not a text letter")
    return text
