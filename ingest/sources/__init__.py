"""Sources: the only package that does I/O to where letters come from.

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

from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from ingest.letters.models import FetchResult, KnownDocument
from ingest.settings import Settings
from ingest.sources.common import (
    FetchConfigError,
    IncomingWriteError,
    SourceUnavailable,
    incoming_dir,
    redact_url,
)
from ingest.sources.http import HttpSource
from ingest.sources.local import fetch_local, read_local_documents

__all__ = [
    "FetchConfigError", "IncomingWriteError", "SourceUnavailable", "fetch_documents", "incoming_dir",
    "read_local_documents",
]


def fetch_documents(settings: Settings, known: Mapping[str, KnownDocument]) -> Iterator[FetchResult]:
    """One `FetchResult` per document of the configured source (see the module docstring)."""
    if settings.source == "local":
        return fetch_local(settings, known)
    if settings.source == "http":
        index_url = settings.http_index_url
        if not index_url:
            raise FetchConfigError("OFSTED_SOURCE=http needs OFSTED_HTTP_INDEX_URL (the listing to read)")
        if urlsplit(index_url).scheme not in ("http", "https") or not urlsplit(index_url).hostname:
            raise FetchConfigError(f"OFSTED_HTTP_INDEX_URL is not an http(s) URL: {redact_url(index_url)!r}")
        return HttpSource(settings, known).run()
    raise FetchConfigError(f"unknown source {settings.source!r}: OFSTED_SOURCE must be 'local' or 'http'")
