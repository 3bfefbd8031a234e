"""A real HTTP server for tests, on a loopback address, with faults injected per path.

Use it as a context manager; it serves documents you register, answers conditional
requests (ETag / Last-Modified -> 304), records every request it receives, and can be told
to misbehave for a path a given number of times::

    from _http_support import Fault, TestHTTPServer   # tests/ is on sys.path under pytest

    with TestHTTPServer() as srv:                      # 127.0.0.1, a free port
        srv.serve("/letters/a.pdf", b"%PDF-1.4 ...")   # content type guessed, ETag = hash
        srv.serve_index("/index.html", ["/letters/a.pdf"])
        srv.inject("/letters/a.pdf", Fault(status=500))               # once, then normal
        srv.inject("/slow.pdf", Fault(delay_s=2.0), times=None)       # every request
        url = srv.url("/index.html")
        ...
        assert [r.path for r in srv.requests] == [...]
        assert srv.requests_for("/letters/a.pdf")[0].headers["user-agent"] == ...

`Fault` fields (combine as needed):
  - ``status``: answer with this status (and ``headers`` / ``body``) instead of the document;
  - ``delay_s``: sleep this long before answering (to trip a client timeout);
  - ``truncate_at``: send the full ``Content-Length`` but only this many body bytes, then
    close the connection (a dropped download);
  - ``drop``: close the connection without any answer;
  - ``trickle_s``: send the document ``trickle_bytes`` (16) at a time, sleeping this long
    between pieces (a server too slow to finish, though never silent long enough to time out);
  - ``drip_headers_s``: send the status line and headers a byte at a time, this long apart,
    never ending them (a server holding a client before the body starts).

Content helpers: ``serve`` (any bytes/str), ``serve_index`` (an HTML page of links),
``serve_feed`` (a JSON feed); ``origin`` / ``url(path)`` for addresses; ``requests``,
``requests_for(path)`` and ``clear_requests()`` for what was received (each a
``RecordedRequest`` with ``method, path, target, headers`` (lower-case names), ``at``
(``time.monotonic()``) and ``proxied``); ``http_date(epoch)`` for Last-Modified values.

Other knobs: ``serve(..., send_length=False)`` streams the body without a Content-Length
(the connection is closed to end it); ``serve(..., etag=None, last_modified=...)`` controls
the validators; ``TestHTTPServer(host="127.0.0.2")`` gives a second "host" on the same
machine. The server also works as a plain-HTTP forward proxy: a request in absolute form
(``GET http://host:port/path``) is answered from this server's own routes and recorded with
``proxied=True`` and the full target in ``target``.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["Document", "Fault", "RecordedRequest", "TestHTTPServer", "http_date"]


def http_date(epoch_s: float) -> str:
    """An RFC 7231 date (the Last-Modified format) for a POSIX time."""
    return formatdate(epoch_s, usegmt=True)


@dataclass
class Fault:
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0
    truncate_at: int | None = None
    drop: bool = False
    trickle_s: float = 0.0
    trickle_bytes: int = 16
    drip_headers_s: float = 0.0


@dataclass
class Document:
    body: bytes
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: str | None = None
    send_length: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # path only (query kept), also for proxied requests
    target: str  # the request target exactly as sent (absolute URL when proxied)
    headers: dict[str, str]  # names lower-cased
    at: float  # time.monotonic() when the request line had been read
    proxied: bool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass  # keep test output quiet

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        owner = self.server.owner
        target = self.path
        proxied = target.startswith(("http://", "https://"))
        parts = urlsplit(target)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "") if proxied else target
        owner._record(
            RecordedRequest(
                method=self.command,
                path=path,
                target=target,
                headers={k.lower(): v for k, v in self.headers.items()},
                at=time.monotonic(),
                proxied=proxied,
            )
        )
        fault = owner._next_fault(path)
        doc = owner._docs.get(path)
        if fault is not None:
            if fault.delay_s and owner._stopping.wait(fault.delay_s):
                return
            if fault.drop:
                self.close_connection = True
                self._hard_close()
                return
            if fault.status is not None:
                self._send(fault.status, fault.body, dict(fault.headers), head=head)
                return
            if fault.truncate_at is not None and doc is not None:
                self._send_truncated(doc, fault.truncate_at)
                return
            if fault.trickle_s and doc is not None:
                self._send_slowly(doc, fault.trickle_s, max(1, fault.trickle_bytes))
                return
            if fault.drip_headers_s:
                self._drip_headers(fault.drip_headers_s)
                return
        if doc is None:
            self._send(404, b"not found\n", {"Content-Type": "text/plain"}, head=head)
            return
        if self._not_modified(doc):
            headers = {}
            if doc.etag:
                headers["ETag"] = doc.etag
            if doc.last_modified:
                headers["Last-Modified"] = doc.last_modified
            self._send(304, b"", headers, head=True)
            return
        headers = {"Content-Type": doc.content_type, **doc.headers}
        if doc.etag:
            headers["ETag"] = doc.etag
        if doc.last_modified:
            headers["Last-Modified"] = doc.last_modified
        if doc.send_length:
            self._send(200, doc.body, headers, head=head)
        else:
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if not head:
                self._write(doc.body)

    def _not_modified(self, doc: Document) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            return doc.etag is not None and (doc.etag in tags or "*" in tags)
        ims = self.headers.get("If-Modified-Since")
        if ims and doc.last_modified:
            try:
                return parsedate_to_datetime(doc.last_modified) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != 304:
            self._write(body)

    def _send_truncated(self, doc: Document, cut: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", doc.content_type)
        if doc.etag:
            self.send_header("ETag", doc.etag)
        self.send_header("Content-Length", str(len(doc.body)))
        self.end_headers()
        self._write(doc.body[:cut])
        self.close_connection = True
        self._hard_close()

    def _send_slowly(self, doc: Document, pause_s: float, piece: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", doc.content_type)
        self.send_header("Content-Length", str(len(doc.body)))
        self.end_headers()
        for i in range(0, len(doc.body), piece):
            self._write(doc.body[i:i + piece])
            if self.close_connection or self.server.owner._stopping.wait(pause_s):
                self.close_connection = True
                return

    def _drip_headers(self, pause_s: float) -> None:
        """Status line and headers one byte at a time, never finishing them (until stopped)."""
        head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 40) for i in range(10_000))
        for i in range(len(head)):
            self._write(head[i:i + 1])
            if self.close_connection or self.server.owner._stopping.wait(pause_s):
                break
        self.close_connection = True

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client went away (e.g. it timed out)

    def _hard_close(self) -> None:
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], owner: TestHTTPServer):
        self.owner = owner
        super().__init__(addr, _Handler)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - stdlib signature
        pass  # broken pipes from clients that gave up are expected in fault tests


class TestHTTPServer:
    """A threaded HTTP/1.1 server on `host` (default 127.0.0.1) and a free port."""

    __test__ = False  # not a pytest test class

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._docs: dict[str, Document] = {}
        self._faults: dict[str, list[list]] = {}  # path -> [[fault, remaining or None], ...]
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd = _Server((host, port), self)
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"http-{host}", daemon=True
        )

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> TestHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TestHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- content -----------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def serve(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str | None = None,
        etag: str | None | bool = True,
        last_modified: str | None = None,
        send_length: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> Document:
        """Register (or replace) the document at `path`. `etag=True` derives a strong ETag from
        the bytes, so replacing the body changes it; `etag=None` sends none."""
        data = body.encode() if isinstance(body, str) else body
        if content_type is None:
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if etag is True:
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        doc = Document(
            body=data,
            content_type=content_type,
            etag=etag or None,
            last_modified=last_modified,
            send_length=send_length,
            headers=dict(headers or {}),
        )
        with self._lock:
            self._docs[path] = doc
        return doc

    def serve_index(self, path: str, links: Iterable[str], *, extra_html: str = "") -> Document:
        """An HTML page with one `<a href>` per link (relative or absolute), plus `extra_html`."""
        items = "\n".join(f'  <li><a href="{escape(h)}">{escape(h)}</a></li>' for h in links)
        html = (
            "<!doctype html>\n<html><body><h1>Letters</h1>\n"
            f"<ul>\n{items}\n</ul>\n{extra_html}</body></html>\n"
        )
        return self.serve(path, html, content_type="text/html; charset=utf-8")

    def serve_feed(self, path: str, items: object, *, content_type: str = "application/json") -> Document:
        """A JSON feed: `items` is dumped as given (a list, or {"items": [...]})."""
        return self.serve(path, json.dumps(items), content_type=content_type)

    def inject(self, path: str, fault: Fault, *, times: int | None = 1) -> None:
        """Misbehave on the next `times` requests for `path` (None: on every request).
        Faults queued for one path apply in the order they were injected."""
        with self._lock:
            self._faults.setdefault(path, []).append([fault, times])

    # --- what happened -----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- used by the handler -----------------------------------------------------------
    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            entry = queue[0]
            fault, remaining = entry
            if remaining is not None:
                entry[1] = remaining - 1
                if entry[1] <= 0:
                    queue.pop(0)
            return fault
