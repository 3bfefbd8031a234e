"""Pure parsing: the bytes of one inspection letter (PDF or text) -> `Letter`.

`parse_document` either returns a complete `Letter` or raises `RejectedDocument` with a
one-line reason; it never half-parses. It does no file I/O and sets no size cap: the readers
(sources, `ingest.letters.isolate`) enforce `OFSTED_MAX_FILE_BYTES` before bytes reach it, and
run it in a worker process with time and memory limits. Every pattern runs in linear time on
any input (no nested or lazy quantifiers that can backtrack over the same text twice).

The letters are Ofsted's annual unannounced inspections of contact, referral and assessment
arrangements (2009-2011). The parser works in linear passes over the lines:

1. extract text (`ingest.letters.extract`), normalise characters (ligatures, quotes, spaces) and
   line endings;
2. split into pages (form feeds from PDFs, "Page N of M" footers in text) and drop page-number
   lines and header/footer lines repeated across pages;
3. find the anchors (date line, "Dear ...", subject, section headings, closing paragraph,
   "Yours sincerely", "Copy:") and read each field from its region.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from ingest.letters.extract import decode_text, extract_pdf_text, looks_like_pdf
from ingest.letters.models import CopyRecipient, Finding, Letter, RejectedDocument

PARSER_VERSION = "1.0.0"

# --- characters -------------------------------------------------------------------------------

_PDF_HYPHEN = "\ufffe"  # pdfium marks a line-end hyphen it removed the line break after
_CHAR_FIXES: tuple[tuple[str, str], ...] = (
    ("\ufb00", "ff"), ("\ufb01", "fi"), ("\ufb02", "fl"), ("\ufb03", "ffi"), ("\ufb04", "ffl"),
    ("\ufb05", "st"), ("\ufb06", "st"),
    ("\u2018", "'"), ("\u2019", "'"), ("\u201a", "'"), ("\u201b", "'"), ("\u2032", "'"),
    ("\u201c", '"'), ("\u201d", '"'), ("\u201e", '"'),
    ("\u00a0", " "), ("\u2007", " "), ("\u202f", " "), ("\u2009", " "),
    ("\u00ad", ""), ("\u200b", ""), ("\ufeff", ""),
)
_ASCII_FIXES: tuple[tuple[str, str], ...] = (
    ("\t", " "),
    ("\x02", _PDF_HYPHEN),  # pdfium's get_text_bounded spelling of the same marker
    ("\x0b", "\n"),  # a manual line break in some text exports
)

# --- patterns (compiled once) -----------------------------------------------------------------

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_YEAR = r"(?:19|20)\d\d"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE_LINE = re.compile(
    rf"(?:date:?\s*)?(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?({_DAY})\s+({_MONTH}),?\s+({_YEAR})\.?",
    re.I,
)
_DAY_TOKEN = rf"{_DAY}(?:\s+{_MONTH})?(?:,?\s+{_YEAR})?"
_RANGE = rf"{_DAY_TOKEN}(?:\s*(?:,|and|to|until|&|-|\u2013|\u2014)\s*(?:and\s+)?{_DAY_TOKEN})*"
_RANGE_PART = re.compile(rf"(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+({_MONTH}))?(?:,?\s+({_YEAR}))?", re.I)
_CONDUCTED = re.compile(
    rf"\b(?:conducted|carried\s+out|undertaken|took\s+place|held)\s+(?:on|between|from)\s+(?:the\s+)?({_RANGE})",
    re.I,
)
_ANY_RANGE = re.compile(rf"\b({_RANGE})", re.I)

_DEAR = re.compile(r"dear\b", re.I)
_CRA_SUBJECT = re.compile(r"inspection\s+of\s+contact,?\s+referral\s+and\s+assessment", re.I)
_SUBJECT_STOP = re.compile(r"(?:this letter|following|i am writing|the inspection|thank you)\b", re.I)
# "... children's services in <authority>, which was conducted ...": the head and the tail are
# searched separately (a lazy `(.+?)` between them rescans the rest of the text from every head:
# quadratic), the authority is what lies between the first head and the first tail after it.
_AUTHORITY_HEAD = re.compile(r"children's\s+services\s+(?:in|of|for|at)\s+(?P<the>the\s+)?", re.I)
_AUTHORITY_TAIL = re.compile(r",?\s+which\s+(?:was|were)\s+(?:conducted|carried|undertaken|held)", re.I)
_SUBJECT_HEAD = re.compile(r"\bwithin\s+(?P<the>the\s+)?", re.I)
_SUBJECT_TAIL = re.compile(r"(?:'s?)?\s+children's\s+services", re.I)
# (no leading \b on patterns searched through the introduction: it defeats the regex engine's
# literal-prefix scan and makes each search several times slower)
_STATUTORY_HEAD = re.compile(r"under\s+(section\s+\d+[A-Z]?(?:\(\d+\))?\s+of\s+the\s+)", re.I)
_ACT = re.compile(r"\bAct\s+\d{4}", re.I)
_PREVIOUS = re.compile(
    rf"\b(?:last|previous)\s+(?:annual\s+)?(?:unannounced\s+)?inspection\s+(?:in|of|on|during|carried\s+out\s+in)\s+((?:{_DAY}\s+)?{_MONTH}\s+{_YEAR})",
    re.I,
)
_SUMMARY = re.compile(r"The inspection identified\b")

_HEADING = re.compile(
    r"(?:(?P<strength>(?:areas?\s+of\s+)?strengths?)"
    r"|(?P<satisfactory>satisfactory\s+practice"
    r"|the\s+service\s+meets\s+the\s+requirements\s+of\s+statutory\s+guidance"
    r"(?:\s+in\s+the\s+following\s+areas?)?)"
    r"|(?P<area_for_development>areas?\s+for\s+development)"
    r"|(?P<priority_action>(?:areas?\s+for\s+)?priority\s+actions?))\s*:?",
    re.I,
)
_MEETS_PREFIX = re.compile(r"the\s+service\s+meets\s+the\s+requirements\b", re.I)
# The closing paragraph: "Any areas for development [and priority action] identified above will be
# specifically considered in any future inspection ...". Only its start is required on the line;
# the rest may wrap onto the next one.
_CLOSING_START = re.compile(r"(?:any|all)\s+areas?\s+for\s+(?:development|priority)", re.I)
_CLOSING_WORDS = ("identified above", "considered", "future inspection")
_YOURS = re.compile(r"yours\s+(?:sincerely|faithfully)\b", re.I)
_COPY = re.compile(r"(?:copy|copies|cc)(?:\s+to)?\s*:\s*(.*)", re.I)
_HMI = re.compile(
    r"[\s,]*(?:Her|His)\s+Majesty's\s+(?:Chief\s+)?Inspector(?:\s+of\s+\w+)?\.?$|[\s,]+HMI$", re.I
)

_BULLET = re.compile(
    r"(?:[\u2022\uf0b7\uf0a7\uf076\uf0d8\u25aa\u25cf\u25a0\u25e6\u2023\u2043\u2219\u00b7]\s*"
    r"|[-*\u2013\u2014]\s+"
    r"|\(?(?:\d{1,2}|[a-z]|[ivx]{1,4})[.)]\s+)"
)
# Page furniture: "Page 2 of 4", "2 of 4", "Page 2", "- 2 -"; "Page N of M" maybe after footer text.
_PAGE_NO = re.compile(
    r"(?:.{0,80}?\s*\bpage\s+\d{1,3}\s*(?:of|/)\s*\d{1,3}|page\s+\d{1,3}|\d{1,3}\s*(?:of|/)\s*\d{1,3}|-\s*\d{1,3}\s*-)",
    re.I,
)
_PAGE_NO_ENDS = frozenset("0123456789-")
_DASHES = frozenset("-\u2013\u2014")
_DIGITS = re.compile(r"\d+")
_HEADER_JOIN = re.compile(r"\s+[-\u2013|]\s+|,\s+")
_LETTERHEAD_START = re.compile(
    r"(?:direct\s+)?(?:t|f|tel|fax|telephone|textphone|minicom)\b\.?:?\s*[+\d(]|ref(?:erence)?\b|e-?mail\b|(?:our|your)\s+ref",
    re.I,
)

_HONORIFIC = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Lord|Lady|Cllr|Councillor|Rev|Revd)\.?"
_PERSON_START = re.compile(rf"{_HONORIFIC}\s+[A-Z]")
_CO = re.compile(r"\s+c/o\s+", re.I)
_TITLE_WORD = re.compile(
    r"\b(?:Director|Executive|Officer|Head|Manager|Chief|Lead|Commissioner|Assistant|Deputy|Interim|Acting|Corporate|Strategic|Leader|President|Secretary)\b"
)
# the words a job title is made of, to tell where it ends in a one-line address
_CONNECTORS = frozenset(("of", "for", "and", "&", "the", "to", "in"))
_TITLE_VOCAB = _CONNECTORS | frozenset((
    "director", "directorate", "executive", "chief", "deputy", "assistant", "corporate", "strategic",
    "interim", "acting", "head", "lead", "officer", "manager", "commissioner", "leader", "president",
    "secretary", "service", "services", "children's", "childrens", "children", "young", "people",
    "schools", "school", "families", "family", "learning", "education", "educational", "care",
    "social", "health", "wellbeing", "well-being", "adult", "adults", "community", "communities",
    "skills", "lifelong", "culture", "leisure", "safeguarding", "customer", "commissioning",
))
_COPY_SPLIT = re.compile(rf"\s+(?={_HONORIFIC}\s+[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+){{0,3}},)")
_NAME_COMMA = re.compile(r"([A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){1,3}),")
_NOT_NAME_WORDS = frozenset((
    "council", "services", "board", "department", "education", "children's", "member", "chair",
    "chief", "executive", "director", "lead", "borough", "county", "metropolitan", "city",
    "safeguarding", "local", "authority", "officer", "for", "of", "and", "the",
))

# starts only where a word chain starts (not after a letter, nor after "letter-"): from inside a
# chain the same match was found from its start, and a long chain with no break is scanned once
_HYPHEN_BREAK = re.compile(
    r"(?<![A-Za-z])(?<![A-Za-z]-)((?:[A-Za-z]+-)*[A-Za-z]+)(?:-\n|\ufffe\n?)\s*([a-z]+)")
_WORDS = re.compile(r"[a-z]+(?:-[a-z]+)*")
# Hyphenated compounds that Word wraps at the hyphen: keep the hyphen after these.
_COMPOUND_PREFIXES = frozenset((
    "co", "re", "non", "pre", "post", "multi", "inter", "intra", "self", "well", "on", "off", "out",
    "up", "cross", "sub", "anti", "ex", "semi", "full", "part", "long", "short", "high", "low",
    "under", "over", "follow", "decision", "child", "face", "one", "two", "three", "hands", "wide",
    "day",
))


# --- public API -------------------------------------------------------------------------------

def parse_document(data: bytes, filename: str, on_extracted: Callable[[], None] | None = None) -> Letter:
    """Parse one letter. Raises `RejectedDocument` (one-line reason) for anything it cannot read.

    `on_extracted` is called once the text is out of the PDF (or decoded), before parsing: the
    isolating worker uses it to name the stage a limit stopped."""
    try:
        return _parse(data, filename, on_extracted)
    except (RejectedDocument, MemoryError):
        raise
    except Exception as exc:  # a safety net: the contract is "parse or reject", never crash
        raise RejectedDocument(f"internal parser error ({type(exc).__name__}); document not parsed") from exc


# --- the parse --------------------------------------------------------------------------------

def _parse(data: bytes, filename: str, on_extracted: Callable[[], None] | None = None) -> Letter:
    if not data or not data.strip():
        raise RejectedDocument("empty file")
    if looks_like_pdf(data, filename):
        source_format = "pdf"
        raw = extract_pdf_text(data)
    else:
        source_format = "text"
        raw = decode_text(data)
    if on_extracted is not None:
        on_extracted()
    lines = clean_lines(raw)
    return _read_letter(lines, source_format)


def clean_lines(raw: str) -> list[str]:
    """Normalised, stripped lines with page numbers and repeated headers/footers removed.

    Pages are joined with a blank line; blank lines are kept as "" (they only matter for
    paragraphs without bullets).
    """
    text = _fix_characters(raw)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    pages: list[list[str]] = []
    for chunk in text.split("\f"):
        page: list[str] = []
        for line in chunk.split("\n"):
            s = line.strip()
            if s and len(s) < 100 and s[-1] in _PAGE_NO_ENDS and _PAGE_NO.fullmatch(s):
                # a page-number line (with any footer text beside it) ends a page
                pages.append(page)
                page = []
                continue
            page.append(s)
        pages.append(page)
    pages = [p for p in pages if any(p)]
    if len(pages) > 1:
        _drop_repeated_furniture(pages)
    out: list[str] = []
    for p in pages:
        if out:
            out.append("")
        out.extend(p)
    return out


def _fix_characters(text: str) -> str:
    """Ligatures, typographic quotes and odd spaces to plain text. `str.replace` only for the
    characters present: a translate table costs more than the rest of the parse."""
    fixes = _ASCII_FIXES if text.isascii() else _ASCII_FIXES + _CHAR_FIXES
    for old, new in fixes:
        if old in text:
            text = text.replace(old, new)
    return text


def _drop_repeated_furniture(pages: list[list[str]]) -> None:
    """Blank out header/footer lines (first/last 3 non-blank lines of a page) seen on 2+ pages."""
    edges: list[list[int]] = []
    seen: dict[str, int] = {}
    for p in pages:
        idx = [i for i, s in enumerate(p) if s]
        pos = sorted(set(idx[:3] + idx[-3:]))
        edges.append(pos)
        for key in {_DIGITS.sub("#", p[i].lower()) for i in pos}:
            seen[key] = seen.get(key, 0) + 1
    repeated = {k for k, n in seen.items() if n >= 2 and not _is_heading_text(k)}
    # A running header from page 2 on repeats what the first page's head says ("Ofsted", the
    # date, the addressee), alone or joined: "Ms Patricia Wyatt - 26 October 2011".
    head = {s.lower() for s in [s for s in pages[0] if s][:20] if len(s) <= 100}
    for k, (p, pos) in enumerate(zip(pages, edges, strict=True)):
        for j, i in enumerate(pos):
            low = p[i].lower()
            if _DIGITS.sub("#", low) in repeated or (
                k > 0 and j < 2 and len(low) <= 100 and not _is_heading_text(low)
                and all(_in_head(piece, head) for piece in _HEADER_JOIN.split(low))
            ) or (
                # Ofsted's address in the first page's footer, which may fall inside the findings
                _is_letterhead(p[i]) and not p[i].endswith(".")
            ):
                p[i] = ""


def _in_head(piece: str, head: set[str]) -> bool:
    """A line of the first page's head, or the start of one (the name of a one-line address)."""
    return piece in head or (len(piece) >= 5 and any(h.startswith(piece + " ") for h in head))


def _is_heading_text(s: str) -> bool:
    return _heading_category(s) is not None


def _heading_category(s: str) -> str | None:
    if len(s) > 110:
        return None
    m = _HEADING.fullmatch(s)
    return m.lastgroup if m else None


def _read_letter(lines: list[str], source_format: str) -> Letter:
    n = len(lines)
    nonblank = [i for i, s in enumerate(lines) if s]
    if not nonblank:
        raise RejectedDocument("no text in document")

    # anchors ------------------------------------------------------------------------------
    i_dear = next((i for i in nonblank[:60] if _DEAR.match(lines[i])), None)
    subject, i_after_subject = _subject(lines, i_dear)
    if subject is None or not _CRA_SUBJECT.search(subject):
        shown = (subject or "none found")[:80]
        raise RejectedDocument(f"not a contact, referral and assessment inspection letter (subject: {shown})")

    sections = _find_headings(lines, i_after_subject)
    if not sections:
        raise RejectedDocument("no findings: no section heading (Strengths, Areas for development, ...)")
    i_first_heading = sections[0][0]
    i_close = next((i for i in range(sections[-1][1], n) if lines[i] and _is_closing(lines, i)), None)
    if i_close is None:
        raise RejectedDocument("incomplete letter: the findings never end (no closing paragraph or sign-off)")

    # the head: date, recipient -------------------------------------------------------------
    head_end = i_dear if i_dear is not None else i_after_subject
    letter_date, i_date = _letter_date(lines, head_end)
    recipient_lines = [
        lines[i] for i in range((i_date + 1) if i_date is not None else 0, head_end)
        if lines[i] and not _is_letterhead(lines[i]) and not _CRA_SUBJECT.search(lines[i])
    ]

    # the introduction: one flat text -----------------------------------------------------------
    vocab = _Vocabulary(lines)
    intro = _join(lines[i_after_subject:i_first_heading], vocab)
    low = intro.lower()
    start, end = _inspection_dates(intro, low)
    authority = _authority(intro, subject)
    recipient_name, recipient_title = _recipient(recipient_lines, authority)
    statutory = _statutory(intro)
    m_prev = _PREVIOUS.search(intro) if ("last" in low or "previous" in low) else None
    summary = _summary(intro)

    findings = _findings(lines, sections, i_close, vocab)
    if not findings:
        raise RejectedDocument("no findings under the section headings")

    # the tail: inspector, copies ---------------------------------------------------------
    inspector = _inspector(lines, i_close)
    copies = _copy_recipients(lines, i_close, vocab)

    return Letter(
        parser_version=PARSER_VERSION,
        source_format=source_format,  # type: ignore[arg-type]
        letter_date=letter_date,
        recipient_name=recipient_name,
        recipient_title=recipient_title,
        authority_name=authority,
        inspection_start_date=start,
        inspection_end_date=end,
        statutory_basis=_squash(statutory) if statutory else None,
        previous_inspection=_squash(m_prev.group(1)) if m_prev else None,
        summary=summary,
        inspector_name=inspector,
        findings=tuple(findings),
        copy_recipients=tuple(copies),
    )


# --- regions ----------------------------------------------------------------------------------

def _is_closing(lines: list[str], i: int) -> bool:
    """Does line i end the findings: the closing paragraph, the sign-off or the copy list?
    (A finding may itself begin "All areas for development identified in 2009 ...".)"""
    s = lines[i]
    if _YOURS.match(s) or _COPY.match(s):
        return True
    if not _CLOSING_START.match(s):
        return False
    following = next((t for t in lines[i + 1:i + 4] if t), "")
    text = f"{s} {following}".lower()
    return any(w in text for w in _CLOSING_WORDS)


def _subject(lines: list[str], i_dear: int | None) -> tuple[str | None, int]:
    """The subject line(s) after "Dear ...", joined; and the index just after them."""
    n = len(lines)
    if i_dear is None:
        # no salutation: the first line naming the inspection, within the first page
        for i in range(min(n, 80)):
            if _CRA_SUBJECT.search(lines[i]) and len(lines[i]) < 250:
                return lines[i], i + 1
        return None, 0
    i = i_dear + 1
    while i < n and not lines[i]:
        i += 1
    if i < n and _SUBJECT_STOP.match(lines[i]):
        # the body starts at once: the title, if any, stands above the salutation
        for k in range(i_dear - 1, max(-1, i_dear - 8), -1):
            if _CRA_SUBJECT.search(lines[k]) and len(lines[k]) < 250:
                return lines[k], i
        # no title: the first paragraph must name the inspection itself (it may wrap in a PDF)
        return " ".join(lines[i:i + 3]), i
    parts: list[str] = []
    while i < n and lines[i] and len(parts) < 3 and not (parts and _SUBJECT_STOP.match(lines[i])):
        parts.append(lines[i])
        i += 1
    return (" ".join(parts) if parts else None), i


def _find_headings(lines: list[str], start: int) -> list[tuple[int, int, str, str]]:
    """(heading line, first content line, category, heading as written) for each section."""
    out: list[tuple[int, int, str, str]] = []
    n = len(lines)
    i = start
    while i < n:
        s = lines[i]
        if s and len(s) <= 110:
            if _YOURS.match(s):
                break
            cat = _heading_category(s)
            if cat is not None:
                out.append((i, i + 1, cat, s.rstrip(": ")))
            elif _MEETS_PREFIX.match(s):
                # "The service meets the requirements of statutory guidance in the following areas"
                # wrapped over two lines in a PDF
                j = i + 1
                while j < n and not lines[j]:
                    j += 1
                if j < n:
                    joined = f"{s} {lines[j]}"
                    cat = _heading_category(joined)
                    if cat is not None:
                        out.append((i, j + 1, cat, joined.rstrip(": ")))
                        i = j
        i += 1
    return out


def _letter_date(lines: list[str], head_end: int) -> tuple[dt.date | None, int | None]:
    """The last date line before the salutation (a letterhead may repeat the date above it)."""
    for i in range(min(head_end, len(lines)) - 1, -1, -1):
        s = lines[i]
        if s and len(s) < 40 and (m := _DATE_LINE.fullmatch(s)):
            d = _make_date(m.group(1), m.group(2), m.group(3))
            if d is not None:
                return d, i
    return None, None


def _make_date(day: str, month: str, year: str) -> dt.date | None:
    try:
        return dt.date(int(year), _MONTHS[month.lower().rstrip(".")], int(day.rstrip("stndrh")))
    except (ValueError, KeyError):
        return None


def _inspection_dates(intro: str, low: str) -> tuple[dt.date, dt.date]:
    """From "... conducted on <dates>" (`low` is `intro` lower-cased, to start the search there)."""
    m = _CONDUCTED.search(intro, max(0, low.find("conducted")))
    if m is None:
        m = _CONDUCTED.search(intro)
    candidates = [m.group(1)] if m else []
    if not candidates:
        candidates = [x.group(1) for x in _ANY_RANGE.finditer(intro)]
    for text in candidates:
        got = _parse_range(text)
        if got is not None:
            start, end = got
            if start > end or (end - start).days > 31:
                raise RejectedDocument(f"implausible inspection dates: {_squash(text)}")
            return start, end
    raise RejectedDocument("no inspection dates found")


def _parse_range(text: str) -> tuple[dt.date, dt.date] | None:
    """'30 November and 1 December 2010' -> (2010-11-30, 2010-12-01); None if no full date."""
    parts = [[d, mo, y] for d, mo, y in _RANGE_PART.findall(text)]
    if not parts or not parts[-1][1] or not parts[-1][2]:
        return None
    for k in range(len(parts) - 2, -1, -1):  # a missing month/year is the next one's
        if not parts[k][1]:
            parts[k][1] = parts[k + 1][1]
        if not parts[k][2]:
            parts[k][2] = parts[k + 1][2]
    start = _make_date(*parts[0])
    end = _make_date(*parts[-1])
    if start is None or end is None:
        return None
    return start, end


def _between(text: str, head: re.Pattern[str], tail: re.Pattern[str]) -> str | None:
    r"""What `head(?:the\s+)?(.+?)tail` would capture, in linear time: from the first head, up to
    the first tail at least one character on (with "the" left in only if no tail follows it)."""
    m = head.search(text)
    if m is None:
        return None
    t = tail.search(text, m.end() + 1)
    if t is None and m.group("the"):
        t = tail.search(text, m.start("the") + 1)
        return text[m.start("the"):t.start()] if t else None
    return text[m.end():t.start()] if t else None


def _authority(intro: str, subject: str) -> str:
    for text, head, tail in ((intro, _AUTHORITY_HEAD, _AUTHORITY_TAIL),
                             (subject, _SUBJECT_HEAD, _SUBJECT_TAIL)):
        name = _between(text, head, tail)
        if name is not None and len(name) <= 80:
            return _squash(name)
    raise RejectedDocument("authority name not found in the letter")


def _statutory(intro: str) -> str | None:
    """"under section N of the ... Act YYYY" within one sentence (no full stop between)."""
    pos = 0
    while (m := _STATUTORY_HEAD.search(intro, pos)) is not None:
        stop = intro.find(".", m.end())
        stop = len(intro) if stop < 0 else stop
        act = _ACT.search(intro, m.end(), stop)
        if act is not None:
            return intro[m.start(1):act.end()]
        pos = stop  # every later head before this full stop fails the same way
    return None


def _summary(intro: str) -> str | None:
    """The sentence starting "The inspection identified", up to its full stop."""
    m = _SUMMARY.search(intro)
    if m is None:
        return None
    stop = intro.find(".", m.end())
    return intro[m.start():stop + 1] if stop >= 0 else None


def _recipient(block: list[str], authority: str) -> tuple[str | None, str | None]:
    if not block:
        return None, None
    first = block[0]
    if len(block) == 1 or len(first) > 60:
        # the whole address in one paragraph (wrapped over several lines in a PDF)
        return _recipient_one_line(" ".join(block), authority)
    # one field a line: name, title (possibly wrapped), address
    name_part, *care_of = _CO.split(first, maxsplit=1)
    if _TITLE_WORD.search(name_part) and not _PERSON_START.match(name_part):
        name, rest = None, block
    else:
        name, rest = name_part, block[1:]
    title = None
    if rest and _TITLE_WORD.search(rest[0]) and not care_of:  # after "c/o Ms Y" it is Ms Y's title
        title = rest[0]
        if len(rest) > 1 and (_continues(title) or rest[1][:1].islower()):
            title = f"{title} {rest[1]}"
    return name, _strip_authority(title, authority)


def _recipient_one_line(s: str, authority: str) -> tuple[str | None, str | None]:
    """'Mr Mark Wyatt c/o Ms Pauline Sharratt Director of Children's Services Westox House ...'"""
    m_title = _TITLE_WORD.search(s)
    head = s[: m_title.start()].strip() if m_title else s
    name_part, *care_of = _CO.split(head, maxsplit=1)
    name = name_part.strip() or None
    if name and len(name.split()) > 6:
        name = None
    title = None
    if m_title and not care_of:  # after "c/o Ms Y" the title is Ms Y's, not the addressee's
        words: list[str] = []
        for w in s[m_title.start():].split():
            if w.rstrip(",").lower() not in _TITLE_VOCAB:
                break
            words.append(w)
        while words and words[-1].rstrip(",").lower() in _CONNECTORS:
            words.pop()
        title = " ".join(words).rstrip(",")
    return name, _strip_authority(title, authority)


def _strip_authority(title: str | None, authority: str) -> str | None:
    if title and title.endswith(authority) and title != authority:
        title = title[: -len(authority)].rstrip(" ,")
    return title or None


def _findings(lines: list[str], sections: list[tuple[int, int, str, str]], i_close: int,
              vocab: _Vocabulary) -> list[Finding]:
    """Findings in letter order. Ordinals count within the category, so a heading that appears
    twice continues its numbering (category + ordinal is the findings' key)."""
    out: list[Finding] = []
    counts: dict[str, int] = {}
    for k, (_, first, cat, heading) in enumerate(sections):
        stop = sections[k + 1][0] if k + 1 < len(sections) else i_close
        for parts in _split_findings(lines[first:stop]):
            text = _join(parts, vocab)
            if text:
                counts[cat] = counts.get(cat, 0) + 1
                out.append(Finding(category=cat, heading=heading, ordinal=counts[cat], text=text))
    return out


def _split_findings(region: list[str]) -> list[list[str]]:
    """Bullets start findings; lines without one continue the current finding. Before the first
    bullet (or in a section with none), a paragraph that ends a sentence ends a finding."""
    items: list[list[str]] = []
    current: list[str] | None = None
    bulleted = False
    gap = False
    for s in region:
        if not s:
            gap = True
            continue
        m = _BULLET.match(s)
        if m and s[0] in _DASHES and current and not _ends_sentence(current) and s[m.end():][:1].islower():
            m = None  # "... children\n– including those ..." : a dash inside a sentence, not a bullet
        if m:
            body = s[m.end():].strip()
            current = [body] if body else []
            items.append(current)
            bulleted = True
        elif current is None or (not bulleted and gap and _ends_sentence(current)):
            current = [s]
            items.append(current)
        else:
            current.append(s)
        gap = False
    return [p for p in items if p]


def _ends_sentence(parts: list[str]) -> bool:
    return bool(parts) and parts[-1].rstrip("\"')").endswith((".", "!", "?"))


def _inspector(lines: list[str], i_close: int) -> str | None:
    n = len(lines)
    i_yours = next((i for i in range(i_close, n) if lines[i] and _YOURS.match(lines[i])), None)
    if i_yours is None:
        return None
    seen = 0
    for i in range(i_yours + 1, n):
        s = lines[i]
        if not s:
            continue
        seen += 1
        if seen > 3 or _COPY.match(s):
            return None
        name = _HMI.sub("", s).strip(" ,")
        if name and len(name) <= 60:
            return name
    return None


def _copy_recipients(lines: list[str], i_close: int, vocab: _Vocabulary) -> list[CopyRecipient]:
    n = len(lines)
    i_copy = next((i for i in range(i_close, n) if lines[i] and _COPY.match(lines[i])), None)
    if i_copy is None:
        return []
    first = _COPY.match(lines[i_copy]).group(1).strip()  # type: ignore[union-attr]
    entries: list[list[str]] = []
    block = ([first] if first else []) + [s for s in lines[i_copy + 1:] if s]
    for line in block:
        for piece in _COPY_SPLIT.split(line):
            if not entries or _starts_copy_entry(piece, entries[-1]):
                entries.append([piece])
            else:
                entries[-1].append(piece)
    out = []
    for k, parts in enumerate(entries, start=1):
        text = _join(parts, vocab)
        name, _, role = text.partition(",")
        out.append(CopyRecipient(ordinal=k, name=name.strip(), role=role.strip() or None))
    return out


def _starts_copy_entry(piece: str, current: list[str]) -> bool:
    if _continues(current[-1]):
        return False
    if _PERSON_START.match(piece):
        return True
    m = _NAME_COMMA.match(piece)
    return bool(m) and not any(w.lower() in _NOT_NAME_WORDS for w in m.group(1).split())


# --- text helpers -----------------------------------------------------------------------------

class _Vocabulary:
    """The document's own words, built only when a line-end hyphen needs a decision."""

    __slots__ = ("_lines", "_words")

    def __init__(self, lines: list[str]):
        self._lines = lines
        self._words: set[str] | None = None

    def __contains__(self, word: str) -> bool:
        if self._words is None:
            self._words = set(_WORDS.findall("\n".join(self._lines).lower()))
        return word in self._words


def _join(parts: list[str], vocab: _Vocabulary) -> str:
    """Lines -> one string: line-end hyphenation resolved, whitespace normalised."""
    text = "\n".join(parts)
    if "-\n" in text or _PDF_HYPHEN in text:
        text = _HYPHEN_BREAK.sub(_hyphen_resolver(vocab), text).replace(_PDF_HYPHEN, "-")
    return " ".join(text.split())


def _hyphen_resolver(vocab: _Vocabulary) -> Callable[[re.Match[str]], str]:
    def resolve(m: re.Match[str]) -> str:
        left, right = m.group(1), m.group(2)
        if "-" in left:  # a compound already: "out-of-" + "hours"
            return f"{left}-{right}"
        joined = (left + right).lower()
        hyphenated = f"{left}-{right}".lower()
        if joined in vocab and hyphenated not in vocab:
            return left + right
        if hyphenated in vocab or left.lower() in _COMPOUND_PREFIXES:
            return f"{left}-{right}"
        return left + right

    return resolve


def _is_letterhead(s: str) -> bool:
    """Ofsted's address, phone, fax, e-mail and web lines, and reference lines."""
    low = s.lower()
    return "@" in s or "www." in low or "ofsted.gov" in low or bool(_LETTERHEAD_START.match(s))


def _continues(s: str) -> bool:
    """Does this line stop mid-phrase ('Lead Member for', 'Chief Executive,')?"""
    if s.endswith((",", "&")):
        return True
    last = s.rsplit(None, 1)[-1].lower() if s.strip() else ""
    return last in _CONNECTORS


def _squash(s: str) -> str:
    return " ".join(s.split())
