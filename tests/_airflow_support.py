"""Helpers for the Airflow tests: `ofsted run` in a subprocess with its own temp dirs, and
real alert receivers on 127.0.0.1 (a webhook HTTP server and an aiosmtpd SMTP server)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller

from ingest.settings import PROJECT_ROOT, Settings

SAMPLE_LETTERS = PROJECT_ROOT / "data" / "sample_letters"


def run_env(root: Path, inbox: Path, **extra: str) -> dict[str, str]:
    """The environment of an `ofsted run` writing only under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFSTED_", "AIRFLOW"))}
    env.update({
        "OFSTED_DATA_DIR": str(root / "data"),
        "OFSTED_INBOX_DIR": str(inbox),
        "AIRFLOW_HOME": str(root / "airflow"),
        "DO_NOT_TRACK": "1",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    })
    env.update(extra)
    return env


def settings_for(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def ofsted_run(env: dict[str, str], timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest.cli", "run"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def run_id_of(stdout: str) -> str:
    m = re.search(r"^run (\S+): ", stdout, re.M)
    assert m, f"no run line in:\n{stdout}"
    return m.group(1)


class Webhook:
    """A Slack-compatible incoming webhook that records the JSON bodies it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp() -> tuple[Controller, Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, box


READER = r"""
import json, sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
import os
held = duckdb.connect(path, read_only=True)   # opened before the night, kept open throughout
seen = []
errors = []
print("ready", flush=True)
while not os.path.exists(stop):
    for con, who in ((held, "held"), (None, "fresh")):
        try:
            c = con or duckdb.connect(path, read_only=True)
            n_insp, total = c.execute(
                "select count(*), coalesce(sum(strength_count + satisfactory_count"
                " + area_for_development_count + priority_action_count), 0) from marts.fct_inspections"
            ).fetchone()
            n_find = c.execute("select count(*) from marts.fct_findings").fetchone()[0]
            seen.append([who, n_insp, total, n_find])
            if con is None:
                c.close()
        except Exception as exc:
            errors.append(f"{who}: {type(exc).__name__}: {exc}")
    time.sleep(0.1)
print(json.dumps({"seen": seen, "errors": errors}), flush=True)
"""


def start_reader(published: Path, stop: Path) -> subprocess.Popen:
    """A reader in another process polling the published warehouse until `stop` exists."""
    proc = subprocess.Popen([sys.executable, "-c", READER, str(published), str(stop)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc
