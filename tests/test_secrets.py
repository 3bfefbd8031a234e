"""No secret leaves the settings: a night (`ofsted run`) with a secret planted in
every secret-bearing setting, then every output, log, alert record, table and report page is
searched for each secret (as written, URL-encoded, and as the Basic-auth header would carry it).

Two nights on the sample letters fetched over HTTP (an index URL with `user:pass@`, a bearer
token, a basic-auth password), alerts to the log, a webhook whose URL path is a secret, and an
SMTP server with a password: the first night publishes; the second has a letter dated 200 days
after its inspection, so data quality fails and every alert channel is used.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest
from _airflow_support import SAMPLE_LETTERS, ofsted_run, run_env, settings_for
from _http_support import TestHTTPServer

pytestmark = pytest.mark.slow

SECRETS = {
    "OFSTED_HTTP_PASSWORD": "HttpPass-7f3a9",
    "OFSTED_HTTP_AUTH_TOKEN": "HttpToken-4b2d1",
    "OFSTED_SMTP_PASSWORD": "SmtpPass-8e5f2",
    "index URL password": "IdxPass-1c9e4",
    "webhook URL path": "WebhookPath-6a0c3",
}


def forms(secret: str) -> set[str]:
    """The ways a secret could appear: as is, URL-encoded, inside a Basic-auth header."""
    out = {secret, quote(secret, safe="")}
    for user in ("fetcher", "idxuser"):
        out.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return out


def late_letter(text: str) -> str:
    assert "17 June 2010" in text and "18 and 19 May 2010" in text
    return text.replace("17 June 2010", "5 December 2011").replace("18 and 19 May 2010", "18 and 19 May 2011")


def table_text(path: Path) -> dict[str, str]:
    """Every table of a DuckDB file as text (its values, whatever DuckDB's compression)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("select schema_name, table_name from duckdb_tables()").fetchall()
        return {f"{path.name}:{s}.{t}": repr(con.execute(f'select * from "{s}"."{t}"').fetchall())
                for s, t in tables}
    finally:
        con.close()


def every_file(root: Path) -> dict[str, str]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = p.read_bytes().decode("utf-8", "replace")
    return out


@pytest.fixture(scope="module")
def night(tmp_path_factory, module_webhook, module_mailbox):
    root = tmp_path_factory.mktemp("secrets")
    letters = sorted(SAMPLE_LETTERS.iterdir())
    server = TestHTTPServer().start()
    hook = module_webhook
    hook.url = hook.url.rsplit("/", 1)[0] + "/" + SECRETS["webhook URL path"]
    mailbox = module_mailbox
    outputs: dict[str, str] = {}
    try:
        names = [p.name for p in letters]
        for p in letters:
            server.serve(f"/letters/{p.name}", p.read_bytes(), content_type="text/plain; charset=utf-8")
        server.serve_index("/letters/", names)
        index = f"http://idxuser:{SECRETS['index URL password']}@127.0.0.1:{server.port}/letters/"
        env = run_env(root, root / "unused-inbox",
                      OFSTED_SOURCE="http",
                      OFSTED_HTTP_INDEX_URL=index,
                      OFSTED_HTTP_MIN_INTERVAL_S="0",
                      OFSTED_HTTP_BACKOFF_S="0.01",
                      OFSTED_HTTP_USERNAME="fetcher",
                      OFSTED_HTTP_PASSWORD=SECRETS["OFSTED_HTTP_PASSWORD"],
                      OFSTED_HTTP_AUTH_TOKEN=SECRETS["OFSTED_HTTP_AUTH_TOKEN"],
                      OFSTED_ALERT_CHANNELS="log,webhook,email",
                      OFSTED_ALERT_WEBHOOK_URL=hook.url,
                      OFSTED_SMTP_HOST="127.0.0.1",
                      OFSTED_SMTP_PORT=str(mailbox.port),
                      OFSTED_SMTP_USER="alerts",
                      OFSTED_SMTP_PASSWORD=SECRETS["OFSTED_SMTP_PASSWORD"],
                      OFSTED_SMTP_ALLOW_PLAINTEXT="false",
                      OFSTED_ALERT_EMAIL_TO="data-team@example.org",
                      AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300")  # a busy machine imports slowly
        settings = settings_for(env)
        first = ofsted_run(env)
        assert first.returncode == 0, first.stdout + first.stderr[-3000:]
        outputs["night 1 stdout"], outputs["night 1 stderr"] = first.stdout, first.stderr
        published_after_first = table_text(settings.published_warehouse)

        dorset = next(p for p in letters if "17 June 2010" in p.read_text())
        late = late_letter(dorset.read_text())
        server.serve("/letters/late.txt", late, content_type="text/plain; charset=utf-8")
        server.serve_index("/letters/", [*names, "late.txt"])
        second = ofsted_run(env)
        assert second.returncode != 0, second.stdout
        outputs["night 2 stdout"], outputs["night 2 stderr"] = second.stdout, second.stderr
        requests = list(server.requests)
    finally:
        server.stop()
    outputs.update(every_file(root))
    outputs.update(published_after_first)
    for db in (settings.work_warehouse, settings.published_warehouse):
        outputs.update(table_text(db))
    return {"settings": settings, "outputs": outputs, "hook": hook, "requests": requests,
            "mailbox": mailbox, "second": second}


def test_the_nights_really_used_every_secret_bearing_setting(night):
    settings = night["settings"]
    # the letters were fetched with credentials (the token, or the index URL's user:pass@) ...
    auth = {r.headers.get("authorization", "").split(" ")[0] for r in night["requests"]}
    assert auth & {"Bearer", "Basic"}, auth
    # ... the second night's alert reached the log and the webhook (at its secret path) ...
    kinds = [r["type"] for r in map(json.loads, settings.alert_log.read_text().splitlines())]
    assert "alert" in kinds
    assert len(night["hook"].bodies) == 1
    # ... and email was refused: a password never goes over plain SMTP
    assert night["mailbox"].messages == []
    assert "refusing to send the SMTP login without TLS" in settings.alert_log.read_text()
    tables = [k for k in night["outputs"] if k.startswith("ofsted.duckdb:marts.")]
    assert tables and any(k.startswith("ofsted_work.duckdb:raw.") for k in night["outputs"])


@pytest.mark.parametrize("setting", list(SECRETS))
def test_no_secret_in_any_output_log_table_or_report(night, setting):
    leaks = sorted({where for where, text in night["outputs"].items()
                    for form in forms(SECRETS[setting]) if form in text})
    assert leaks == [], f"{setting} found in: {leaks}"


def test_no_secret_on_stderr_or_stdout_when_letters_fail_and_are_rejected(tmp_path):
    """`ofsted load` over HTTP with credentials in the index URL, a token and a password, where
    letters are missing (404), oversized (rejected) and fine: every line it prints on stdout and
    stderr (the `fetch failed:` / `rejected:` warnings among them) has them masked, and the
    paths line names the (redacted) index, not the local inbox."""
    import subprocess
    import sys

    letters = sorted(SAMPLE_LETTERS.iterdir())
    with TestHTTPServer() as server:
        server.serve("/letters/ok.txt", letters[0].read_bytes(), content_type="text/plain; charset=utf-8")
        server.serve("/letters/big.txt", b"x" * 5000, content_type="text/plain")
        server.serve_index("/letters/", ["ok.txt", "big.txt", "gone-1.txt", "gone-2.txt"])
        index = f"http://idxuser:{SECRETS['index URL password']}@127.0.0.1:{server.port}/letters/"
        env = run_env(tmp_path, tmp_path / "unused-inbox", OFSTED_SOURCE="http", OFSTED_HTTP_INDEX_URL=index,
                      OFSTED_HTTP_MIN_INTERVAL_S="0", OFSTED_HTTP_BACKOFF_S="0.01", OFSTED_HTTP_RETRIES="0",
                      OFSTED_MAX_FILE_BYTES="4000", OFSTED_HTTP_USERNAME="fetcher",
                      OFSTED_HTTP_PASSWORD=SECRETS["OFSTED_HTTP_PASSWORD"],
                      OFSTED_HTTP_AUTH_TOKEN=SECRETS["OFSTED_HTTP_AUTH_TOKEN"],
                      OFSTED_SMTP_PASSWORD=SECRETS["OFSTED_SMTP_PASSWORD"])
        done = subprocess.run([sys.executable, "-m", "ingest.cli", "load"], env=env, capture_output=True,
                              text=True, timeout=600, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert "rejected" in out and "gone-1.txt" in out, out  # the failures were said ...
    assert "***@127.0.0.1" in done.stderr, done.stderr
    leaks = [s for s in SECRETS.values() for form in forms(s) if form in out]
    assert leaks == [], out  # ... with no secret in any of it
    paths = done.stderr.splitlines()[0]
    assert "reads index http://***@127.0.0.1" in paths and "unused-inbox" not in out, paths


def test_a_task_run_by_airflow_outside_ofsted_masks_what_it_logs(tmp_path):
    """The night's `fetch` run by `airflow tasks test`: a process the `ofsted` command never
    started, as a Celery worker's task runner is. Fetched over HTTP with credentials in the index
    URL, a bearer token and a password, one letter failing once (so the task logs its retry, URL
    and all): the task's log (its output and every file under AIRFLOW_HOME) has the URL's
    user-info and every secret masked."""
    import subprocess
    import sys

    from _http_support import Fault

    from orchestration.runner import airflow_env

    letters = sorted(SAMPLE_LETTERS.iterdir())
    with TestHTTPServer() as server:
        for p in letters:
            server.serve(f"/letters/{p.name}", p.read_bytes(), content_type="text/plain; charset=utf-8")
        server.serve_index("/letters/", [p.name for p in letters])
        server.inject(f"/letters/{letters[0].name}", Fault(status=503))
        index = f"http://idxuser:{SECRETS['index URL password']}@127.0.0.1:{server.port}/letters/"
        env = run_env(tmp_path, tmp_path / "unused-inbox", OFSTED_SOURCE="http", OFSTED_HTTP_INDEX_URL=index,
                      OFSTED_HTTP_MIN_INTERVAL_S="0", OFSTED_HTTP_BACKOFF_S="0.01", OFSTED_HTTP_RETRIES="2",
                      OFSTED_HTTP_USERNAME="fetcher", OFSTED_HTTP_PASSWORD=SECRETS["OFSTED_HTTP_PASSWORD"],
                      OFSTED_HTTP_AUTH_TOKEN=SECRETS["OFSTED_HTTP_AUTH_TOKEN"],
                      OFSTED_SMTP_PASSWORD=SECRETS["OFSTED_SMTP_PASSWORD"],
                      AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="600", AIRFLOW__LOGGING__LOGGING_LEVEL="INFO")
        env.update(airflow_env(settings_for(env)))

        def airflow(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True,
                                  text=True, timeout=1200, cwd=tmp_path)

        migrated = airflow("db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        done = airflow("tasks", "test", "ofsted_letters_nightly", "fetch", "2026-12-06")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    logs = "".join(every_file(Path(env["AIRFLOW_HOME"])).values())
    assert "retrying http://***@127.0.0.1" in out + logs, out[-3000:]  # the task logged the URL ...
    leaks = [s for s in SECRETS.values() for form in forms(s) if form in out + logs]
    assert leaks == [], out[-3000:]  # ... and no secret in any of it


MASKER_CHECK = """
import json, logging, sys
from airflow.sdk._shared.secrets_masker import redact
from ingest.settings import Settings
from orchestration.masking import mask_in_task
forms, url = json.loads(sys.argv[1]), sys.argv[2]
before = [f for f in forms if redact("said " + f) != "said " + f]
mask_in_task(Settings.from_env())
missed = [f for f in forms if redact("said " + f + "!") != "said ***!"]
record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "got %s", (url,), None)
print(json.dumps({"before": before, "missed": missed, "record": record.getMessage()}))
"""


def test_every_secret_is_registered_with_airflows_own_masker(tmp_path):
    """What a task's `on_execute_callback` does (`orchestration.masking`), in a process of its
    own: Airflow's masker (the one its supervisor applies to a task's log file: tracebacks,
    returned values) then masks each configured secret in every form, and the task's stdlib log
    records are redacted too."""
    import subprocess
    import sys

    hook = f"http://127.0.0.1:9/{SECRETS['webhook URL path']}"
    env = run_env(tmp_path, tmp_path / "inbox", OFSTED_HTTP_USERNAME="fetcher",
                  OFSTED_HTTP_INDEX_URL=f"http://idxuser:{SECRETS['index URL password']}@example.org/l/",
                  OFSTED_HTTP_PASSWORD=SECRETS["OFSTED_HTTP_PASSWORD"],
                  OFSTED_HTTP_AUTH_TOKEN=SECRETS["OFSTED_HTTP_AUTH_TOKEN"],
                  OFSTED_SMTP_PASSWORD=SECRETS["OFSTED_SMTP_PASSWORD"], OFSTED_ALERT_WEBHOOK_URL=hook)
    every = sorted({form for secret in SECRETS.values() for form in forms(secret)})
    done = subprocess.run([sys.executable, "-c", MASKER_CHECK, json.dumps(every),
                           f"http://u:{SECRETS['index URL password']}@h/"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["before"] == []  # Airflow knew none of them ...
    assert got["missed"] == []  # ... and masks every form once the task has registered them
    assert got["record"] == "got http://***@h/"
