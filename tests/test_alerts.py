"""Alerts reach a real webhook server and a real SMTP server on 127.0.0.1; a dead channel
never stops the others, and the JSONL alert log says why it failed."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest
from conftest import _free_port

from ingest import alerts
from ingest.alerts import Alert, send_alert
from ingest.settings import Settings

DQ_FAILURES = [
    {
        "table": "marts.fct_inspections",
        "expectation": "expect_column_values_to_not_be_null",
        "column": "authority_gss_code",
        "detail": "every inspection has an authority with a GSS code - 1 of 152 rows unexpected"
        " - e.g. letter_authority_name=Borsetshire County Council",
    },
    {
        "table": "marts.fct_findings",
        "expectation": "expect_column_mean_to_be_between",
        "column": "has_theme",
        "detail": "theme coverage: at least 70% of findings have a theme - observed 0.61 (expected 0.7..1)",
    },
]


@pytest.fixture(autouse=True)
def quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "WEBHOOK_RETRY_PAUSE_S", 0.05)


def make_settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path), **env})


def dq_alert() -> Alert:
    return Alert(
        run_id="scheduled__2026-11-23T02:00:00+00:00",
        title="Data quality failed: marts",
        failures=list(DQ_FAILURES),
        counts={"evaluated": 37, "failed": 2},
        data_docs="/srv/ofsted/report/data_docs/index.html",
        task_id="validate_marts",
    )


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_default_channel_is_the_jsonl_log(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.alert_channels == ("log",)

    assert send_alert(settings, dq_alert()) == ["log"]
    assert send_alert(settings, dq_alert()) == ["log"]

    assert settings.alert_log == tmp_path / "alerts" / "alerts.jsonl"
    records = read_log(settings.alert_log)  # every line is one valid JSON object
    assert len(records) == 2
    record = records[0]
    assert record["type"] == "alert" and record["run_id"] == "scheduled__2026-11-23T02:00:00+00:00"
    assert record["failures"] == DQ_FAILURES
    assert record["counts"] == {"evaluated": 37, "failed": 2}
    assert record["data_docs"] == "/srv/ofsted/report/data_docs/index.html"
    assert record["severity"] == "error" and record["task_id"] == "validate_marts"


def test_alert_reaches_webhook_email_and_log(tmp_path: Path, webhook, mailbox) -> None:
    box, port = mailbox, mailbox.port
    settings = make_settings(
        tmp_path,
        OFSTED_ALERT_CHANNELS="log,webhook,email",
        OFSTED_ALERT_WEBHOOK_URL=webhook.url,
        OFSTED_SMTP_HOST="127.0.0.1",
        OFSTED_SMTP_PORT=str(port),
        OFSTED_ALERT_EMAIL_FROM="airflow@ofsted.test",
        OFSTED_ALERT_EMAIL_TO="data-team@ofsted.test,oncall@ofsted.test",
    )

    assert send_alert(settings, dq_alert()) == ["log", "webhook", "email"]

    (body,) = webhook.bodies
    text = body["text"]
    for expected in ("scheduled__2026-11-23T02:00:00+00:00", "expect_column_values_to_not_be_null",
                     "authority_gss_code", "Borsetshire County Council", "evaluated: 37", "failed: 2",
                     "/srv/ofsted/report/data_docs/index.html"):
        assert expected in text
    blocks = json.dumps(body["blocks"])
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "Data quality failed: marts"}
    assert "marts.fct_findings: expect_column_mean_to_be_between on has_theme" in blocks
    assert "validate_marts" in blocks

    (mail,) = box.messages
    assert box.envelopes == [("airflow@ofsted.test", ["data-team@ofsted.test", "oncall@ofsted.test"])]
    assert mail["Subject"] == (
        "[ofsted-letters] ERROR: Data quality failed: marts (run scheduled__2026-11-23T02:00:00+00:00)"
    )
    assert mail.get_content_type() == "text/plain"
    mail_body = mail.get_content().replace("\r\n", "\n")  # SMTP line endings
    assert "Run:      scheduled__2026-11-23T02:00:00+00:00" in mail_body
    assert "  - marts.fct_inspections: expect_column_values_to_not_be_null on authority_gss_code" in mail_body
    assert "  evaluated: 37\n  failed: 2\n" in mail_body
    assert "Data docs: /srv/ofsted/report/data_docs/index.html" in mail_body

    assert [r["type"] for r in read_log(settings.alert_log)] == ["alert"]


def test_dead_webhook_does_not_stop_email_and_log(tmp_path: Path, mailbox, free_port: int) -> None:
    box, port = mailbox, mailbox.port
    dead = free_port  # bound then closed: nothing listens there
    settings = make_settings(
        tmp_path,
        OFSTED_ALERT_CHANNELS="webhook,email,log",
        OFSTED_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{dead}/services/T000/B000/secret-token",
        OFSTED_SMTP_HOST="127.0.0.1",
        OFSTED_SMTP_PORT=str(port),
        OFSTED_ALERT_EMAIL_TO="data-team@ofsted.test",
    )

    assert send_alert(settings, dq_alert()) == ["email", "log"]

    assert len(box.messages) == 1
    failed, alert = read_log(settings.alert_log)
    assert failed["type"] == "delivery_failed" and failed["channel"] == "webhook"
    assert failed["run_id"] == "scheduled__2026-11-23T02:00:00+00:00"
    assert "ConnectError" in failed["reason"] and f"127.0.0.1:{dead}" in failed["reason"]
    assert "after one retry" in failed["reason"]
    assert "secret-token" not in failed["reason"]  # webhook paths are credentials
    assert "\n" not in failed["reason"]
    assert alert["type"] == "alert"


def test_webhook_is_retried_once(tmp_path: Path, webhook) -> None:
    settings = make_settings(tmp_path, OFSTED_ALERT_CHANNELS="webhook", OFSTED_ALERT_WEBHOOK_URL=webhook.url)

    webhook.statuses = [503]
    assert send_alert(settings, dq_alert()) == ["webhook"]
    assert len(webhook.bodies) == 2

    webhook.statuses = [500, 500]
    assert send_alert(settings, dq_alert()) == []
    assert len(webhook.bodies) == 4
    (failed,) = read_log(settings.alert_log)
    assert failed["channel"] == "webhook" and failed["reason"].startswith("HTTP 500 from http://127.0.0.1:")


def test_dead_smtp_and_missing_settings_are_logged(tmp_path: Path, webhook, free_port: int) -> None:
    settings = make_settings(
        tmp_path,
        OFSTED_ALERT_CHANNELS="email,pager,webhook",
        OFSTED_ALERT_WEBHOOK_URL=webhook.url,
        OFSTED_SMTP_HOST="127.0.0.1",
        OFSTED_SMTP_PORT=str(free_port),
        OFSTED_ALERT_EMAIL_TO="data-team@ofsted.test",
    )
    assert send_alert(settings, dq_alert()) == ["webhook"]
    email, pager = read_log(settings.alert_log)
    assert email["channel"] == "email" and "sending mail via 127.0.0.1:" in email["reason"]
    assert pager["channel"] == "pager" and "unknown alert channel 'pager'" in pager["reason"]

    no_smtp = make_settings(tmp_path / "b", OFSTED_ALERT_CHANNELS="email,log")
    assert send_alert(no_smtp, dq_alert()) == ["log"]
    (failed, _) = read_log(no_smtp.alert_log)
    assert failed["reason"] == "OFSTED_SMTP_HOST is not set"


def test_task_failure_alert_with_plain_lines(tmp_path: Path, webhook) -> None:
    settings = make_settings(
        tmp_path, OFSTED_ALERT_CHANNELS="webhook,log", OFSTED_ALERT_WEBHOOK_URL=webhook.url
    )
    alert = Alert(
        run_id="manual__1", title="Task load_raw failed", failures=["IOException: could not set lock"],
        counts={"try_number": 3}, data_docs=None, severity="critical", task_id="load_raw",
        log_url="http://localhost:8080/dags/ofsted_letters_nightly/runs/manual__1/tasks/load_raw",
    )
    assert send_alert(settings, alert) == ["webhook", "log"]
    text = webhook.bodies[0]["text"]
    assert "CRITICAL: Task load_raw failed (run manual__1)" in text
    assert "  - IOException: could not set lock" in text
    assert "Data docs: not built" in text and "tasks/load_raw" in text
    assert read_log(settings.alert_log)[0]["failures"] == ["IOException: could not set lock"]


# --- the night's DQ verdict: a warning is a WARNING, never a failure ---------------------------------

WARNING = {"check": "dq_authority_inspected_again_within_min_days", "stage": "dbt",
           "table": "fct_inspections", "count": 109, "severity": "warn",
           "detail": "inspected again within 90 days",
           "failing_rows": "dbt_test__audit.dq_authority_inspected_again_within_min_days",
           "sample": [{"earlier_inspection_key": "k1"}]}


def verdict(*, failures: list[dict], warnings: list[dict], final: bool) -> dict:
    """A verdict as ingest.warehouse.verdict reads it (validate_marts adds `final`)."""
    return {"success": not failures, "evaluated": 230, "passed": 230 - len(failures) - len(warnings),
            "failed": len(failures), "warned": len(warnings), "failures": failures, "warnings": warnings,
            "data_docs": "/srv/ofsted/report/data_docs/index.html", "final": final}


def test_a_night_with_only_warnings_sends_one_warning_naming_each_with_its_count(
    tmp_path: Path, webhook,
) -> None:
    settings = make_settings(tmp_path, OFSTED_ALERT_CHANNELS="webhook,log",
                             OFSTED_ALERT_WEBHOOK_URL=webhook.url)
    night = verdict(failures=[], warnings=[WARNING], final=True)
    # an earlier stage's warnings wait for the night's whole verdict: no alert, no failure
    assert alerts.alert_on_dq_failure(settings, "n1", "raw tables", {**night, "final": False}, {}) is False
    assert webhook.bodies == [] and not settings.alert_log.exists()

    assert alerts.alert_on_dq_failure(settings, "n1", "marts", night, {"new": 3}, "validate_marts") is False
    (body,) = webhook.bodies
    text = body["text"]
    assert "[ofsted-letters] WARNING: ofsted_letters_nightly: 1 data-quality warning (the night succeeded; " \
           "229 checks passed) (run n1)" in text
    assert ("  - dq_authority_inspected_again_within_min_days (fct_inspections): 109 rows - inspected again "
            "within 90 days [rows: dbt_test__audit.dq_authority_inspected_again_within_min_days]") in text
    assert "What failed" not in text and "Severity: warning" in text
    assert any("*Warnings*" in json.dumps(b) for b in body["blocks"])
    (entry,) = read_log(settings.alert_log)
    assert (entry["severity"], entry["failures"], entry["warnings"]) == ("warning", [], [WARNING])
    assert entry["counts"] == {"new": 3, "evaluated": 230, "passed": 229, "warnings": 1, "failed": 0}


def test_a_failed_check_is_an_error_that_also_names_the_warnings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    check = "fct_inspections.expect_column_values_to_not_be_null(authority_gss_code)"
    failure = {**DQ_FAILURES[0], "check": check}
    night = verdict(failures=[failure], warnings=[WARNING], final=False)
    assert alerts.alert_on_dq_failure(settings, "n2", "raw tables", night, {}, "validate_raw") is True
    (entry,) = read_log(settings.alert_log)
    assert entry["severity"] == "error"
    assert entry["title"].endswith("1 of 230 checks failed on the raw tables")
    text = alerts.message_text(Alert(**{k: v for k, v in entry.items() if k != "type"}))
    assert "What failed (1):" in text and "Borsetshire County Council" in text
    assert "Warnings (1; a warning never fails a night):" in text and "109 rows" in text


# --- the SMTP login only over TLS -----------------------------------------------------------------

def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Logins:
    """aiosmtpd authenticator: accepts any login and records it, with whether TLS was on."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        tls = server.transport.get_extra_info("ssl_object") is not None
        self.seen.append((auth_data.login.decode(), auth_data.password.decode(), tls))
        return AuthResult(success=True)


class Inbox:
    """An aiosmtpd handler keeping every message it receives (the TLS servers' mailbox)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.original_content or envelope.content
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def tls_smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start SMTP servers on 127.0.0.1 on demand: mode 'plain', 'starttls' or 'smtps'.
    The test's certificate is made the trusted CA (SSL_CERT_FILE), so verification stays on."""
    import ssl

    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    from aiosmtpd.controller import Controller

    started: list[Controller] = []

    def start(mode: str) -> tuple[Inbox, Logins, int]:
        box, logins, port = Inbox(), Logins(), _free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs = dict(authenticator=logins, auth_require_tls=mode == "starttls")  # SMTPS: TLS from the start
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        controller = Controller(box, hostname="127.0.0.1", port=port, server_kwargs=kwargs,
                                ssl_context=context if mode == "smtps" else None)
        controller.start()
        started.append(controller)
        return box, logins, port

    yield start
    for controller in started:
        controller.stop()


def email_settings(tmp_path: Path, port: int, **env: str) -> Settings:
    return make_settings(tmp_path, OFSTED_ALERT_CHANNELS="email,log", OFSTED_SMTP_HOST="127.0.0.1",
                         OFSTED_SMTP_PORT=str(port), OFSTED_ALERT_EMAIL_TO="team@example.org",
                         OFSTED_SMTP_USER="alerts", OFSTED_SMTP_PASSWORD="s3cret-pw", **env)


def delivery_failure(settings: Settings) -> dict:
    [failed] = [r for r in read_log(settings.alert_log) if r["type"] == "delivery_failed"]
    return failed


def test_smtp_login_without_tls_is_refused_and_the_password_never_sent(tmp_path: Path, tls_smtp) -> None:
    box, logins, port = tls_smtp("plain")
    settings = email_settings(tmp_path, port)
    assert send_alert(settings, dq_alert()) == ["log"]
    assert box.messages == [] and logins.seen == []
    failed = delivery_failure(settings)
    assert failed["channel"] == "email"
    assert failed["reason"].startswith("refusing to send the SMTP login without TLS")
    assert "s3cret-pw" not in settings.alert_log.read_text()


def test_smtp_login_in_clear_only_when_explicitly_allowed(tmp_path: Path, tls_smtp) -> None:
    box, logins, port = tls_smtp("plain")
    settings = email_settings(tmp_path, port, OFSTED_SMTP_ALLOW_PLAINTEXT="true")
    assert send_alert(settings, dq_alert()) == ["email", "log"]
    assert logins.seen == [("alerts", "s3cret-pw", False)] and len(box.messages) == 1


@pytest.mark.parametrize(("mode", "flag"),
                         [("starttls", "OFSTED_SMTP_STARTTLS"), ("smtps", "OFSTED_SMTP_SSL")])
def test_smtp_login_over_tls(tmp_path: Path, tls_smtp, mode: str, flag: str) -> None:
    box, logins, port = tls_smtp(mode)
    settings = email_settings(tmp_path, port, **{flag: "true"})
    assert send_alert(settings, dq_alert()) == ["email", "log"]
    assert logins.seen == [("alerts", "s3cret-pw", True)]
    assert box.messages[0]["Subject"].startswith("[ofsted-letters] ERROR: Data quality failed")


def test_starttls_to_a_server_without_it_fails_before_the_login(tmp_path: Path, tls_smtp) -> None:
    box, logins, port = tls_smtp("plain")
    settings = email_settings(tmp_path, port, OFSTED_SMTP_STARTTLS="true")
    assert send_alert(settings, dq_alert()) == ["log"]
    assert logins.seen == [] and box.messages == []
    assert "STARTTLS" in delivery_failure(settings)["reason"]


def test_an_untrusted_certificate_fails_before_the_login(tmp_path: Path, tls_smtp,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    box, logins, port = tls_smtp("starttls")
    monkeypatch.delenv("SSL_CERT_FILE")  # the system's CAs do not know the test's certificate
    settings = email_settings(tmp_path, port, OFSTED_SMTP_STARTTLS="true")
    assert send_alert(settings, dq_alert()) == ["log"]
    assert logins.seen == [] and box.messages == []
    assert "CERTIFICATE_VERIFY_FAILED" in delivery_failure(settings)["reason"]
