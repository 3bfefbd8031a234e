"""Session-wide environment and the fixtures the test modules share.

`OFSTED_REQUIRE=browser,stack` (CI): a skipped test with one of those markers fails instead
(`_require`).

Environment: no telemetry, and Airflow configured to a temporary AIRFLOW_HOME (its own SQLite
DB, the project's dags/, no examples) before any test module imports Airflow - so no test
ever touches ~/airflow or the project's .airflow/. Hypothesis keeps no example database and
writes its other files under that temporary dir (no `.hypothesis/` in the checkout).

Fixtures (names are stable: other test modules use them):

- `webhook` / `mailbox`: a real Slack-like webhook HTTP server and a real SMTP server
  (aiosmtpd) on 127.0.0.1, fresh for each test; `module_webhook` / `module_mailbox` are the
  same, shared by a module's tests (for module-scoped nights that send alerts).
- `free_port`: a port on 127.0.0.1 nothing listens on.
- `dq_warehouse_template`: the small valid work warehouse of `_dq_support` (raw tables and
  marts), built once per session; `dq_warehouse`: a private copy of it for one test to break.
- `sample_build`: the sample letters loaded and built with dbt (`ofsted load`, `ofsted build`),
  once per session; `real_night`: the sample and 40 synthetic letters through the real night
  minus Airflow, published, once per session. Both read-only.

Under xdist (`make test`) each test file is one unit of work (its tests on one worker, its
module fixtures built once), except that the stack tests are one unit, collected first: never
two whole stacks at once on one machine, and the longest unit starts first
(`pytest_xdist_make_scheduler`); the longest files follow (`LONGEST_FILES`), so the suite ends
on short ones. A session fixture is built once per worker.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _require import pytest_configure, pytest_runtest_makereport  # noqa: F401 - CI's OFSTED_REQUIRE
from hypothesis import settings as hypothesis_settings

_HOME = Path(tempfile.mkdtemp(prefix="ofsted-test-airflow-"))

os.environ.update({
    "DO_NOT_TRACK": "1",
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parent.parent / "dags"),
    # Hypothesis' own files (its constants cache) under the session's temp dir, not the checkout
    "HYPOTHESIS_STORAGE_DIRECTORY": str(_HOME / "hypothesis"),
})

STACK_GROUP = "stack"
#: the files whose tests start a whole stack (every test in them is marked `stack`; checked as
#: each test is collected): xdist's controller schedules by test id before any test is imported
STACK_FILES = ("tests/test_scale_out.py", "tests/test_stack.py")


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test marked `stack` lives in STACK_FILES and nowhere else (see pytest_xdist_make_scheduler)."""
    in_file = item.nodeid.split("::", 1)[0] in STACK_FILES
    if in_file != (item.get_closest_marker("stack") is not None):
        raise pytest.UsageError(f"{item.nodeid}: a test is marked `stack` exactly when its file is one "
                                f"of tests/conftest.py's STACK_FILES")


#: the test files that take 2 s or more on one worker, longest first (measured by a full `make
#: test` on a fresh clone, two workers, the seconds of each file's tests from `--junitxml`): under
#: xdist they are handed out in this order right after the stack group, so the last files to start
#: take a second or less and no worker idles while another finishes a long one (`make test-fast`
#: deselects the slow tests; the order of what is left serves it too). Only the order changes; a
#: file not named here follows them, in collection order.
LONGEST_FILES = (
    "tests/test_corrections.py", "tests/test_controls.py", "tests/test_dbt.py",
    "tests/test_expectations.py", "tests/test_hostile.py", "tests/test_secrets.py", "tests/test_run.py",
    "tests/test_dbt_night.py", "tests/test_report.py", "tests/test_inert.py", "tests/test_dbt_analysts.py",
    "tests/test_planted_links.py", "tests/test_search_parity.py", "tests/test_query.py",
    "tests/test_search_cli.py", "tests/test_fetch.py", "tests/test_dbt_themes.py", "tests/test_load.py",
    "tests/test_dag.py", "tests/test_pipeline.py", "tests/test_parse_robust.py", "tests/test_synthetic.py",
    "tests/test_batch_store.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The stack tests first, then LONGEST_FILES in their order, then the other files as
    collected: under xdist units are handed out in this order (`--no-loadscope-reorder`)."""
    if missing := [f for f in LONGEST_FILES if not (config.rootpath / f).is_file()]:
        raise pytest.UsageError(f"tests/conftest.py's LONGEST_FILES names no test file: {', '.join(missing)}")
    rank = {path: i for i, path in enumerate(LONGEST_FILES)}

    def order(item: pytest.Item) -> tuple[bool, int]:
        return item.get_closest_marker("stack") is None, rank.get(item.nodeid.split("::", 1)[0], len(rank))

    items.sort(key=order)  # stable: the collection order within a rank


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `make test` each test file is one unit of work (its tests on one worker, its module
    fixtures built once), except that STACK_FILES are one unit together: never two whole stacks
    at once on one machine. Two at once competed for the cores (a task missing its 60 s
    heartbeat is failed and retried) and for the ports each picks before its services bind them.
    (xdist's own `loadgroup` cannot do this with pytest 9: it renames a test id pytest no longer
    reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FilesStacksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return STACK_GROUP if path in STACK_FILES else path

        def _reschedule(self, node: Any) -> None:
            """xdist's, but a worker is handed its next file when it holds one test of its own
            (its last, which waits to know what comes next), not two: the last files of the
            suite go to the worker that is free first, not to one still running a long test."""
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    return FilesStacksTogether(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Each worker, and the session, ends without the interpreter's last garbage collections over
    all that the tests left in memory (dbt, GX, Airflow): the suite ended 1.6-3.2 s after its last
    worker's last test, now 0.1 s (as `ingest.cli.entry` does for `ofsted`). Exit handlers run."""
    import gc

    gc.freeze()


# No example database (it would be .hypothesis/examples in the working directory).
hypothesis_settings.register_profile("ofsted", database=None)
hypothesis_settings.load_profile("ofsted")


# --- alert receivers ------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """A Slack-compatible incoming webhook on 127.0.0.1: records the JSON bodies it is sent and
    answers with the statuses queued in `statuses`, then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # the path looks like Slack's: it is a credential and must never reach a log
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret-token"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 keeping every message and envelope it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.host = "127.0.0.1"
        self.port = _free_port()
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.original_content or envelope.content
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def close(self) -> None:
        self._controller.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.close()


@pytest.fixture(scope="module")
def module_webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def module_mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.close()


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    return _free_port()


# --- warehouses -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dq_warehouse_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small valid work warehouse (raw tables and marts) of `_dq_support`, built once.
    Read it only; take `dq_warehouse` to change it."""
    from _dq_support import make_warehouse

    return make_warehouse(tmp_path_factory.mktemp("dq_template") / "work.duckdb")


@pytest.fixture
def dq_warehouse(dq_warehouse_template: Path, tmp_path: Path) -> Path:
    """A private copy of the valid DQ warehouse at `tmp_path/warehouse/work.duckdb`."""
    path = tmp_path / "warehouse" / "work.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dq_warehouse_template, path)
    return path


@pytest.fixture(scope="session")
def real_night(tmp_path_factory: pytest.TempPathFactory):
    """The real night minus Airflow, built once per session: the sample letters and 40 synthetic
    ones loaded, `dbt build`, published (`_analysts_support.build_real_warehouse`). Returns its
    Settings. Read it only: copy its warehouses to change them."""
    from _analysts_support import real_warehouse

    return real_warehouse(tmp_path_factory)


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory):
    """The sample letters through `ofsted load` and `ofsted build`, as the data team runs them,
    once per session: Settings whose `work_warehouse` and `dbt_target_dir` (dbt's saved parse,
    manifest) are that night's; the build's run_results.json is kept beside the target as
    SAMPLE_BUILD_RESULTS (a later dbt command in the target replaces dbt's own). Read it only; a
    test may run dbt on it when it puts back what it changed (the target dir spares it a parse)."""
    from _dbt_support import SAMPLE_LETTERS, dbt_settings

    from ingest.cli import main as ofsted

    tmp = tmp_path_factory.mktemp("sample_build")
    settings = dbt_settings(tmp)
    warehouse = str(settings.work_warehouse)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OFSTED_DATA_DIR", str(tmp))
        mp.setenv("OFSTED_DBT_TARGET_DIR", str(settings.dbt_target_dir))
        assert ofsted(["load", "--inbox", str(SAMPLE_LETTERS), "--warehouse", warehouse]) == 0
        assert ofsted(["build", "--warehouse", warehouse]) == 0
    shutil.copyfile(settings.dbt_target_dir / "run_results.json",
                    settings.dbt_target_dir.parent / SAMPLE_BUILD_RESULTS)
    return settings


SAMPLE_BUILD_RESULTS = "sample_build_run_results.json"
