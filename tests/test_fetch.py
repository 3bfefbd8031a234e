"""Sources: a local inbox, and a real HTTP server on 127.0.0.1 misbehaving on purpose."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from _http_support import Fault, TestHTTPServer, http_date

from ingest.letters.models import FetchResult, KnownDocument
from ingest.settings import Settings
from ingest.sources import (
    FetchConfigError,
    IncomingWriteError,
    SourceUnavailable,
    fetch_documents,
    incoming_dir,
)
from ingest.sources.http import AllowedHosts, document_filename, parse_retry_after
from ingest.sources.listing import parse_index
from ingest.sources.local import is_ignored_name

PDF_A = b"%PDF-1.4\n% letter a\n" + b"a" * 300 + b"\n%%EOF\n"
TXT_B = b"Dear Ms Smith,\r\nInspection of Borsetshire children's services\r\n" * 5
TXT_C = "Letter C \u2013 Cafcass\n".encode() * 7


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settings(tmp_path: Path, **over: object) -> Settings:
    base = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path / "data")})
    defaults: dict[str, object] = {
        "source": "http",
        "http_timeout_s": 2.0,
        "http_retries": 2,
        "http_backoff_s": 0.05,
        "http_min_interval_s": 0.0,
        "http_proxy": None,
        "http_allowed_hosts": (),
        "max_file_bytes": 100_000,
    }
    return dataclasses.replace(base, **{**defaults, **over})


def _run(settings: Settings, known: dict[str, KnownDocument] | None = None) -> dict[str, FetchResult]:
    results = list(fetch_documents(settings, known or {}))
    by_uri = {r.source_uri: r for r in results}
    assert len(by_uri) == len(results), "one result per source URI"
    return by_uri


def _known(results: dict[str, FetchResult]) -> dict[str, KnownDocument]:
    """What the manifest would remember after a run."""
    return {
        uri: KnownDocument(r.etag, r.last_modified, r.sha256)
        for uri, r in results.items()
        if r.status in ("fetched", "not_modified")
    }


def _statuses(results: dict[str, FetchResult]) -> dict[str, str]:
    return {uri: r.status for uri, r in results.items()}


def _leftovers(settings: Settings) -> list[str]:
    d = incoming_dir(settings)
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.fixture
def server() -> Iterator[TestHTTPServer]:
    with TestHTTPServer() as srv:
        yield srv


def _publish_three(srv: TestHTTPServer, origin: str | None = None) -> tuple[str, str, str]:
    """Three letters and an index linking them; `origin` of the absolute link (default: srv)."""
    origin = origin or srv.origin
    srv.serve("/letters/a.pdf", PDF_A)
    srv.serve("/letters/2024/b.txt", TXT_B)
    srv.serve("/c.txt", TXT_C)
    srv.serve_index(
        "/index.html",
        # relative, root-relative and absolute links; a duplicate with a fragment;
        # navigation links that are not documents
        ["letters/a.pdf", "/letters/2024/b.txt", origin + "/c.txt", "letters/a.pdf#page=2",
         "/about.html", "mailto:team@example.org", "#top", "/search?q=pdf"],
    )
    return origin + "/letters/a.pdf", origin + "/letters/2024/b.txt", origin + "/c.txt"


# --- HTTP: the happy path and incremental runs -------------------------------------------------

def test_first_run_fetches_all_second_gets_304s_and_a_changed_file_is_refetched(tmp_path, server):
    a, b, c = _publish_three(server)
    s = _settings(tmp_path, http_index_url=server.url("/index.html"))

    first = _run(s)
    assert _statuses(first) == {a: "fetched", b: "fetched", c: "fetched"}
    for uri, body, name in [(a, PDF_A, "a.pdf"), (b, TXT_B, "b.txt"), (c, TXT_C, "c.txt")]:
        r = first[uri]
        assert Path(r.path).read_bytes() == body
        assert Path(r.path).parent == incoming_dir(s)
        assert Path(r.path).suffix == Path(name).suffix
        assert (r.sha256, r.size, r.filename) == (_sha(body), len(body), name)
        assert r.etag and r.etag.startswith('"')
        assert r.fetched_at is not None and r.fetched_at.utcoffset() == dt.timedelta(0)
    assert not [n for n in _leftovers(s) if n.endswith(".part")]
    assert [q.path for q in server.requests] == [
        "/index.html", "/letters/a.pdf", "/letters/2024/b.txt", "/c.txt"
    ]

    server.clear_requests()
    second = _run(s, _known(first))
    assert _statuses(second) == {a: "not_modified", b: "not_modified", c: "not_modified"}
    assert second[a].sha256 == _sha(PDF_A) and second[a].path is None
    doc_requests = [q for q in server.requests if q.path != "/index.html"]
    assert len(doc_requests) == 3
    assert all(q.headers.get("if-none-match") for q in doc_requests)

    server.serve("/letters/2024/b.txt", TXT_B + b"Postscript.\n")  # new bytes -> new ETag
    third = _run(s, _known(second))
    assert _statuses(third) == {a: "not_modified", b: "fetched", c: "not_modified"}
    assert Path(third[b].path).read_bytes() == TXT_B + b"Postscript.\n"
    assert third[b].sha256 == _sha(TXT_B + b"Postscript.\n")


def test_last_modified_alone_gives_conditional_requests(tmp_path, server):
    stamp = http_date(1_700_000_000)
    server.serve("/a.pdf", PDF_A, etag=None, last_modified=stamp)
    server.serve_index("/", ["a.pdf"])
    s = _settings(tmp_path, http_index_url=server.url("/"))
    first = _run(s)
    assert first[server.url("/a.pdf")].last_modified == stamp
    second = _run(s, _known(first))
    assert second[server.url("/a.pdf")].status == "not_modified"
    assert server.requests_for("/a.pdf")[-1].headers["if-modified-since"] == stamp


def test_same_bytes_under_a_new_etag_are_not_a_new_document(tmp_path, server):
    server.serve("/a.pdf", PDF_A, etag='"v1"')
    server.serve_index("/", ["a.pdf"])
    s = _settings(tmp_path, http_index_url=server.url("/"))
    first = _run(s)
    server.serve("/a.pdf", PDF_A, etag='"v2"')
    second = _run(s, _known(first))
    r = second[server.url("/a.pdf")]
    assert (r.status, r.etag, r.sha256, r.path) == ("not_modified", '"v2"', _sha(PDF_A), None)
    assert _leftovers(s) == [Path(first[server.url("/a.pdf")].path).name]


def test_filename_from_content_disposition_and_content_type(tmp_path, server):
    server.serve("/download/123", PDF_A, content_type="application/pdf",
                 headers={"Content-Disposition": 'attachment; filename="Borsetshire 2024.pdf"'})
    server.serve("/download/456", TXT_B, content_type="text/plain; charset=utf-8")
    server.serve_feed("/feed.json", [{"url": "/download/123"}, {"url": "/download/456"}])
    s = _settings(tmp_path, http_index_url=server.url("/feed.json"))
    got = _run(s)
    assert got[server.url("/download/123")].filename == "Borsetshire 2024.pdf"
    assert got[server.url("/download/456")].filename == "456.txt"
    assert Path(got[server.url("/download/123")].path).suffix == ".pdf"


# --- HTTP: retries, timeouts, rate limit -----------------------------------------------------

def test_a_500_then_200_is_retried_and_fetched(tmp_path, server):
    a, b, c = _publish_three(server)
    server.inject("/letters/a.pdf", Fault(status=500))
    s = _settings(tmp_path, http_index_url=server.url("/index.html"))
    got = _run(s)
    assert _statuses(got) == {a: "fetched", b: "fetched", c: "fetched"}
    assert Path(got[a].path).read_bytes() == PDF_A
    assert len(server.requests_for("/letters/a.pdf")) == 2


def test_persistent_500_fails_after_retries_without_stopping_the_rest(tmp_path, server):
    a, b, c = _publish_three(server)
    server.inject("/c.txt", Fault(status=503), times=None)
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_retries=3)
    got = _run(s)
    assert _statuses(got) == {a: "fetched", b: "fetched", c: "failed"}
    assert got[c].reason == "HTTP 503 Service Unavailable (gave up after 4 attempts)"
    assert len(server.requests_for("/c.txt")) == 4


def test_a_timeout_is_retried_then_reported(tmp_path, server):
    a, b, c = _publish_three(server)
    server.inject("/letters/2024/b.txt", Fault(delay_s=3.0), times=None)
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_timeout_s=0.3, http_retries=2)
    got = _run(s)
    assert _statuses(got) == {a: "fetched", b: "failed", c: "fetched"}
    assert got[b].reason == "timed out after 0.3 s (gave up after 3 attempts)"
    assert len(server.requests_for("/letters/2024/b.txt")) == 3


def test_a_timeout_once_then_success(tmp_path, server):
    a, _, _ = _publish_three(server)
    server.inject("/letters/a.pdf", Fault(delay_s=3.0))
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_timeout_s=0.3)
    got = _run(s)
    assert got[a].status == "fetched" and Path(got[a].path).read_bytes() == PDF_A


def test_retry_after_is_honoured_and_a_long_one_is_not_waited_for(tmp_path, server):
    a, b, _ = _publish_three(server)
    server.inject("/letters/a.pdf", Fault(status=429, headers={"Retry-After": "1"}))
    server.inject("/letters/2024/b.txt", Fault(status=503, headers={"Retry-After": "3600"}))
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_backoff_s=0.01)
    got = _run(s)
    assert got[a].status == "fetched"
    first, second = server.requests_for("/letters/a.pdf")
    assert second.at - first.at >= 0.8  # the backoff alone would be 0.01 s
    assert got[b].status == "failed"
    assert "retry after 3600 s" in got[b].reason
    assert len(server.requests_for("/letters/2024/b.txt")) == 1


def test_rate_limit_spaces_requests_to_the_same_host(tmp_path, server):
    _publish_three(server)
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_min_interval_s=0.3)
    got = _run(s)
    assert {r.status for r in got.values()} == {"fetched"}
    times = [q.at for q in server.requests]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # unthrottled, these gaps are a few milliseconds; margins allow for a loaded machine
    assert min(gaps) >= 0.2, gaps
    assert times[-1] - times[0] >= 3 * 0.3 - 0.05, gaps


# --- HTTP: size limit, truncation --------------------------------------------------------------

def test_oversized_files_are_refused_with_and_without_content_length(tmp_path, server):
    big = b"x" * 5000
    server.serve("/big.pdf", big)
    server.serve("/big-stream.pdf", big, send_length=False)
    server.serve("/small.txt", TXT_B)
    server.serve_index("/", ["big.pdf", "big-stream.pdf", "small.txt"])
    s = _settings(tmp_path, http_index_url=server.url("/"), max_file_bytes=1000)
    got = _run(s)
    assert got[server.url("/small.txt")].status == "fetched"
    # refused by the size cap before they had a hash: rejected documents, not failed fetches
    assert got[server.url("/big.pdf")].status == "rejected"
    assert got[server.url("/big.pdf")].reason == (
        "file too large: 5000 bytes (by its Content-Length), over the limit of 1000 bytes "
        "(OFSTED_MAX_FILE_BYTES)"
    )
    streamed = got[server.url("/big-stream.pdf")]
    assert streamed.status == "rejected" and streamed.sha256 is None
    assert streamed.reason.startswith("file too large: more (once decoded; download stopped), over the limit "
                                      "of 1000 bytes")
    assert _leftovers(s) == [Path(got[server.url("/small.txt")].path).name]


def test_unknown_length_download_within_the_limit_is_fetched(tmp_path, server):
    server.serve("/a.pdf", PDF_A, send_length=False)
    server.serve_index("/", ["a.pdf"])
    got = _run(_settings(tmp_path, http_index_url=server.url("/")))
    assert Path(got[server.url("/a.pdf")].path).read_bytes() == PDF_A


def test_a_truncated_download_is_failed_not_fetched(tmp_path, server):
    a, b, _ = _publish_three(server)
    server.inject("/letters/a.pdf", Fault(truncate_at=50), times=None)
    server.inject("/letters/2024/b.txt", Fault(truncate_at=10))  # once: the retry completes
    s = _settings(tmp_path, http_index_url=server.url("/index.html"))
    got = _run(s)
    assert got[a].status == "failed" and got[a].path is None
    assert got[a].reason.startswith("incomplete download: received 50 of")
    assert got[a].reason.endswith("(gave up after 3 attempts)")
    assert got[b].status == "fetched" and Path(got[b].path).read_bytes() == TXT_B
    assert len(_leftovers(s)) == 2  # b and c: nothing of a is left behind


def test_a_download_too_slow_to_finish_is_abandoned(tmp_path, server):
    a, b, _ = _publish_three(server)  # a.pdf is 327 bytes: 82 pieces, 3.3 s at this pace
    server.inject("/letters/a.pdf", Fault(trickle_s=0.04, trickle_bytes=4), times=None)
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_timeout_s=0.15)
    got = _run(s)
    assert got[a].status == "failed"
    assert got[a].reason.startswith("download too slow:")
    assert got[a].reason.endswith("bytes in 1.5 s (10 x OFSTED_HTTP_TIMEOUT_S); abandoned")
    assert len(server.requests_for("/letters/a.pdf")) == 1  # not retried: it would be as slow again
    assert got[b].status == "fetched"
    assert len(_leftovers(s)) == 2


def test_dropped_connection_is_retried(tmp_path, server):
    a, _, _ = _publish_three(server)
    server.inject("/letters/a.pdf", Fault(drop=True))
    got = _run(_settings(tmp_path, http_index_url=server.url("/index.html")))
    assert got[a].status == "fetched"


# --- HTTP: hosts ---------------------------------------------------------------------------------

def _second_loopback_host() -> TestHTTPServer:
    try:
        return TestHTTPServer(host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")


def test_links_and_redirects_to_other_hosts_are_refused_without_a_request(tmp_path, server):
    with _second_loopback_host() as other:
        other.serve("/x.pdf", PDF_A)
        server.serve("/ok.pdf", PDF_A)
        server.serve("/moved.pdf", b"", etag=None)
        server.inject("/moved.pdf", Fault(status=302, headers={"Location": other.url("/x.pdf")}), times=None)
        same_server_other_name = f"http://localhost:{server.port}/ok.pdf"
        server.serve_index("/", [other.url("/x.pdf"), same_server_other_name, "ok.pdf", "moved.pdf"])
        s = _settings(tmp_path, http_index_url=server.url("/"))
        got = _run(s)
        assert _statuses(got) == {
            other.url("/x.pdf"): "failed",
            same_server_other_name: "failed",
            server.url("/ok.pdf"): "fetched",
            server.url("/moved.pdf"): "failed",
        }
        assert got[other.url("/x.pdf")].reason.startswith(f"link to host 127.0.0.2:{other.port} refused")
        assert got[same_server_other_name].reason.startswith(f"link to host localhost:{server.port} refused")
        assert got[server.url("/moved.pdf")].reason.startswith(f"redirect to {other.url('/x.pdf')} refused")
        assert other.requests == []
        assert [q.target for q in server.requests if "ok.pdf" in q.target] == ["/ok.pdf"]

        # the same listing with the other host allowed: now it is fetched (and redirects work)
        s2 = _settings(tmp_path, http_index_url=server.url("/"), http_allowed_hosts=("127.0.0.2",))
        got2 = _run(s2)
        assert got2[other.url("/x.pdf")].status == "fetched"
        assert got2[server.url("/moved.pdf")].status == "fetched"
        assert Path(got2[server.url("/moved.pdf")].path).read_bytes() == PDF_A
        assert got2[same_server_other_name].status == "failed"


def test_auth_goes_only_to_allowed_hosts(tmp_path, server):
    _publish_three(server)
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_auth_token="s3cret",
                  http_user_agent="ofsted-test/1.0")
    assert {r.status for r in _run(s).values()} == {"fetched"}
    assert {q.headers.get("authorization") for q in server.requests} == {"Bearer s3cret"}
    assert {q.headers.get("user-agent") for q in server.requests} == {"ofsted-test/1.0"}

    server.clear_requests()
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_username="ofsted",
                  http_password="pa:ss")
    _run(s)
    assert {q.headers.get("authorization") for q in server.requests} == {"Basic b2ZzdGVkOnBhOnNz"}


def test_requests_go_through_the_configured_proxy(tmp_path, server):
    a, b, c = _publish_three(server)
    with TestHTTPServer() as proxy:
        _publish_three(proxy, server.origin)  # the proxy answers from its own copy of the routes
        s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_proxy=proxy.origin)
        got = _run(s)
    assert _statuses(got) == {a: "fetched", b: "fetched", c: "fetched"}
    assert server.requests == []
    assert [q.target for q in proxy.requests] == [server.url("/index.html"), a, b, c]
    assert all(q.proxied for q in proxy.requests)


# --- HTTP: listings ----------------------------------------------------------------------------

def test_json_feed_list_and_items_object(tmp_path, server):
    server.serve("/files/a.pdf", PDF_A)
    server.serve("/files/b.txt", TXT_B)
    items = [
        {"url": "files/a.pdf", "published_at": "2024-03-01", "title": "A"},
        {"url": server.url("/files/b.txt"), "published_at": "2024-03-02", "title": "B"},
        {"title": "no url"},
    ]
    server.serve_feed("/api/feed.json", items)
    wrapped = server.serve_feed("/api/items", {"items": items[:2]})
    server.serve("/api/plain", b"  " + wrapped.body, content_type="text/plain")  # detected by content

    got = _run(_settings(tmp_path, http_index_url=server.url("/api/feed.json")))
    assert _statuses(got) == {
        server.url("/api/files/a.pdf"): "failed",  # relative to the feed's URL: 404
        server.url("/files/b.txt"): "fetched",
        server.url("/api/feed.json") + "#item-2": "failed",
    }
    assert got[server.url("/api/files/a.pdf")].reason == "HTTP 404 Not Found"
    assert got[server.url("/api/feed.json") + "#item-2"].reason == "feed item 2 has no 'url' string"

    for path in ("/api/items", "/api/plain"):
        got = _run(_settings(tmp_path, http_index_url=server.url(path)))
        assert sorted(got) == [server.url("/api/files/a.pdf"), server.url("/files/b.txt")]


def test_an_unreadable_index_is_a_failed_fetch(tmp_path, server):
    missing = server.url("/missing.html")
    with pytest.raises(SourceUnavailable) as err:
        _run(_settings(tmp_path, http_index_url=missing))
    assert str(err.value) == f"could not read the index {missing}: HTTP 404 Not Found"

    server.serve("/broken.json", b'{"items": [', content_type="application/json")
    with pytest.raises(SourceUnavailable, match="index is not valid JSON"):
        _run(_settings(tmp_path, http_index_url=server.url("/broken.json")))

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/index.html"
    with pytest.raises(SourceUnavailable) as err:
        _run(_settings(tmp_path, http_index_url=dead, http_retries=1))
    assert str(err.value).startswith(f"could not read the index {dead}: connection error")
    assert str(err.value).endswith("(gave up after 2 attempts)")


def test_a_gzip_bomb_is_refused_at_the_cap_without_inflating_it(tmp_path, server):
    """`Content-Encoding: gzip, gzip`: a few KB that inflate to 200 MB. Every layer counts
    against the cap as it streams, so memory stays near the cap (measured, Python heap)."""
    import gzip
    import tracemalloc

    bomb = gzip.compress(gzip.compress(b"\0" * (200 * 1024 * 1024), 9), 9)
    assert len(bomb) < 300_000
    server.serve("/bomb.pdf", PDF_A)
    server.inject("/bomb.pdf", Fault(status=200, headers={"Content-Encoding": "gzip, gzip"}, body=bomb),
                  times=None)
    double = gzip.compress(gzip.compress(TXT_B))
    server.serve("/double.txt", TXT_B)
    server.inject("/double.txt", Fault(status=200, headers={"Content-Encoding": "gzip, gzip"}, body=double),
                  times=None)
    server.serve_index("/", ["bomb.pdf", "double.txt"])
    s = _settings(tmp_path, http_index_url=server.url("/"), max_file_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        got = _run(s)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got[server.url("/bomb.pdf")].status == "rejected"
    assert got[server.url("/bomb.pdf")].reason == (
        "file too large: more (once decoded; download stopped), over the limit of 1048576 bytes "
        "(OFSTED_MAX_FILE_BYTES)")
    assert peak < 16 * 1024 * 1024
    ok = got[server.url("/double.txt")]  # two real layers of gzip are undone
    assert ok.status == "fetched" and Path(ok.path).read_bytes() == TXT_B


def test_cut_off_compressed_data_is_not_a_document(tmp_path, server):
    import gzip

    whole = gzip.compress(TXT_B * 50)
    server.serve("/cut.txt", TXT_B)
    half = whole[:len(whole) // 2]
    server.inject("/cut.txt", Fault(status=200, headers={"Content-Encoding": "gzip"}, body=half), times=None)
    server.serve_index("/", ["cut.txt"])
    got = _run(_settings(tmp_path, http_index_url=server.url("/")))
    cut = got[server.url("/cut.txt")]
    assert cut.status == "failed"
    assert cut.reason == "DecodingError: Content-Encoding gzip: compressed data cut off"


def test_a_server_dripping_its_headers_is_cut_off_at_the_deadline(tmp_path, server):
    """One deadline from connect to last byte: headers sent a byte at a time, each within the
    read timeout, are abandoned after 10 x OFSTED_HTTP_TIMEOUT_S, and not retried."""
    a, b, _ = _publish_three(server)
    server.inject("/letters/a.pdf", Fault(drip_headers_s=0.05), times=None)
    s = _settings(tmp_path, http_index_url=server.url("/index.html"), http_timeout_s=0.2)
    got = _run(s)
    assert got[a].status == "failed"
    assert got[a].reason == "download too slow: 0 bytes in 2 s (10 x OFSTED_HTTP_TIMEOUT_S); abandoned"
    assert len(server.requests_for("/letters/a.pdf")) == 1
    assert got[b].status == "fetched"


def test_credentials_in_urls_are_never_stored_or_printed(tmp_path, server):
    """user:pass@ in the index URL reaches the server (basic auth) but every URI handed on,
    and every reason, carries it redacted; the rest of the URI is unchanged."""
    server.serve("/letters/b.txt", TXT_B)
    server.serve_index("/index.html", ["letters/b.txt", "missing.txt"])
    index = server.url("/index.html").replace("http://", "http://reader:s3cret-pw@")
    got = _run(_settings(tmp_path, http_index_url=index))
    assert set(got) == {server.url("/letters/b.txt").replace("http://", "http://***@"),
                        server.url("/missing.txt").replace("http://", "http://***@")}
    assert not any("s3cret" in (r.reason or "") + r.source_uri for r in got.values())
    assert server.requests_for("/letters/b.txt")[0].headers["authorization"].startswith("Basic ")


def test_configuration_errors_raise_at_call(tmp_path):
    with pytest.raises(FetchConfigError, match="OFSTED_HTTP_INDEX_URL"):
        fetch_documents(_settings(tmp_path, http_index_url=None), {})
    with pytest.raises(FetchConfigError, match="not an http"):
        fetch_documents(_settings(tmp_path, http_index_url="ftp://example.org/list"), {})
    with pytest.raises(FetchConfigError, match="unknown source 'ftp'"):
        fetch_documents(_settings(tmp_path, source="ftp"), {})


def test_parse_index_html_base_fragments_and_schemes():
    html = (
        '<html><head><base href="https://example.org/letters/"></head><body>'
        '<a href="a.pdf">A</a><a href="a.pdf#p2">A again</a><a href="../b.TXT">B</a>'
        '<a href="ftp://example.org/c.pdf">C</a><a href="/about">about</a><a>no href</a>'
        '<a href="d%20e.pdf?download=1">D</a></body></html>'
    )
    links = parse_index(html.encode(), "text/html", "https://example.org/index")
    assert [(x.url, x.problem) for x in links] == [
        ("https://example.org/letters/a.pdf", None),
        ("https://example.org/b.TXT", None),
        ("ftp://example.org/c.pdf", "unsupported link scheme ftp:"),
        ("https://example.org/letters/d%20e.pdf?download=1", None),
    ]


def test_small_helpers():
    assert parse_retry_after("7") == 7.0
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert document_filename("https://h/x/Letter%201.pdf", "https://cdn/h4sh", None, "") == "Letter 1.pdf"
    evil = 'attachment; filename="../../evil.txt"'
    assert document_filename("https://h/get", "https://h/get", evil, "") == "evil.txt"
    assert [n for n in ["a.pdf", ".a.pdf", "a.pdf~", ".a.pdf.swp", "~$a.docx", "#a#", "a.part", "b.txt"]
            if not is_ignored_name(n)] == ["a.pdf", "b.txt"]


# --- local inbox ---------------------------------------------------------------------------

def _inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    (inbox / "2024" / "march").mkdir(parents=True)
    (inbox / ".git").mkdir()
    (inbox / "b.txt").write_bytes(TXT_B)
    (inbox / "2024" / "a.pdf").write_bytes(PDF_A)
    (inbox / "2024" / "march" / "c.txt").write_bytes(TXT_C)
    for junk in [".DS_Store", "b.txt~", ".b.txt.swp", "~$draft.docx", "2024/.hidden.txt", ".git/HEAD"]:
        (inbox / junk).write_bytes(b"not a letter")
    return inbox


def _local(tmp_path: Path, inbox: Path, **over: object) -> Settings:
    return _settings(tmp_path, source="local", inbox_dir=inbox, **over)


def test_local_inbox_with_sub_folders_skips_hidden_and_editor_files(tmp_path):
    inbox = _inbox(tmp_path)
    s = _local(tmp_path, inbox)
    results = list(fetch_documents(s, {}))
    assert [Path(r.source_uri.removeprefix("file://")).relative_to(inbox).as_posix() for r in results] == [
        "2024/a.pdf", "2024/march/c.txt", "b.txt",
    ]
    assert results[0].source_uri == (inbox / "2024" / "a.pdf").as_uri()
    for r, body in zip(results, [PDF_A, TXT_C, TXT_B], strict=True):
        assert r.status == "fetched"
        assert Path(r.path).read_bytes() == body and r.sha256 == _sha(body) and r.size == len(body)
        assert Path(r.path).parent == incoming_dir(s)
        assert r.filename == Path(r.source_uri).name
        assert r.fetched_at.tzinfo is not None
        Path(r.path).unlink()  # the caller may delete the temp copy: the inbox keeps its file
    assert (inbox / "b.txt").read_bytes() == TXT_B


def test_local_unchanged_files_are_not_read_again(tmp_path):
    inbox = _inbox(tmp_path)
    s = _local(tmp_path, inbox)
    first = _run(s)
    uri = (inbox / "b.txt").as_uri()

    # same size and mtime but other bytes: only a re-read could notice, and none happens
    st = (inbox / "b.txt").stat()
    (inbox / "b.txt").write_bytes(TXT_B.upper())
    os.utime(inbox / "b.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    second = _run(s, _known(first))
    assert set(_statuses(second).values()) == {"not_modified"}
    assert second[uri].sha256 == _sha(TXT_B)

    # touched (new mtime), same bytes: re-read, recognised, not a new document; stamp refreshed
    (inbox / "b.txt").write_bytes(TXT_B)
    os.utime(inbox / "b.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = _run(s, _known(second))
    assert third[uri].status == "not_modified"
    assert third[uri].etag != second[uri].etag and third[uri].sha256 == _sha(TXT_B)

    # changed bytes: fetched
    (inbox / "b.txt").write_bytes(TXT_B + b"PS\n")
    fourth = _run(s, _known(third))
    assert _statuses(fourth)[uri] == "fetched"
    assert fourth[uri].sha256 == _sha(TXT_B + b"PS\n")
    assert [u for u, st_ in _statuses(fourth).items() if st_ == "fetched"] == [uri]


def test_local_oversized_files_are_rejected_unread_and_links_skipped(tmp_path):
    inbox = _inbox(tmp_path)
    (inbox / "huge.pdf").write_bytes(b"%PDF" + b"0" * 2000)
    (inbox / "gone.pdf").symlink_to(inbox / "nowhere.pdf")
    s = _local(tmp_path, inbox, max_file_bytes=1000)
    got = _run(s)
    huge = got[(inbox / "huge.pdf").as_uri()]
    assert (huge.status, huge.reason) == (
        "rejected", "file too large: 2004 bytes, over the limit of 1000 bytes (OFSTED_MAX_FILE_BYTES)")
    assert huge.etag is not None and huge.sha256 is None  # unchanged next run: not rejected again
    assert got[(inbox / "gone.pdf").as_uri()].status == "skipped"
    assert got[(inbox / "gone.pdf").as_uri()].reason.startswith("symbolic link to ")
    assert sorted(r.filename for r in got.values() if r.status == "fetched") == ["a.pdf", "b.txt", "c.txt"]
    assert len(_leftovers(s)) == 3


def test_local_links_fifos_sockets_are_skipped_and_nothing_outside_is_read(tmp_path):
    inbox = _inbox(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside the inbox")
    (inbox / "secret.txt").symlink_to(outside / "secret.txt")
    (inbox / "linked_dir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(inbox / "pipe.txt")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(inbox / "sock.txt"))
    try:
        got = _run(_local(tmp_path, inbox))
    finally:
        sock.close()
    reasons = {Path(u).name: r.reason for u, r in got.items() if r.status == "skipped"}
    assert reasons == {
        "secret.txt": f"symbolic link to {outside / 'secret.txt'}: links are not followed "
                      "(put the file itself in the inbox)",
        "linked_dir": f"symbolic link to {outside}: links are not followed "
                      "(put the file itself in the inbox)",
        "pipe.txt": "not a regular file: FIFO (named pipe)",
        "sock.txt": "not a regular file: socket",
    }
    fetched = [r for r in got.values() if r.status == "fetched"]
    assert b"outside the inbox" not in b"".join(Path(r.path).read_bytes() for r in fetched)


def test_missing_inbox_is_a_failed_fetch(tmp_path):
    inbox = tmp_path / "nope"
    with pytest.raises(SourceUnavailable, match="does not exist"):
        _run(_local(tmp_path, inbox))


def test_an_unreadable_sub_folder_fails_the_fetch_after_the_rest_is_read(tmp_path, monkeypatch):
    """CI runs as root (permissions do not stop it): the folder's listing error is injected."""
    inbox = _inbox(tmp_path)
    real_scandir = os.scandir
    locked = str(inbox / "2024" / "march")

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    seen: list[FetchResult] = []
    with pytest.raises(SourceUnavailable, match=f"cannot read folder {locked}: Permission denied"):
        for r in fetch_documents(_local(tmp_path, inbox), {}):
            seen.append(r)
    assert sorted(r.filename for r in seen) == ["a.pdf", "b.txt"]  # the readable ones were handed over


def test_allowed_hosts_settings_and_url_tricks(tmp_path):
    s = _settings(tmp_path, http_index_url="https://example.org/letters",
                  http_allowed_hosts=("assets.example.org", "files.example.net:8443"))
    allowed = AllowedHosts.from_settings(s)
    assert allowed.allows("https://example.org/a.pdf")
    assert allowed.allows("https://EXAMPLE.org:443/a.pdf")
    assert not allowed.allows("https://example.org:8080/a.pdf")  # the index's host means its port too
    assert allowed.allows("http://assets.example.org:8080/a.pdf")  # host alone: any port
    assert allowed.allows("https://files.example.net:8443/a.pdf")
    assert not allowed.allows("https://files.example.net/a.pdf")
    assert not allowed.allows("https://example.org@evil.example/a.pdf")  # user-info trick
    assert not allowed.allows("https://example.org.evil.example/a.pdf")
    assert not allowed.allows("ftp://example.org/a.pdf")
    with pytest.raises(FetchConfigError, match="not a host"):
        AllowedHosts.from_settings(dataclasses.replace(s, http_allowed_hosts=("http://",)))


def test_unusable_answers_fail_one_document_each(tmp_path, server):
    server.serve("/login-wall.pdf", "<html><body>Please sign in</body></html>", content_type="text/html")
    server.serve("/bad-gzip.pdf", PDF_A)
    server.inject("/bad-gzip.pdf", Fault(status=200, headers={"Content-Encoding": "gzip"}, body=b"not gzip"))
    server.serve("/stray-304.pdf", PDF_A)
    server.inject("/stray-304.pdf", Fault(status=304))
    server.serve("/bad-redirect.pdf", PDF_A)
    server.inject("/bad-redirect.pdf", Fault(status=302, headers={"Location": "http://[oops/a.pdf"}))
    server.serve("/ok.txt", TXT_B)
    server.serve_index(
        "/", ["login-wall.pdf", "http://[broken/x.pdf", "bad-gzip.pdf", "stray-304.pdf", "bad-redirect.pdf",
              "ok.txt"]
    )
    s = _settings(tmp_path, http_index_url=server.url("/"))
    got = _run(s)
    assert _statuses(got) == {
        server.url("/login-wall.pdf"): "failed",
        "http://[broken/x.pdf": "failed",
        server.url("/bad-gzip.pdf"): "failed",
        server.url("/stray-304.pdf"): "failed",
        server.url("/bad-redirect.pdf"): "failed",
        server.url("/ok.txt"): "fetched",
    }
    reasons = {uri: r.reason for uri, r in got.items()}
    assert reasons[server.url("/login-wall.pdf")].startswith("server answered with an HTML page (text/html)")
    assert reasons["http://[broken/x.pdf"].startswith("invalid link 'http://[broken/x.pdf'")
    assert reasons[server.url("/bad-gzip.pdf")].startswith("DecodingError")
    assert reasons[server.url("/stray-304.pdf")] == "HTTP 304 Not Modified to an unconditional request"
    assert reasons[server.url("/bad-redirect.pdf")] == "HTTP 302 redirect to an invalid URL: 'http://[oops/a.pdf'"
    assert _leftovers(s) == [Path(got[server.url("/ok.txt")].path).name]


def test_an_unwritable_incoming_dir_is_raised_not_blamed_on_documents(tmp_path):
    inbox = _inbox(tmp_path)
    s = _local(tmp_path, inbox, runs_dir=tmp_path / "runs")
    (tmp_path / "runs").write_text("a file where the runs folder should be")
    with pytest.raises(IncomingWriteError, match="cannot write a temp file in"):
        list(fetch_documents(s, {}))
