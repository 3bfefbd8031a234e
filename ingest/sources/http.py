"""The HTTP source: a listing (HTML index or JSON feed) and the documents it links to.

Requests go only to the allowed hosts (redirects and user-info tricks included), are
conditional (ETag / Last-Modified), rate-limited per host, retried with exponential backoff
and Retry-After, size-capped and checked against Content-Length.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import logging
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from ingest.files import too_large
from ingest.letters.models import FetchResult, KnownDocument
from ingest.settings import Settings
from ingest.sources.common import (
    FetchConfigError,
    IncomingWriteError,
    MemorySink,
    SourceUnavailable,
    TempFile,
    TooLarge,
    failed,
    incoming_dir,
    one_line,
    redact_text,
    redact_url,
    rejected,
    utc_now,
)
from ingest.sources.listing import Link, parse_index, strip_fragment

log = logging.getLogger(__name__)

T = TypeVar("T")
#: a Retry-After longer than this is not waited for: the document fails for this run
MAX_RETRY_AFTER_S = 60.0
MAX_REDIRECTS = 5
#: a download still running after this many times OFSTED_HTTP_TIMEOUT_S is abandoned (a server
#: trickling bytes never trips the per-read timeout)
DOWNLOAD_BUDGET_FACTOR = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TYPE_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt"}


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


class _Rejected(Exception):
    """Refused by a limit before the bytes were read in full: a rejected document (no hash)."""

    def __init__(self, reason: str, response: httpx.Response | None = None):
        super().__init__(reason)
        self.reason = reason
        self.etag = response.headers.get("etag") if response is not None else None
        self.last_modified = response.headers.get("last-modified") if response is not None else None


class _BoundedDecoder:
    """Undoes every `Content-Encoding` layer of a body as it streams, each layer's output
    counted against the size cap as it is produced (zlib's `max_length`), so `gzip, gzip` of
    a few KB can never inflate past the cap in memory: the bomb is refused at cap + 1 bytes."""

    _WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

    def __init__(self, content_encoding: str, cap: int):
        names = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
        names = [n for n in names if n != "identity"]
        unknown = [n for n in names if n not in self._WBITS]
        if unknown:
            raise _Failed(f"unsupported Content-Encoding {', '.join(unknown)!s}")
        # the last encoding applied is the first to undo
        self._layers = [[n, zlib.decompressobj(self._WBITS[n]), 0] for n in reversed(names)]
        self.cap = cap

    def feed(self, data: bytes) -> bytes:
        for layer in self._layers:
            data = self._inflate(layer, data)
        return data

    def finish(self) -> None:
        """Every layer must have reached its end: a cut-off compressed stream is not a document."""
        for name, d, _ in self._layers:
            if not d.eof:
                raise _Failed(f"DecodingError: Content-Encoding {name}: compressed data cut off")

    def _inflate(self, layer: list, data: bytes) -> bytes:
        name, d, produced = layer
        out = []
        try:
            while data:
                piece = d.decompress(data, self.cap + 1 - produced)
                produced += len(piece)
                if produced > self.cap:
                    raise TooLarge
                out.append(piece)
                data = d.unconsumed_tail
                if not piece and not data:
                    break
        except zlib.error as e:
            if name == "deflate" and produced == 0 and not out:  # raw deflate, as some servers send
                layer[1] = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._inflate(layer, data)
            raise _Failed(f"DecodingError: Content-Encoding {name}: {e}") from None
        layer[2] = produced
        return b"".join(out)


class _Deadline:
    """One deadline per request, from connect to the last byte (redirect hops included): a
    server dripping its headers or body byte by byte, each piece within the read timeout, is
    cut off when it passes. A timer shuts down the request's sockets (captured through
    httpcore's trace hook; connections are never reused, so every request has its own), which
    ends whatever blocking read is under way."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.received = 0
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict) -> None:
        if event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with self._lock:
                    self._socks.append(sock)
                    if self.expired:
                        self._shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)

    def reason(self) -> str:
        return (f"download too slow: {self.received} bytes in {self.seconds:g} s "
                f"({DOWNLOAD_BUDGET_FACTOR} x OFSTED_HTTP_TIMEOUT_S); abandoned")


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
    return max(0.0, (when - (now or utc_now())).total_seconds())


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


class HttpSource:
    def __init__(self, settings: Settings, known: Mapping[str, KnownDocument]):
        self.settings = settings
        self.known = known
        self.index_url = settings.http_index_url or ""
        self.allowed = AllowedHosts.from_settings(settings)
        self.limiter = RateLimiter(settings.http_min_interval_s)
        self.incoming = incoming_dir(settings)
        self._deadline: _Deadline | None = None

    def _client(self) -> httpx.Client:
        return httpx.Client(
            timeout=self.settings.http_timeout_s,
            proxy=self.settings.http_proxy,
            trust_env=False,  # settings are the only reader of the environment
            follow_redirects=False,  # followed by hand, each hop checked against the allowed hosts
            headers={"User-Agent": self.settings.http_user_agent, "Accept-Encoding": "gzip, deflate"},
            # a fresh connection per request: each request's deadline owns its socket
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def run(self) -> Iterator[FetchResult]:
        with self._client() as client:
            self.client = client
            index = redact_url(self.index_url)
            try:
                body, content_type, final_url = self._get(self.index_url, {}, self._read_index)
                links = parse_index(body, content_type, final_url)
            except (_Failed, _Rejected, ValueError) as e:  # a failed fetch, not an empty night
                reason = redact_text(str(getattr(e, "reason", e)))
                raise SourceUnavailable(f"could not read the index {index}: {reason}") from None
            except _NotModified:
                raise SourceUnavailable(
                    f"could not read the index {index}: unexpected 304 Not Modified") from None
            log.info("index %s lists %d documents", index, len(links))
            for link in links:
                try:
                    result = self._fetch_link(link)
                except IncomingWriteError:
                    raise
                except Exception as e:  # a bug or an unforeseen fault must not stop the others
                    log.exception("unexpected error fetching %s", redact_url(link.url))
                    result = failed(link.url, f"unexpected error: {type(e).__name__}: {e}")
                # stored and printed without any user:pass@ (the rest of the URI as it was)
                yield dataclasses.replace(result, source_uri=redact_url(result.source_uri),
                                          reason=redact_text(result.reason))

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
        with _Deadline(self.settings.http_timeout_s * DOWNLOAD_BUDGET_FACTOR) as deadline:
            self._deadline = deadline
            try:
                return self._get_hops(url, headers, consume, deadline)
            finally:
                self._deadline = None

    def _get_hops(self, url: str, headers: dict[str, str], consume: Callable[[httpx.Response, str], T],
                  deadline: _Deadline) -> T:
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
                trace = {"trace": deadline.trace}
                with self.client.stream("GET", current, headers=sent, extensions=trace) as r:
                    status = r.status_code
                    if status in _REDIRECTS:
                        location = r.headers.get("location")
                        if not location:
                            raise _Failed(f"HTTP {status} redirect without a Location header")
                        try:
                            current = strip_fragment(urljoin(current, location))
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
                raise _Failed(f"unsupported URL: {one_line(e)}") from None
            except httpx.TimeoutException:
                if deadline.expired:
                    raise _Failed(deadline.reason()) from None
                raise _Retry(f"timed out after {timeout:g} s") from None
            except httpx.TransportError as e:
                if deadline.expired:  # not retried: it would be as slow again
                    raise _Failed(deadline.reason()) from None
                raise _Retry(f"connection error: {one_line(e)}") from None
            except (httpx.RequestError, httpx.InvalidURL) as e:  # e.g. a bad Content-Encoding
                raise _Failed(f"{type(e).__name__}: {one_line(e)}") from None
        raise _Failed(f"more than {MAX_REDIRECTS} redirects")

    # --- what to do with a 2xx body ----------------------------------------------------
    def _check_length(self, r: httpx.Response) -> int | None:
        raw = r.headers.get("content-length", "").strip()
        expected = int(raw) if raw.isdigit() else None
        limit = self.settings.max_file_bytes
        if expected is not None and expected > limit:
            raise _Rejected(too_large(expected, limit, how=" (by its Content-Length)"), r)
        return expected

    def _stream_to(self, r: httpx.Response, tmp: TempFile | MemorySink, expected: int | None) -> None:
        limit = self.settings.max_file_bytes
        decoder = _BoundedDecoder(r.headers.get("content-encoding", ""), limit)
        deadline = self._deadline
        try:
            for chunk in r.iter_raw():
                tmp.write(decoder.feed(chunk))
                if deadline is not None:
                    deadline.received = r.num_bytes_downloaded
                    if deadline.expired:
                        raise _Failed(deadline.reason())
        except TooLarge:
            raise _Rejected(too_large(None, limit, how=" (once decoded; download stopped)"), r) from None
        except httpx.TimeoutException:
            if deadline is not None and deadline.expired:
                raise _Failed(deadline.reason()) from None
            raise _Retry(f"incomplete download: timed out after {r.num_bytes_downloaded} bytes") from None
        except httpx.TransportError as e:
            if self._deadline is not None and self._deadline.expired:
                raise _Failed(self._deadline.reason()) from None
            of = f" of {expected}" if expected is not None else ""
            cause = "connection closed early" if isinstance(e, httpx.RemoteProtocolError) else one_line(e)
            got = r.num_bytes_downloaded
            raise _Retry(f"incomplete download: received {got}{of} bytes ({cause})") from None
        if expected is not None and r.num_bytes_downloaded != expected:
            raise _Retry(f"incomplete download: received {r.num_bytes_downloaded} of {expected} bytes")
        decoder.finish()

    def _read_index(self, r: httpx.Response, final_url: str) -> tuple[bytes, str, str]:
        expected = self._check_length(r)
        sink = MemorySink(self.settings.max_file_bytes)
        self._stream_to(r, sink, expected)
        return bytes(sink.data), r.headers.get("content-type", ""), final_url

    def _save_document(self, url: str) -> Callable[[httpx.Response, str], FetchResult]:
        def consume(r: httpx.Response, final_url: str) -> FetchResult:
            media_type = r.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type in _HTML_TYPES and not _is_html_url(url):
                raise _Failed(f"server answered with an HTML page ({media_type}), not a document: "
                              "a login or error page?")
            expected = self._check_length(r)
            tmp = TempFile(self.incoming, self.settings.max_file_bytes)
            try:
                self._stream_to(r, tmp, expected)
            except BaseException:
                tmp.discard()
                raise
            etag, modified = r.headers.get("etag"), r.headers.get("last-modified")
            k = self.known.get(redact_url(url))
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
                fetched_at=utc_now(),
            )

        return consume

    def _fetch_link(self, link: Link) -> FetchResult:
        if link.problem:
            return failed(link.url, link.problem)
        if not self.allowed.allows(link.url):
            host = urlsplit(link.url).netloc
            return failed(
                link.url,
                f"link to host {host} refused: not in OFSTED_HTTP_ALLOWED_HOSTS ({self.allowed.describe()})",
            )
        k = self.known.get(redact_url(link.url))
        conditional = {}
        if k is not None and k.etag:
            conditional["If-None-Match"] = k.etag
        if k is not None and k.last_modified:
            conditional["If-Modified-Since"] = k.last_modified
        try:
            return self._get(link.url, conditional, self._save_document(link.url))
        except _NotModified as nm:
            if not conditional:
                return failed(link.url, "HTTP 304 Not Modified to an unconditional request")
            return FetchResult(
                link.url,
                "not_modified",
                sha256=k.sha256 if k else None,
                etag=nm.etag or (k.etag if k else None),
                last_modified=nm.last_modified or (k.last_modified if k else None),
            )
        except _Failed as e:
            return failed(link.url, e.reason)
        except _Rejected as e:
            return rejected(link.url, e.reason, etag=e.etag, last_modified=e.last_modified)
