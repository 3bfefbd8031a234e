"""Sources: the only module that does I/O to where letters come from.

`fetch_documents(settings, known)` yields one `FetchResult` per source document:

- ``fetched``: `path` is a complete, verified copy under ``incoming_dir(settings)``
  (``<runs_dir>/incoming/fetch-<random>.<ext>``); the caller archives it, then moves or
  deletes it. Files still named ``*.part`` there are unfinished writes of a crashed run and
  are safe to delete.
- ``not_modified``: the source says the document is unchanged since `known` (same local
  stamp, HTTP 304), or its bytes hash to `known.sha256`. In that last case the result
  carries the new stamp/ETag/Last-Modified, so the caller can refresh the manifest and
  skip the read next time. `sha256` is filled when known.
- ``failed``: `reason` is one line. One failure never stops the other documents; a listing
  that cannot be read gives one ``failed`` result for the listing's own URI.

Sources (``settings.source``):

- ``local``: every regular file under ``settings.inbox_dir`` (sub-folders too, sorted by
  relative path), except hidden files/folders and editor or download leftovers. URI =
  ``file://`` absolute path; "ETag" = ``<size>-<mtime_ns>``, so an unchanged file is not read.
- ``http``: ``settings.http_index_url`` is an HTML page whose ``<a href>`` links to
  documents (.pdf, .txt, ...) are followed, or a JSON feed (a list, or ``{"items": [...]}``,
  of ``{url, published_at, title}``). Requests go only to the allowed hosts, are
  conditional, rate-limited per host, retried with exponential backoff, size-capped and
  checked against Content-Length.

The fetcher never writes the archive or DuckDB. Configuration mistakes (unknown source, no
index URL) raise `FetchConfigError` when `fetch_documents` is called; failing to write under
incoming/ (disk full, permissions) raises `IncomingWriteError` — no document's fault.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

from ingest.models import FetchResult, KnownDocument
from ingest.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: links in an HTML index are followed when their path ends with one of these
DOCUMENT_EXTENSIONS = frozenset({".pdf", ".txt", ".text", ".doc", ".docx", ".odt", ".rtf"})
#: a Retry-After longer than this is not waited for: the document fails for this run
MAX_RETRY_AFTER_S = 60.0
MAX_REDIRECTS = 5
#: a download still running after this many times OFSTED_HTTP_TIMEOUT_S is abandoned (a server
#: trickling bytes never trips the per-read timeout)
DOWNLOAD_BUDGET_FACTOR = 10
CHUNK_BYTES = 64 * 1024

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SKIP_SUFFIXES = (
    "~", ".swp", ".swo", ".swx", ".tmp", ".temp", ".part", ".partial", ".crdownload", ".download",
)
_SKIP_NAMES = frozenset({"Thumbs.db", "desktop.ini"})
_LIMIT_ENV = "OFSTED_MAX_FILE_BYTES"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TYPE_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt"}


class FetchConfigError(ValueError):
    """The settings cannot describe a source (one line, fit to show a user)."""


def incoming_dir(settings: Settings) -> Path:
    """Where fetched temp files are written: the caller moves or deletes them."""
    return settings.runs_dir / "incoming"


def fetch_documents(settings: Settings, known: Mapping[str, KnownDocument]) -> Iterator[FetchResult]:
    """One `FetchResult` per document of the configured source (see the module docstring)."""
    if settings.source == "local":
        return _fetch_local(settings, known)
    if settings.source == "http":
        index_url = settings.http_index_url
        if not index_url:
            raise FetchConfigError("OFSTED_SOURCE=http needs OFSTED_HTTP_INDEX_URL (the listing to read)")
        if urlsplit(index_url).scheme not in ("http", "https") or not urlsplit(index_url).hostname:
            raise FetchConfigError(f"OFSTED_HTTP_INDEX_URL is not an http(s) URL: {index_url!r}")
        return _HttpSource(settings, known).run()
    raise FetchConfigError(f"unknown source {settings.source!r}: OFSTED_SOURCE must be 'local' or 'http'")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _one_line(text: object) -> str:
    return " ".join(str(text).split()) or type(text).__name__


def _failed(uri: str, reason: str) -> FetchResult:
    log.warning("fetch failed: %s: %s", uri, reason)
    return FetchResult(source_uri=uri, status="failed", reason=_one_line(reason))


# --- temp files -------------------------------------------------------------------------------

class _TooLarge(Exception):
    pass


class IncomingWriteError(OSError):
    """Writing a temp file under incoming/ failed (disk full, permissions): not one document's
    fault, so it is raised to the caller instead of being reported per document."""


class _TempFile:
    """A file being written under incoming/ as `*.part`, hashed and counted as it goes; it
    gets its final name only once `keep` is called (after verification)."""

    def __init__(self, directory: Path, max_bytes: int):
        self.stem = directory / f"fetch-{uuid.uuid4().hex}"
        self.part = self.stem.with_name(self.stem.name + ".part")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.part, "xb")  # noqa: SIM115 - closed in keep/discard
        except OSError as e:
            raise IncomingWriteError(f"cannot write a temp file in {directory}: {e.strerror or e}") from e
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise _TooLarge
        self._hash.update(chunk)
        try:
            self._fh.write(chunk)
        except OSError as e:
            raise IncomingWriteError(f"cannot write {self.part}: {e.strerror or e}") from e

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def keep(self, filename: str) -> Path:
        ext = Path(filename).suffix.lower()
        final = self.stem.with_name(self.stem.name + (ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ""))
        try:
            self._fh.close()
            os.replace(self.part, final)
        except OSError as e:
            raise IncomingWriteError(f"cannot write {final}: {e.strerror or e}") from e
        return final

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # the file goes anyway
            self._fh.close()
        self.part.unlink(missing_ok=True)


class _MemorySink:
    """Like `_TempFile`, in memory: for the index page."""

    def __init__(self, max_bytes: int):
        self.data = bytearray()
        self.max_bytes = max_bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.max_bytes:
            raise _TooLarge
        self.data += chunk


# --- local inbox ------------------------------------------------------------------------------

def is_ignored_name(name: str) -> bool:
    """Hidden files, editor swap/backup files, Office lock files and unfinished downloads."""
    return (
        name.startswith((".", "~$"))
        or (name.startswith("#") and name.endswith("#"))
        or name.endswith(_SKIP_SUFFIXES)
        or name in _SKIP_NAMES
    )


def iter_inbox(inbox: Path) -> list[Path]:
    """Candidate files under `inbox` (sub-folders included, hidden ones skipped), sorted by
    relative path so runs are deterministic."""
    found: list[Path] = []
    for root, dirs, files in os.walk(inbox, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / f for f in files if not is_ignored_name(f))
    return sorted(found, key=lambda p: p.relative_to(inbox).as_posix())


def local_stamp(st: os.stat_result) -> str:
    """The cheap change detector for local files: size and modification time (ns)."""
    return f"{st.st_size}-{st.st_mtime_ns}"


def _mtime_utc(st: os.stat_result) -> str:
    return dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, dt.UTC).isoformat()


def _fetch_local(settings: Settings, known: Mapping[str, KnownDocument]) -> Iterator[FetchResult]:
    incoming = incoming_dir(settings)
    for _path, result, data in _read_inbox(settings, known):
        if data is not None:
            result = _to_temp_file(result, data, incoming, settings.max_file_bytes)
        if result is not None:
            yield result


def read_local_documents(
    settings: Settings, known: Mapping[str, KnownDocument]
) -> Iterator[tuple[FetchResult, bytes | None]]:
    """The local source without temp files, for a caller that archives the bytes itself:
    `(result, data)` pairs, where `data` holds the verified bytes of a "fetched" result (its
    `path` is None) and is None otherwise. One file is read at a time."""
    for _path, result, data in _read_inbox(settings, known):
        if result is not None:
            yield result, data


def _read_inbox(
    settings: Settings, known: Mapping[str, KnownDocument]
) -> Iterator[tuple[Path, FetchResult | None, bytes | None]]:
    inbox = settings.inbox_dir
    if not inbox.is_dir():
        yield inbox, _failed(inbox.as_uri(), f"inbox folder {inbox} does not exist or is not a folder"), None
        return
    for path in iter_inbox(inbox):
        result, data = read_local_file(path, known, settings.max_file_bytes)
        yield path, result, data


def fetch_local_file(
    path: Path, known_docs: Mapping[str, KnownDocument], max_bytes: int, incoming: Path
) -> FetchResult | None:
    """One inbox file -> a result; None for what is not a regular file (fifo, socket...)."""
    result, data = read_local_file(path, known_docs, max_bytes)
    if data is None:
        return result
    return _to_temp_file(result, data, incoming, max_bytes)


def _to_temp_file(result: FetchResult | None, data: bytes, incoming: Path, max_bytes: int) -> FetchResult:
    """A fetched result's bytes written to a verified temp file under incoming/ (its `path`)."""
    assert result is not None and result.filename is not None
    tmp = _TempFile(incoming, max_bytes)
    try:
        tmp.write(data)
        kept = tmp.keep(result.filename)
    except BaseException:
        tmp.discard()
        raise
    return dataclasses.replace(result, path=str(kept))


def _read_bounded(path: Path, size: int, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The file's bytes (at most `max_bytes + 1`: more means it grew over the limit) and its
    stat once read. A file of the expected size takes two read calls: few calls, little GIL traffic."""
    chunks: list[bytes] = []
    total = 0
    with open(path, "rb", buffering=0) as src:
        while total <= max_bytes:
            chunk = src.read(min(max(size + 1 - total, CHUNK_BYTES), max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        after = os.fstat(src.fileno())
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), after


def read_local_file(
    path: Path, known_docs: Mapping[str, KnownDocument], max_bytes: int
) -> tuple[FetchResult | None, bytes | None]:
    """One inbox file -> `(result, data)`: the result is None for what is not a regular file
    (fifo, socket...); `data` is the file's bytes when the result is "fetched" (whole, hashed,
    and unchanged while read), else None."""
    uri = path.absolute().as_uri()
    known = known_docs.get(uri)
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return _failed(uri, f"broken symbolic link: {os.readlink(path)} does not exist"), None
        return None, None  # removed while we were scanning
    except OSError as e:
        return _failed(uri, f"cannot read file: {e.strerror or e}"), None
    if not stat.S_ISREG(st.st_mode):
        return None, None
    stamp, modified = local_stamp(st), _mtime_utc(st)
    if known is not None and known.etag == stamp:
        return FetchResult(
            uri, "not_modified", sha256=known.sha256, size=st.st_size, etag=stamp, last_modified=modified
        ), None
    if st.st_size > max_bytes:
        return _failed(uri, f"file is {st.st_size} bytes, over the limit of {max_bytes} ({_LIMIT_ENV})"), None
    try:
        data, after = _read_bounded(path, st.st_size, max_bytes)
    except OSError as e:
        return _failed(uri, f"cannot read file: {e.strerror or e}"), None
    if len(data) > max_bytes:
        return _failed(uri, f"file grew over the limit of {max_bytes} bytes ({_LIMIT_ENV}) while read"), None
    if local_stamp(after) != stamp or len(data) != st.st_size:
        reason = "file changed while it was being read (still being written?); retried next run"
        return _failed(uri, reason), None
    sha = hashlib.sha256(data).hexdigest()
    if known is not None and known.sha256 == sha:
        return FetchResult(
            uri, "not_modified", sha256=sha, size=len(data), etag=stamp, last_modified=modified
        ), None
    return FetchResult(
        source_uri=uri,
        status="fetched",
        sha256=sha,
        size=len(data),
        etag=stamp,
        last_modified=modified,
        filename=path.name,
        fetched_at=_now(),
    ), data


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


def _strip_fragment(url: str) -> str:
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
        url = _strip_fragment(urljoin(base, raw))
        scheme = httpx.URL(url).scheme
    except (ValueError, httpx.InvalidURL) as e:
        return Link(raw, f"invalid link {raw!r}: {_one_line(e)}")
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
            raise ValueError(f"index is not valid JSON: {_one_line(e)}") from None
        return links_from_feed(data, base_url)
    charset = _charset(content_type) or "utf-8"
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return links_from_html(text, base_url)


# --- HTTP fetching ------------------------------------------------------------------------------

class _Failed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _NotModified(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__("not modified")
        self.etag = response.headers.get("etag")
        self.last_modified = response.headers.get("last-modified")


def host_key(url: str | httpx.URL) -> str:
    """`host:port` of a URL (default ports filled in), lower-case: the rate-limit key.
    URLs are read by httpx, the same parser that makes the requests."""
    u = httpx.URL(url) if isinstance(url, str) else url
    port = u.port or (443 if u.scheme == "https" else 80)
    host = u.host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class AllowedHosts:
    """Hosts the fetcher may request: `host` (any port) or `host:port` entries."""

    hostnames: frozenset[str]
    host_ports: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> AllowedHosts:
        """OFSTED_HTTP_ALLOWED_HOSTS, plus the index URL's own host:port (always allowed)."""
        names: set[str] = set()
        pairs = {host_key(settings.http_index_url or "")}
        for entry in settings.http_allowed_hosts:
            try:
                u = httpx.URL(entry if "://" in entry else f"http://{entry}")
                explicit_port = re.search(r":\d+/?$", entry) is not None
            except (ValueError, httpx.InvalidURL):
                raise FetchConfigError(f"OFSTED_HTTP_ALLOWED_HOSTS: not a host: {entry!r}") from None
            if not u.host:
                raise FetchConfigError(f"OFSTED_HTTP_ALLOWED_HOSTS: not a host: {entry!r}")
            if explicit_port:
                pairs.add(host_key(u))
            else:
                names.add(u.host.lower())
        return cls(frozenset(names), frozenset(pairs))

    def allows(self, url: str) -> bool:
        try:
            u = httpx.URL(url)
        except (ValueError, httpx.InvalidURL):
            return False
        if u.scheme not in ("http", "https") or not u.host:
            return False
        return u.host.lower() in self.hostnames or host_key(u) in self.host_ports

    def describe(self) -> str:
        return ", ".join(sorted(self.hostnames | self.host_ports))


class RateLimiter:
    """At least `min_interval_s` between the starts of two requests to the same host."""

    def __init__(self, min_interval_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.min_interval_s = min_interval_s
        self._clock, self._sleep = clock, sleep
        self._last: dict[str, float] = {}

    def wait(self, key: str) -> None:
        last = self._last.get(key)
        if last is not None:
            remaining = last + self.min_interval_s - self._clock()
            if remaining > 0:
                self._sleep(remaining)
        self._last[key] = self._clock()


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or _now())).total_seconds())


def _content_disposition_filename(value: str | None) -> str | None:
    if not value:
        return None
    msg = Message()
    msg["content-disposition"] = value
    return msg.get_filename()


def _url_name(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


def document_filename(url: str, final_url: str, content_disposition: str | None, content_type: str) -> str:
    """The name to give the parser: Content-Disposition, else the link's last path segment,
    else the redirect target's; an extension from the Content-Type when there is none."""
    candidates = [_content_disposition_filename(content_disposition), _url_name(url), _url_name(final_url)]
    name = next((c for c in candidates if c and Path(c).suffix), None)
    name = name or next((c for c in candidates if c), "document")
    name = re.sub(r"[\x00-\x1f/\\]", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip() or "document"
    if not Path(name).suffix:
        name += _TYPE_EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "")
    return name


def _is_html_url(url: str) -> bool:
    return Path(urlsplit(url).path).suffix.lower() in (".html", ".htm", ".xhtml")


class _HttpSource:
    def __init__(self, settings: Settings, known: Mapping[str, KnownDocument]):
        self.settings = settings
        self.known = known
        self.index_url = settings.http_index_url or ""
        self.allowed = AllowedHosts.from_settings(settings)
        self.limiter = RateLimiter(settings.http_min_interval_s)
        self.incoming = incoming_dir(settings)

    def _client(self) -> httpx.Client:
        return httpx.Client(
            timeout=self.settings.http_timeout_s,
            proxy=self.settings.http_proxy,
            trust_env=False,  # settings are the only reader of the environment
            follow_redirects=False,  # followed by hand, each hop checked against the allowed hosts
            headers={"User-Agent": self.settings.http_user_agent},
        )

    def run(self) -> Iterator[FetchResult]:
        with self._client() as client:
            self.client = client
            try:
                body, content_type, final_url = self._get(self.index_url, {}, self._read_index)
                links = parse_index(body, content_type, final_url)
            except (_Failed, ValueError) as e:
                yield _failed(self.index_url, f"could not read the index: {getattr(e, 'reason', e)}")
                return
            except _NotModified:
                yield _failed(self.index_url, "could not read the index: unexpected 304 Not Modified")
                return
            log.info("index %s lists %d documents", self.index_url, len(links))
            for link in links:
                try:
                    result = self._fetch_link(link)
                except IncomingWriteError:
                    raise
                except Exception as e:  # a bug or an unforeseen fault must not stop the others
                    log.exception("unexpected error fetching %s", link.url)
                    result = _failed(link.url, f"unexpected error: {type(e).__name__}: {e}")
                yield result

    # --- one request, with redirects, retries, rate limit ------------------------------
    def _auth_headers(self, url: str) -> dict[str, str]:
        s = self.settings
        if not self.allowed.allows(url):
            return {}
        if s.http_auth_token:
            return {"Authorization": f"Bearer {s.http_auth_token}"}
        if s.http_username is not None:
            pair = f"{s.http_username}:{s.http_password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def _get(self, url: str, headers: dict[str, str], consume: Callable[[httpx.Response, str], T]) -> T:
        attempts = max(0, self.settings.http_retries) + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._get_once(url, headers, consume)
            except _Retry as r:
                if attempt == attempts:
                    raise _Failed(f"{r.reason} (gave up after {attempts} attempts)") from None
                delay = self.settings.http_backoff_s * 2 ** (attempt - 1)
                if r.retry_after is not None:
                    if r.retry_after > MAX_RETRY_AFTER_S:
                        raise _Failed(
                            f"{r.reason}; server asked to retry after {r.retry_after:.0f} s "
                            f"(more than the {MAX_RETRY_AFTER_S:.0f} s we wait)"
                        ) from None
                    delay = max(delay, r.retry_after)
                log.info("retrying %s in %.2f s after: %s", url, delay, r.reason)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _get_once(self, url: str, headers: dict[str, str], consume: Callable[[httpx.Response, str], T]) -> T:
        current = url
        timeout = self.settings.http_timeout_s
        for _hop in range(MAX_REDIRECTS + 1):
            if not self.allowed.allows(current):
                raise _Failed(
                    f"redirect to {current} refused: host not in OFSTED_HTTP_ALLOWED_HOSTS "
                    f"({self.allowed.describe()})"
                )
            self.limiter.wait(host_key(current))
            try:
                sent = {**headers, **self._auth_headers(current)}
                with self.client.stream("GET", current, headers=sent) as r:
                    status = r.status_code
                    if status in _REDIRECTS:
                        location = r.headers.get("location")
                        if not location:
                            raise _Failed(f"HTTP {status} redirect without a Location header")
                        try:
                            current = _strip_fragment(urljoin(current, location))
                        except ValueError:
                            raise _Failed(f"HTTP {status} redirect to an invalid URL: {location!r}") from None
                        continue
                    if status == 304:
                        raise _NotModified(r)
                    if status == 429 or status >= 500:
                        raise _Retry(f"HTTP {status} {r.reason_phrase}".strip(),
                                     parse_retry_after(r.headers.get("retry-after")))
                    if not 200 <= status < 300:
                        raise _Failed(f"HTTP {status} {r.reason_phrase}".strip())
                    return consume(r, current)
            except httpx.UnsupportedProtocol as e:
                raise _Failed(f"unsupported URL: {_one_line(e)}") from None
            except httpx.TimeoutException:
                raise _Retry(f"timed out after {timeout:g} s") from None
            except httpx.TransportError as e:
                raise _Retry(f"connection error: {_one_line(e)}") from None
            except (httpx.RequestError, httpx.InvalidURL) as e:  # e.g. a bad Content-Encoding
                raise _Failed(f"{type(e).__name__}: {_one_line(e)}") from None
        raise _Failed(f"more than {MAX_REDIRECTS} redirects")

    # --- what to do with a 2xx body ----------------------------------------------------
    def _check_length(self, r: httpx.Response) -> int | None:
        raw = r.headers.get("content-length", "").strip()
        expected = int(raw) if raw.isdigit() else None
        limit = self.settings.max_file_bytes
        if expected is not None and expected > limit:
            raise _Failed(f"Content-Length {expected} bytes is over the limit of {limit} ({_LIMIT_ENV})")
        return expected

    def _stream_to(self, r: httpx.Response, tmp: _TempFile | _MemorySink, expected: int | None) -> None:
        limit = self.settings.max_file_bytes
        budget = self.settings.http_timeout_s * DOWNLOAD_BUDGET_FACTOR
        deadline = time.monotonic() + budget
        try:
            for chunk in r.iter_bytes():
                tmp.write(chunk)
                if time.monotonic() > deadline:
                    raise _Failed(f"download too slow: {r.num_bytes_downloaded} bytes in {budget:g} s "
                                  f"({DOWNLOAD_BUDGET_FACTOR} x OFSTED_HTTP_TIMEOUT_S); abandoned")
        except _TooLarge:
            raise _Failed(f"download passed the limit of {limit} bytes ({_LIMIT_ENV}); aborted") from None
        except httpx.TimeoutException:
            raise _Retry(f"incomplete download: timed out after {r.num_bytes_downloaded} bytes") from None
        except httpx.TransportError as e:
            of = f" of {expected}" if expected is not None else ""
            cause = "connection closed early" if isinstance(e, httpx.RemoteProtocolError) else _one_line(e)
            got = r.num_bytes_downloaded
            raise _Retry(f"incomplete download: received {got}{of} bytes ({cause})") from None
        if expected is not None and r.num_bytes_downloaded != expected:
            raise _Retry(f"incomplete download: received {r.num_bytes_downloaded} of {expected} bytes")

    def _read_index(self, r: httpx.Response, final_url: str) -> tuple[bytes, str, str]:
        expected = self._check_length(r)
        sink = _MemorySink(self.settings.max_file_bytes)
        self._stream_to(r, sink, expected)
        return bytes(sink.data), r.headers.get("content-type", ""), final_url

    def _save_document(self, url: str) -> Callable[[httpx.Response, str], FetchResult]:
        def consume(r: httpx.Response, final_url: str) -> FetchResult:
            media_type = r.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type in _HTML_TYPES and not _is_html_url(url):
                raise _Failed(f"server answered with an HTML page ({media_type}), not a document: "
                              "a login or error page?")
            expected = self._check_length(r)
            tmp = _TempFile(self.incoming, self.settings.max_file_bytes)
            try:
                self._stream_to(r, tmp, expected)
            except BaseException:
                tmp.discard()
                raise
            etag, modified = r.headers.get("etag"), r.headers.get("last-modified")
            k = self.known.get(url)
            if k is not None and k.sha256 == tmp.sha256:
                tmp.discard()
                return FetchResult(url, "not_modified", sha256=tmp.sha256, size=tmp.size, etag=etag,
                                   last_modified=modified)
            name = document_filename(url, final_url, r.headers.get("content-disposition"),
                                     r.headers.get("content-type", ""))
            sha, size = tmp.sha256, tmp.size
            return FetchResult(
                source_uri=url,
                status="fetched",
                path=str(tmp.keep(name)),
                sha256=sha,
                size=size,
                etag=etag,
                last_modified=modified,
                filename=name,
                fetched_at=_now(),
            )

        return consume

    def _fetch_link(self, link: Link) -> FetchResult:
        if link.problem:
            return _failed(link.url, link.problem)
        if not self.allowed.allows(link.url):
            host = urlsplit(link.url).netloc
            return _failed(
                link.url,
                f"link to host {host} refused: not in OFSTED_HTTP_ALLOWED_HOSTS ({self.allowed.describe()})",
            )
        k = self.known.get(link.url)
        conditional = {}
        if k is not None and k.etag:
            conditional["If-None-Match"] = k.etag
        if k is not None and k.last_modified:
            conditional["If-Modified-Since"] = k.last_modified
        try:
            return self._get(link.url, conditional, self._save_document(link.url))
        except _NotModified as nm:
            if not conditional:
                return _failed(link.url, "HTTP 304 Not Modified to an unconditional request")
            return FetchResult(
                link.url,
                "not_modified",
                sha256=k.sha256 if k else None,
                etag=nm.etag or (k.etag if k else None),
                last_modified=nm.last_modified or (k.last_modified if k else None),
            )
        except _Failed as e:
            return _failed(link.url, e.reason)
