"""What leaves the process is redacted and inert: one redactor for every line.

- **Redaction**: a URL's `user:pass@` becomes `***@`, and every configured secret (the HTTP
  password and token, the SMTP password, the webhook URL and its path, the index URL's
  password; as written, URL-encoded and inside a Basic-auth header) becomes `***`.
- **Escaping**: control characters that a terminal would act on (C0 but tab and newline,
  DEL, C1, and the bidirectional overrides that reorder what is shown) are written as
  `\\x1b`, `\\u202e`...: text from data (a letter, a reason, a file name) can never move the
  cursor, retitle the window or hide what follows.

`install(settings)` (called by `ofsted`'s entry point) puts both in front of `sys.stderr` and
`sys.stdout` (stdout is escaped where it is a terminal or a command's report, never where it
carries data: `ofsted sql --format csv > out.csv` keeps its values) and makes every log record
redacted as it is made, so loggers, handlers and alerts created later all get it. `redact`
is what the alerts, the night history and the sources call on text they store.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")
# C0 (but \t \n), DEL, C1, and the bidirectional embeddings, overrides and isolates
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_NO_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_secrets: tuple[str, ...] = ()  # the configured secrets, once `install` has been called


def redact_url(url: str) -> str:
    """The URL with any `user:pass@` replaced by `***@` (the rest unchanged, so two URLs that
    differ only in their credentials stay one key); stored and printed in place of the URL."""
    return _USERINFO.sub(r"\1***@", url, count=1)


def redact(text: str | None, secrets: Iterable[str] | None = None) -> str | None:
    """`text` with every URL's user-info and every configured secret masked (None stays None)."""
    if not text:
        return text
    text = _USERINFO.sub(r"\1***@", text)
    for secret in _secrets if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def escape_controls(text: str, keep_newlines: bool = True) -> str:
    """`text` with every control character a terminal acts on written as an escape (`\\x1b`)."""
    pattern = _CONTROLS if keep_newlines else _CONTROLS_NO_NEWLINE
    return pattern.sub(_escape_one, text)


def _escape_one(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def has_controls(text: str) -> bool:
    """Whether `text` holds a control character (newline and tab allowed)."""
    return _CONTROLS.search(text) is not None


def secrets_of(settings: Any) -> tuple[str, ...]:
    """Every secret the settings hold, in each form it could be printed in, longest first."""
    values = [getattr(settings, k, None) for k in ("http_password", "http_auth_token", "smtp_password")]
    forms: set[str] = set()
    for url_field in ("http_index_url", "alert_webhook_url"):
        url = getattr(settings, url_field, None)
        if not url:
            continue
        parts = urlsplit(url)
        values.append(parts.password and unquote(parts.password))
        if url_field == "alert_webhook_url":  # a webhook's path is its credential
            values += [url, parts.path.strip("/")]
    users = {getattr(settings, k, None) for k in ("http_username", "smtp_user")}
    users |= {urlsplit(getattr(settings, "http_index_url", None) or "").username}
    for v in values:
        if not v or len(v) < MIN_SECRET_CHARS:
            continue
        forms |= {v, quote(v, safe=""), quote(v)}
        for user in users - {None, ""}:
            forms.add(base64.b64encode(f"{user}:{v}".encode()).decode())
    return tuple(sorted(forms, key=len, reverse=True))


class RedactingStream:
    """A text stream that redacts (and escapes) what is written, then passes it on."""

    def __init__(self, stream: TextIO, escape: bool = True):
        self._stream = stream
        self._escape = escape

    def write(self, text: str) -> int:
        out = redact(text) or ""
        if self._escape:
            out = escape_controls(out)
        self._stream.write(out)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # fileno, flush, isatty, encoding, buffer...
        return getattr(self._stream, name)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _RedactingRecords:
    """A log record factory: each record's message is formatted and redacted as it is made."""

    def __init__(self, factory):
        self.factory = factory

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report
            return record
        record.msg, record.args = redact(message), None
        return record


def install(settings: Any = None, escape_stdout: bool = True) -> None:
    """Redact (and escape) everything this process writes to stderr, stdout and its logs."""
    global _secrets
    if settings is not None:
        _secrets = secrets_of(settings)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    sys.stdout._escape = escape_stdout or _isatty(sys.stdout)
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecords):
        logging.setLogRecordFactory(_RedactingRecords(factory))
