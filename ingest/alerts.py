"""Alerts to the data team: a local JSONL log, a Slack-compatible webhook, email over SMTP.

`send_alert(settings, alert)` delivers one `Alert` to every channel named in
`settings.alert_channels` (any of `log`, `webhook`, `email`; default `log`) and returns the
channels it reached. A channel that fails never stops the others: its one-line reason is
appended to the JSONL alert log (`settings.alert_log`) as a `delivery_failed` record.

No Airflow here: the DAG's notifier builds an `Alert` from a failed task or a failed
validation and calls `send_alert`; `alert_on_dq_failure` sends the night's data-quality verdict
(a failure as an ERROR, warnings only as a WARNING: a warning never fails a night).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import ssl
import time
from dataclasses import asdict, dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ingest.files import append_bytes
from ingest.redact import redact, secrets_of
from ingest.settings import Settings

log = logging.getLogger(__name__)

CHANNELS = ("log", "webhook", "email")
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_RETRY_PAUSE_S = 1.0  # one retry, after this pause
SMTP_TIMEOUT_S = 15.0
MAX_LISTED_FAILURES = 20  # in the message; the JSONL log keeps them all
SLACK_SECTION_LIMIT = 2900  # Slack rejects section text over 3000 characters


@dataclass
class Alert:
    """What went wrong in a run, fit to tell a person."""

    run_id: str
    title: str  # e.g. "Data quality failed: marts" or "Task load_raw failed"
    failures: list[dict] | list[str]  # DQ failures ({table, expectation, column, detail}) or lines
    counts: dict  # e.g. {"evaluated": 57, "failed": 3} or {"new": 12, "rejected": 1}
    data_docs: str | None  # where the GX data docs are (path or URL)
    severity: str = "error"  # "error" (something failed) or "warning" (the night succeeded)
    task_id: str | None = None
    log_url: str | None = None
    warnings: list[dict] | list[str] = field(default_factory=list)  # DQ warnings: named, never failures
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


class DeliveryError(Exception):
    """A channel could not deliver; the message is one line."""


# --- the message ------------------------------------------------------------------------------

def failure_line(failure: dict | str) -> str:
    """One failure as one line: `table: expectation on column - detail`, or the text as given."""
    if not isinstance(failure, dict):
        return _one_line(failure)
    where = failure.get("table") or failure.get("task_id") or ""
    what = failure.get("expectation") or failure.get("error") or ""
    column = failure.get("column")
    line = f"{where}: {what}" if where and what else (where or what)
    if column:
        line += f" on {column}"
    if failure.get("detail"):
        line += f" - {failure['detail']}"
    return _one_line(line or json.dumps(failure, default=str))


def warning_line(warning: dict | str) -> str:
    """One DQ warning as one line: `check (table): N rows - rule`, then where its rows are."""
    if not isinstance(warning, dict):
        return _one_line(warning)
    count = warning.get("count")
    rows = f": {count:,} row{'s' if count != 1 else ''}" if isinstance(count, int) else ""
    table = f" ({warning['table']})" if warning.get("table") else ""
    line = f"{warning.get('check') or warning.get('expectation') or '?'}{table}{rows}"
    if warning.get("detail"):
        line += f" - {warning['detail']}"
    if warning.get("failing_rows"):
        line += f" [rows: {warning['failing_rows']}]"
    return _one_line(line)


def subject(alert: Alert) -> str:
    return _one_line(f"[ofsted-letters] {alert.severity.upper()}: {alert.title} (run {alert.run_id})")


def message_text(alert: Alert) -> str:
    """The plain-text message (email body, webhook fallback text)."""
    lines = [f"{alert.title}", "", f"Run:      {alert.run_id}"]
    if alert.task_id:
        lines.append(f"Task:     {alert.task_id}")
    lines.append(f"Severity: {alert.severity}")
    if alert.failures or not alert.warnings:
        lines += ["", f"What failed ({len(alert.failures)}):"]
        lines += [f"  - {failure_line(f)}" for f in alert.failures[:MAX_LISTED_FAILURES]]
        if len(alert.failures) > MAX_LISTED_FAILURES:
            lines.append(f"  ... and {len(alert.failures) - MAX_LISTED_FAILURES} more (see the data docs)")
        if not alert.failures:
            lines.append("  (no details)")
    if alert.warnings:
        lines += ["", f"Warnings ({len(alert.warnings)}; a warning never fails a night):"]
        lines += [f"  - {warning_line(w)}" for w in alert.warnings[:MAX_LISTED_FAILURES]]
        if len(alert.warnings) > MAX_LISTED_FAILURES:
            lines.append(f"  ... and {len(alert.warnings) - MAX_LISTED_FAILURES} more (audit.dq_checks)")
    lines += ["", "Counts:"]
    lines += [f"  {k}: {_count(v)}" for k, v in alert.counts.items()] or ["  (none)"]
    lines += ["", f"Data docs: {alert.data_docs or 'not built'}"]
    if alert.log_url:
        lines.append(f"Log:       {alert.log_url}")
    return "\n".join(lines) + "\n"


def slack_payload(alert: Alert) -> dict:
    """A Slack-compatible webhook body: `text` (fallback and notifications) plus Block Kit `blocks`."""
    failures = "\n".join(f"• {failure_line(f)}" for f in alert.failures[:MAX_LISTED_FAILURES])
    if len(alert.failures) > MAX_LISTED_FAILURES:
        failures += f"\n… and {len(alert.failures) - MAX_LISTED_FAILURES} more"
    counts = ", ".join(f"{k}: {_count(v)}" for k, v in alert.counts.items()) or "none"
    where = [f"*Run* `{alert.run_id}`"] + ([f"*Task* `{alert.task_id}`"] if alert.task_id else [])
    links = [f"Data docs: {alert.data_docs or 'not built'}"]
    if alert.log_url:
        links.append(f"<{alert.log_url}|Task log>")
    sections = []
    if alert.failures or not alert.warnings:
        sections.append(_mrkdwn(f"*What failed*\n{failures or '(no details)'}"))
    if alert.warnings:
        warned = "\n".join(f"• {warning_line(w)}" for w in alert.warnings[:MAX_LISTED_FAILURES])
        if len(alert.warnings) > MAX_LISTED_FAILURES:
            warned += f"\n… and {len(alert.warnings) - MAX_LISTED_FAILURES} more"
        sections.append(_mrkdwn(f"*Warnings* (a warning never fails a night)\n{warned}"))
    return {
        "text": _clip(f"{subject(alert)}\n{message_text(alert)}", 3900),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(alert.title, 150)}},
            _mrkdwn(" · ".join(where) + f" · *{alert.severity}*"),
            *sections,
            _mrkdwn(f"*Counts* {counts}"),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(" · ".join(links), 2900)}]},
        ],
    }


def _mrkdwn(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SLACK_SECTION_LIMIT)}}


# --- channels -----------------------------------------------------------------------------------

def write_log(path: Path, record: dict) -> None:
    """Append one JSON object as one line (creating the folder)."""
    line = json.dumps(record, default=str, ensure_ascii=False)
    append_bytes(path, (line + "\n").encode("utf-8"))  # never through a link planted at its name


def post_webhook(url: str, payload: dict, *, timeout: float | None = None,
                 retry_pause: float | None = None) -> None:
    """POST the payload as JSON; one retry on a transport error or a non-2xx answer."""
    timeout = WEBHOOK_TIMEOUT_S if timeout is None else timeout
    retry_pause = WEBHOOK_RETRY_PAUSE_S if retry_pause is None else retry_pause
    target = _safe_url(url)
    reason = ""
    for attempt in (1, 2):
        try:
            response = httpx.post(url, json=payload, timeout=timeout)
            if response.is_success:
                return
            reason = f"HTTP {response.status_code} from {target}"
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__} posting to {target}: {_one_line(exc) or 'no detail'}"
        if attempt == 1:
            time.sleep(retry_pause)
    raise DeliveryError(f"{reason} (after one retry)")


def send_email(settings: Settings, alert: Alert) -> None:
    """Send the plain-text message over SMTP: SMTPS (`OFSTED_SMTP_SSL`) or STARTTLS
    (`OFSTED_SMTP_STARTTLS`), certificates checked against the system's CAs. A login
    (`OFSTED_SMTP_USER`) goes over TLS only: without it the mail is not sent at all, unless
    `OFSTED_SMTP_ALLOW_PLAINTEXT` says the password may cross the network in clear."""
    if not settings.smtp_host:
        raise DeliveryError("OFSTED_SMTP_HOST is not set")
    if not settings.alert_email_to:
        raise DeliveryError("OFSTED_ALERT_EMAIL_TO is not set")
    tls = settings.smtp_ssl or settings.smtp_starttls
    if settings.smtp_user and not tls and not settings.smtp_allow_plaintext:
        raise DeliveryError("refusing to send the SMTP login without TLS: set OFSTED_SMTP_STARTTLS=true "
                            "or OFSTED_SMTP_SSL=true (or OFSTED_SMTP_ALLOW_PLAINTEXT=true to allow it)")
    msg = EmailMessage()
    msg["Subject"] = subject(alert)
    msg["From"] = settings.alert_email_from
    msg["To"] = ", ".join(settings.alert_email_to)
    msg.set_content(message_text(alert))
    try:
        with _smtp_connection(settings) as smtp:
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        raise DeliveryError(f"{type(exc).__name__} sending mail via {where}: {_one_line(exc)}") from exc


def _smtp_connection(settings: Settings) -> smtplib.SMTP:
    if settings.smtp_ssl:
        return smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S,
                                context=ssl.create_default_context())
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S)
    try:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())  # SMTPNotSupportedError if not offered
    except BaseException:
        smtp.close()
        raise
    return smtp


# --- the entry point ----------------------------------------------------------------------------

def send_alert(settings: Settings, alert: Alert) -> list[str]:
    """Deliver `alert` to every configured channel; return the channels that got it."""
    channels = list(dict.fromkeys(c.strip().lower() for c in settings.alert_channels if c.strip())) or ["log"]
    alert = _redacted(settings, alert)
    delivered: list[str] = []
    for channel in channels:
        try:
            _deliver(settings, alert, channel)
        except Exception as exc:  # noqa: BLE001 - a broken channel must never stop the others
            reason = _one_line(exc) or type(exc).__name__
            log.warning("alert for run %s not sent to %s: %s", alert.run_id, channel, reason)
            _log_failure(settings, alert, channel, reason)
        else:
            delivered.append(channel)
    log.info(
        "alert %r for run %s delivered to %s", alert.title, alert.run_id, ", ".join(delivered) or "nothing"
    )
    return delivered


def _redacted(settings: Settings, alert: Alert) -> Alert:
    """The alert with URLs' user-info and the configured secrets masked (`ingest.redact`)."""
    secrets = secrets_of(settings)

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            return redact(v, secrets)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return replace(alert, title=clean(alert.title), failures=clean(alert.failures),
                   data_docs=clean(alert.data_docs), log_url=clean(alert.log_url))


def _deliver(settings: Settings, alert: Alert, channel: str) -> None:
    if channel == "log":
        write_log(settings.alert_log, {"type": "alert", **asdict(alert)})
    elif channel == "webhook":
        if not settings.alert_webhook_url:
            raise DeliveryError("OFSTED_ALERT_WEBHOOK_URL is not set")
        post_webhook(settings.alert_webhook_url, slack_payload(alert))
    elif channel == "email":
        send_email(settings, alert)
    else:
        raise DeliveryError(f"unknown alert channel {channel!r} (choose from {', '.join(CHANNELS)})")


def _log_failure(settings: Settings, alert: Alert, channel: str, reason: str) -> None:
    record = {
        "type": "delivery_failed",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": alert.run_id,
        "title": alert.title,
        "channel": channel,
        "reason": reason,
    }
    try:
        write_log(settings.alert_log, record)
    except OSError as exc:
        log.error("cannot write the alert log %s: %s", settings.alert_log, _one_line(exc))


# --- data-quality verdicts ----------------------------------------------------------------------

def alert_on_dq_failure(settings: Settings, run_id: str, what: str, dq: dict, counts: dict | None,
                        task_id: str | None = None, source: str = "ofsted_letters_nightly") -> bool:
    """Alert on a DQ verdict (from expectations.validate, read by ingest.warehouse.verdict);
    returns whether it FAILED (the caller then fails the step).

    - a check failed: an ERROR alert naming each failure (and the warnings so far);
    - only warnings, on the night's whole verdict (`final`, from validate_marts): one WARNING
      alert naming each warning with its count; returns False (a warning never fails a night);
    - nothing, otherwise (warnings of an earlier stage wait for the night's whole verdict)."""
    failed = not dq.get("success", False)
    warnings = list(dq.get("warnings") or [])
    if not failed and not (warnings and dq.get("final")):
        return False
    summary = {k: v for k, v in (counts or {}).items() if isinstance(v, int | float)}
    summary.update(evaluated=dq.get("evaluated", 0), passed=dq.get("passed", 0),
                   warnings=dq.get("warned", len(warnings)), failed=dq.get("failed", 0))
    if failed:
        title = f"{source}: {dq.get('failed', 0)} of {dq.get('evaluated', 0)} checks failed on the {what}"
    else:
        title = (f"{source}: {len(warnings)} data-quality warning{'s' if len(warnings) != 1 else ''} "
                 f"(the night succeeded; {dq.get('passed', 0)} checks passed)")
    alert = Alert(
        run_id=run_id,
        title=title,
        failures=list(dq.get("failures", [])),
        counts=summary,
        data_docs=str(dq.get("data_docs", "")),
        severity="error" if failed else "warning",
        task_id=task_id,
        warnings=warnings,
    )
    send_alert(settings, alert)
    return failed


# --- helpers --------------------------------------------------------------------------------------

def _safe_url(url: str) -> str:
    """scheme://host[:port] only: Slack webhook paths are secrets and must not reach logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}" if parts.netloc else "the webhook URL"


def _count(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())[:500]
