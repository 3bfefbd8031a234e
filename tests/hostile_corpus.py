"""A hostile inbox, built at test time: files an attacker (or a broken exporter) could drop
beside the real letters. Each attack is a small function writing its file(s); PDFs are written
in raw PDF syntax (no binaries committed). Used by tests/test_hostile*.py and
benchmarks/hostile_bench.py.

Every attack names what the loader must do with it: ``rejected`` (a row in
raw.rejected_documents whose reason contains ``expect``), ``skipped`` (never read: a manifest
row saying why) or ``none`` (nothing from outside the inbox may reach the archive).
"""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A well-formed PDF: numbered objects, a cross-reference table and a trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"", *, flate: bool = False) -> bytes:
    if flate:
        data = zlib.compress(data, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _page_pdf(content: bytes, resources: bytes = b"/Font << /F1 4 0 R >>", *,
              flate: bool = False, more: list[bytes] = ()) -> bytes:
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << %s >> /Contents 5 0 R >>"
        % resources,
        _FONT,
        stream(content, flate=flate),
        *more,
    ])


def self_drawing_xobject() -> bytes:
    """A form XObject whose content draws itself (twice), and the page draws it."""
    form = stream(b"q 0.5 0 0 0.5 0 0 cm /X0 Do Q q 0.5 0 0 0.5 300 0 cm /X0 Do Q BT /F1 9 Tf (x) Tj ET",
                  b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources 7 0 R")
    return _page_pdf(b"/X0 Do", b"/XObject << /X0 6 0 R >> /Font << /F1 4 0 R >>",
                     more=[form, b"<< /XObject << /X0 6 0 R >> /Font << /F1 4 0 R >> >>"])


def flate_bomb(inflated: int = 1536 * 1024 * 1024) -> bytes:
    """A page content stream that inflates from ~1.5 MB to `inflated` bytes of spaces."""
    data = _deflated_spaces(inflated >> 20)
    body = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
        b" /Contents 5 0 R >>",
        _FONT, body,
    ])


def _deflated_spaces(mebibytes: int) -> bytes:
    """A zlib stream of `mebibytes` MiB of spaces, built without compressing them all (that took
    seconds): each MiB is deflated after a full flush, which resets the compressor, so every MiB
    after the first compresses to the same bytes; those are repeated, then the stream is closed
    with an empty final block and the Adler-32 of all the spaces."""
    chunk = b" " * (1 << 20)
    comp = zlib.compressobj(9)
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)  # the zlib header, then MiB 1
    again = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(mebibytes):
        checksum = zlib.adler32(chunk, checksum)
    # an empty final block (fixed Huffman: BFINAL, BTYPE 01, end-of-block), then the checksum
    return first + again * (mebibytes - 1) + b"\x03\x00" + checksum.to_bytes(4, "big")


def many_pages_pdf(pages: int = 400) -> bytes:
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            stream(b"BT /F1 12 Tf 72 700 Td (Page) Tj ET"), _FONT]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
             b" /Contents 3 0 R >>"] * pages
    return pdf(objs)


def deep_nesting_pdf(depth: int = 200_000) -> bytes:
    return _page_pdf(b"BT /F1 12 Tf 72 700 Td (x) Tj ET", more=[b"[" * depth + b"]" * depth])


def pathological_text(size: int = 180 * 1024) -> bytes:
    """A text 'letter' whose introduction is built of the shapes that made the old regexes quadratic."""
    head = (b"12 March 2010\n\nDear Ms Smith\n\nAnnual unannounced inspection of contact, referral and "
            b"assessment arrangements within Sometown children's services\n\n")
    unit = b"children's services in the under section 12 of the " + b"x " * 20
    body = unit * (size // len(unit))
    return head + body + b"\n\nAreas for development\n\n- one.\n\nYours sincerely\n"


def binary_garbage(size: int = 300_000, seed: int = 1) -> bytes:
    return bytes((i * 2654435761 * seed >> 13) & 0xFF for i in range(size))


@dataclass(frozen=True)
class Attack:
    name: str  # file name in the inbox
    outcome: str  # rejected | skipped | outside
    expect: str  # a word the reason must contain
    write: Callable[[Path], None]


def _bytes(fn: Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(fn())


def _symlink_outside(p: Path) -> None:
    secret = p.parent.parent / "outside-secret.txt"
    secret.write_text("not for the archive: outside the inbox\n")
    p.symlink_to(secret)


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


def _oversized(p: Path) -> None:
    with open(p, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: costs no disk


ATTACKS: tuple[Attack, ...] = (
    Attack("self_xobject.pdf", "rejected", "exceeded", _bytes(self_drawing_xobject)),
    Attack("flate_bomb.pdf", "rejected", "exceeded", _bytes(flate_bomb)),
    Attack("nested_forms.pdf", "rejected", "exceeded", _bytes(lambda: nested_forms_pdf(5))),
    Attack("many_pages.pdf", "rejected", "pages", _bytes(many_pages_pdf)),
    Attack("deep_nesting.pdf", "rejected", "", _bytes(deep_nesting_pdf)),
    Attack("regex_pathological.txt", "rejected", "", _bytes(pathological_text)),
    Attack("garbage.pdf", "rejected", "PDF", _bytes(binary_garbage)),
    Attack("garbage.txt", "rejected", "binary", _bytes(lambda: binary_garbage(seed=7))),
    Attack("oversized.txt", "rejected", "too large", _oversized),
    Attack("link_outside.txt", "skipped", "symbolic link", _symlink_outside),
    Attack("a_fifo.txt", "skipped", "FIFO", _fifo),
    Attack("a_socket.txt", "skipped", "socket", _socket),
)


def build(inbox: Path, attacks: tuple[Attack, ...] = ATTACKS) -> list[Attack]:
    inbox.mkdir(parents=True, exist_ok=True)
    for a in attacks:
        a.write(inbox / a.name)
    return list(attacks)


def nested_forms_pdf(depth: int = 6, fanout: int = 10) -> bytes:
    """'Billion laughs' in PDF: form k draws form k-1 `fanout` times; the page draws the top one.
    A few KB, fanout**depth text runs to lay out: slow, and memory grows with it."""
    first = 6
    objs: list[bytes] = []
    for k in range(depth + 1):
        if k == 0:
            content = b"BT /F1 9 Tf (x) Tj ET"
            res = b"<< /Font << /F1 4 0 R >> >>"
        else:
            content = b" ".join(b"q 1 0 0 1 %d 0 cm /X Do Q" % j for j in range(fanout))
            res = b"<< /XObject << /X %d 0 R >> >>" % (first + k - 1)
        objs.append(stream(content, b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources " + res))
    return _page_pdf(b"/X Do", b"/XObject << /X %d 0 R >>" % (first + depth), more=objs)
