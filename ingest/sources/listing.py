"""Pure parsing of an HTTP source's listing: an HTML index page or a JSON feed -> links.

No I/O: bytes and a base URL in, `Link`s out (dlt-style: the network lives in `http.py`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

#: links in an HTML index are followed when their path ends with one of these
from ingest.sources.common import one_line

DOCUMENT_EXTENSIONS = frozenset({".pdf", ".txt", ".text", ".doc", ".docx", ".odt", ".rtf"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


# --- HTTP listing parsing (pure) ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Link:
    """A document the listing points at; `problem` set when it cannot be requested at all."""

    url: str
    problem: str | None = None


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        href = (a.get("href") or "").strip()
        if not href:
            return
        if tag == "base" and self.base is None:
            self.base = href
        elif tag == "a":
            self.hrefs.append(href)


def strip_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(fragment=""))


def is_document_url(url: str) -> bool:
    """Does the link's path end with a document extension (.pdf, .txt, ...)?"""
    return Path(unquote(urlsplit(url).path)).suffix.lower() in DOCUMENT_EXTENSIONS


def _dedup(links: list[Link]) -> list[Link]:
    seen: set[str] = set()
    out = []
    for link in links:
        if link.url not in seen:
            seen.add(link.url)
            out.append(link)
    return out


def _looks_like_document(raw: str) -> bool:
    return Path(raw.split("#", 1)[0].split("?", 1)[0]).suffix.lower() in DOCUMENT_EXTENSIONS


def _make_link(raw: str, base: str) -> Link:
    """An absolute link without its fragment; `problem` when it is malformed or not http(s)."""
    try:
        url = strip_fragment(urljoin(base, raw))
        scheme = httpx.URL(url).scheme
    except (ValueError, httpx.InvalidURL) as e:
        return Link(raw, f"invalid link {raw!r}: {one_line(e)}")
    return Link(url, None if scheme in ("http", "https") else f"unsupported link scheme {scheme}:")


def links_from_html(html: str, base_url: str) -> list[Link]:
    """Document links of an HTML index, absolute, in page order, without duplicates."""
    p = _AnchorParser()
    p.feed(html)
    p.close()
    base = _make_link(p.base, base_url).url if p.base else base_url
    links = []
    for href in p.hrefs:
        link = _make_link(href, base)
        wanted = _looks_like_document(href) if link.problem else is_document_url(link.url)
        if wanted:  # not navigation, mailto:, anchors...
            links.append(link)
    return _dedup(links)


def links_from_feed(data: object, base_url: str) -> list[Link]:
    """Items of a JSON feed: a list, or {"items": [...]}, of {url, published_at, title} (or of
    bare URL strings). Raises ValueError when the shape is not a feed."""
    items = data.get("items") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("JSON index is neither a list nor an object with an 'items' list")
    links = []
    for i, item in enumerate(items):
        raw = item.get("url") if isinstance(item, dict) else item
        if not isinstance(raw, str) or not raw.strip():
            links.append(Link(f"{base_url}#item-{i}", f"feed item {i} has no 'url' string"))
            continue
        links.append(_make_link(raw.strip(), base_url))
    return _dedup(links)


def _charset(content_type: str) -> str | None:
    m = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.I)
    return m.group(1) if m else None


def parse_index(body: bytes, content_type: str, base_url: str) -> list[Link]:
    """An HTML index or a JSON feed (by Content-Type, else by its first character) -> links.
    Raises ValueError with a one-line message for an unreadable feed."""
    first = body.lstrip()[:1]
    if "json" in content_type.lower() or (first in (b"[", b"{") and "html" not in content_type.lower()):
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"index is not valid JSON: {one_line(e)}") from None
        return links_from_feed(data, base_url)
    charset = _charset(content_type) or "utf-8"
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return links_from_html(text, base_url)


