"""`dbt build` of the warehouse through dbt's programmatic runner (`dbtRunner`), in-process.

The project (`settings.dbt_project_dir`) reads its DuckDB path from `OFSTED_WORK_WAREHOUSE`
in `profiles.yml`; `run_dbt` points that variable at `settings.work_warehouse` for the
duration of the call, and passes the project, profiles and target directories from settings,
so any warehouse file can be built without touching the default outputs.

No parse when the project has not changed. The target directory (`settings.dbt_target_dir`,
in the data directory in production) persists between nights and holds dbt's saved parse,
`partial_parse.msgpack` (a full parse 12.5 s, reading the saved one 0.8 s, load 9). The saved
parse records the profile's connection, the warehouse's path included: a target directory
without one gets a copy of the one `make setup` (or the image) built beside the project for the
default warehouse, which serves `make run`; a warehouse elsewhere is parsed once, at its first
night. Nothing the night passes to dbt may change that
saved parse: command-line `--vars` would (dbt re-parses everything when they change), so the
night's date and id reach dbt as environment variables (`night_env`) read only when a model
runs (`macros/run_date.sql`). One writer at a time: every caller holds the data-dir lock.

The night's build (`build_night`) is one `dbt build` of the whole project but its unit tests
(`NIGHT_EXCLUDES`: they check the models' SQL on fixed inputs, never the night's data, so a
night cannot change their answer; dbt's advice is to run them in development and CI, not in
production: `ofsted build` and `make test` run them; measured, leaving them out takes ~1 s,
7%, off an `ofsted run` on the sample letters); its `run_results.json` gives every node's
result (`node_results`). The build after a failed one
(an Airflow retry or clear, `ofsted rerun`, or the next night) rebuilds only what is needed
(`rebuild_selection`): what failed with everything it reads and everything that reads it,
what changed in the project since, and what reads a raw table whose rows changed since.

    ofsted build [--warehouse FILE] [--full-refresh] [--select SELECTION]

re-runs the dbt build on a warehouse's raw tables (after a fix to a model or a seed), without
fetching anything, with dbt's own output, and exits non-zero when a model or a test fails.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.settings import Settings

WAREHOUSE_ENV = "OFSTED_WORK_WAREHOUSE"

# dbt's own exit codes (dbt.cli.exceptions.ExitCodes): 0 ok, 1 a model or test failed, 2 dbt error.
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def dbt_args(settings: Settings, args: list[str]) -> list[str]:
    """The dbt command line: `args` (subcommand first) plus the directories from settings."""
    return [
        *args,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_profiles_dir),
        "--target-path", str(settings.dbt_target_dir),
        "--log-path", str(settings.dbt_target_dir / "logs"),
    ]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for dbt's `env_var()` and put the old values back after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def release_dbt_duckdb(*_args: object, **_kwargs: object) -> None:
    """dbt-duckdb keeps its DuckDB connection open for the life of the process (its default
    `keep_open`); drop it, so that once a dbt command returns the warehouse can be opened by
    other processes and read-only in this one (DuckDB allows one writer per file). Called after
    `run_dbt`, and by the DAG as a Cosmos `callback` (after every dbt command, failed or not)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    DuckDBConnectionManager.close_all_connections()
    gc.collect()  # the environment closes its connection when it is collected


SAVED_PARSE = "partial_parse.msgpack"
#: what a dbt parse reads: `make setup` rebuilds the prebuilt target when one of these changes,
#: and the image's build context must carry them all (tests/test_compose.py)
PROJECT_INPUTS = ("dbt_project.yml", "models", "seeds", "tests", "macros", "analyses", "snapshots")


def prebuilt_target(project_dir: Path) -> Path:
    """The target directory `make setup` (and the image) fill with `dbt parse`."""
    return project_dir / "target"


def reuse_saved_parse(settings: Settings) -> None:
    """Give a target directory without dbt's saved parse a copy of the prebuilt one
    (`<project>/target`, made by `make setup` and the image), so its first command
    parses only what changed since instead of the whole project."""
    target = settings.dbt_target_dir
    prebuilt = prebuilt_target(settings.dbt_project_dir) / SAVED_PARSE
    if (target / SAVED_PARSE).exists() or not prebuilt.is_file():
        return
    if target.resolve() == prebuilt.parent.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".{SAVED_PARSE}.{os.getpid()}"
    shutil.copyfile(prebuilt, tmp)
    os.replace(tmp, target / SAVED_PARSE)


def night_env(run_date: str | None = None, run_id: str | None = None) -> dict[str, str]:
    """What a night tells dbt: its date (`macros/run_date.sql`: dim_dates ends the year after
    it, the same on a re-run of that night) and its id; environment, not `--vars` (see above)."""
    env = {}
    if run_date:
        env["OFSTED_RUN_DATE"] = run_date
    if run_id:
        env["OFSTED_RUN_ID"] = run_id
    return env


def run_dbt(settings: Settings, args: list[str], env: dict[str, str] | None = None) -> int:
    """Run one dbt command (e.g. `["build"]`, `["docs", "generate"]`) in-process on the
    warehouse `settings.work_warehouse`, with `env` set for its duration, and release the
    file. Returns dbt's exit code: 0 success, 1 a model or test failed, 2 dbt could not run
    (bad project, locked warehouse...). An interruption (^C, a stop signal) that dbt's runner
    caught is raised again, as it came."""
    from dbt.cli.main import dbtRunner

    settings.work_warehouse.parent.mkdir(parents=True, exist_ok=True)
    reuse_saved_parse(settings)
    env = {**(env or {}), WAREHOUSE_ENV: str(settings.work_warehouse), "DO_NOT_TRACK": "1"}
    try:
        with _environment(env):
            result = dbtRunner().invoke(dbt_args(settings, args))
    finally:
        release_dbt_duckdb()
    if result.success:
        return EXIT_OK
    if result.exception is not None and not isinstance(result.exception, Exception):
        raise result.exception  # ^C or a stop signal, which dbt's runner catches too: not a dbt error
    return EXIT_ERROR if result.exception is not None else EXIT_FAILED


# --- the night's build ----------------------------------------------------------------------

FAILED_STATE = "last_failed_build"  # in the target dir: the failed build's artifacts, for the next one
FAILED = ("fail", "error")


def node_results(settings: Settings) -> list[dict[str, Any]]:
    """Every node of dbt's last command, from its `run_results.json`: unique_id, name,
    resource_type, status (success, pass, warn, fail, error, skipped...), failing-row count
    and message (one line). Empty when dbt wrote none."""
    try:
        results = json.loads((settings.dbt_target_dir / "run_results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for r in results.get("results", []) if isinstance(results, dict) else []:
        uid = str(r.get("unique_id", "?"))
        parts = uid.split(".")  # test.<project>.<name>.<hash>; <type>.<project>[.<model>].<name>
        name = parts[2] if parts[0] == "test" and len(parts) > 3 else parts[-1]
        out.append({"unique_id": uid, "name": name, "resource_type": parts[0],
                    "status": str(r.get("status")), "failures": r.get("failures"),
                    "message": " ".join(str(r.get("message") or r.get("status")).split())[:300]})
    return out


def raw_fingerprints(warehouse: Path) -> dict[str, str]:
    """table -> row count and an order-free hash of its rows, for every table of schema `raw`:
    which raw tables changed between two builds. Empty when the file cannot be read."""
    import duckdb

    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return {}
    try:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'raw' order by 1").fetchall()]
        return {t: "{}:{}".format(*con.execute(f'select count(*), coalesce(bit_xor(hash(t)), 0) '
                                               f'from raw."{t}" as t').fetchone()) for t in tables}
    finally:
        con.close()


def rebuild_selection(settings: Settings, fingerprints: dict[str, str]) -> list[str] | None:
    """What the build after a failed one must rebuild, as dbt selectors (read against the
    failed build's artifacts, `--state <target>/last_failed_build`), or None for the whole
    project: every node that failed or errored with everything it reads and everything that
    reads it, what was skipped because of them, what changed in the project since
    (`state:modified+`), and what reads a raw table or view whose rows changed since (the dbt
    source of that relation, and everything downstream). The whole project when no failed build
    is recorded, its record is unreadable, or a raw relation that changed is no dbt source."""
    state = settings.dbt_target_dir / FAILED_STATE
    try:
        before = json.loads((state / "raw_fingerprints.json").read_text(encoding="utf-8"))
        sources = json.loads((state / "manifest.json").read_text(encoding="utf-8"))["sources"].values()
        by_relation = {(str(n["schema"]).lower(), str(n["identifier"]).lower()):
                       f"source:{n['source_name']}.{n['name']}+" for n in sources}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not (state / "run_results.json").is_file():
        return None
    changed = sorted(t for t in set(fingerprints) | set(before) if fingerprints.get(t) != before.get(t))
    readers = [by_relation.get(("raw", t.lower())) for t in changed]
    if None in readers:
        return None
    return ["+result:fail+", "+result:error+", "result:skipped+", "state:modified+", *readers]


def _remember_failure(settings: Settings, fingerprints: dict[str, str]) -> None:
    target = settings.dbt_target_dir
    state = target / FAILED_STATE
    tmp = target / f".{FAILED_STATE}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("manifest.json", "run_results.json"):
        shutil.copyfile(target / name, tmp / name)
    (tmp / "raw_fingerprints.json").write_text(json.dumps(fingerprints), encoding="utf-8")
    shutil.rmtree(state, ignore_errors=True)
    tmp.rename(state)


#: what the night's `dbt build` leaves out (see the module docstring)
NIGHT_EXCLUDES = ("--exclude-resource-type", "unit_test")


def build_night(settings: Settings,
                env: dict[str, str] | None = None) -> tuple[int, list[dict], list[str] | None]:
    """The night's `dbt build`: the whole project, or after a failed build only what needs
    rebuilding (`rebuild_selection`). Returns dbt's exit code, every node's result
    (`node_results`) and the selection (None: everything). A failed build is remembered for
    the next one; a successful one forgets it."""
    fingerprints = raw_fingerprints(settings.work_warehouse)
    selection = rebuild_selection(settings, fingerprints)
    with contextlib.suppress(FileNotFoundError):  # a stale file must not pass for this build's
        (settings.dbt_target_dir / "run_results.json").unlink()
    args = ["build", *NIGHT_EXCLUDES]
    if selection:
        args += ["--select", *selection, "--state", str(settings.dbt_target_dir / FAILED_STATE)]
    code = run_dbt(settings, args, env)
    results = node_results(settings)
    if code == EXIT_OK:
        shutil.rmtree(settings.dbt_target_dir / FAILED_STATE, ignore_errors=True)
    elif results:
        _remember_failure(settings, fingerprints)
    return code, results, selection


def _unbuildable(warehouse: Path) -> str | None:
    """Why dbt cannot build this warehouse (one line), or None."""
    from ingest.raw.db import WarehouseLocked, connect, ensure_schema

    if not warehouse.is_file():
        return f"no warehouse at {warehouse} (run `ofsted load` first)"
    try:
        con = connect(warehouse, apply_schema=False)
    except WarehouseLocked as exc:
        return str(exc)
    try:
        (has_raw,) = con.execute("select count(*) from information_schema.tables "
                                 "where table_schema = 'raw' and table_name = 'letters'").fetchone()
        if has_raw:  # a file from an older release gets the raw tables dbt now reads (raw.quarantine)
            ensure_schema(con)
    finally:
        con.close()
    return None if has_raw else f"{warehouse} has no raw tables (run `ofsted load` first)"


def migrate_raw(warehouse: Path) -> None:
    """Bring an existing warehouse's raw tables up to `schema.sql` (tables and columns added
    since it was made, e.g. `raw.quarantine`), so dbt finds every source it reads; the marts'
    own one-off migration runs in dbt (`on-run-start`). Idempotent."""
    from ingest.raw.db import connect

    connect(warehouse).close()


def cli_build(settings: Settings, full_refresh: bool = False, select: str | None = None) -> int:
    """`ofsted build`: `dbt build` on the warehouse's raw tables, showing dbt's output."""
    warehouse: Path = settings.work_warehouse
    problem = _unbuildable(warehouse)
    if problem:
        print(f"ofsted build: error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    code = run_dbt(settings, args)
    if code == EXIT_FAILED:
        print(f"ofsted build: a model or test failed (see dbt's output above); warehouse: {warehouse}",
              file=sys.stderr)
    elif code == EXIT_ERROR:
        print(f"ofsted build: error: dbt could not run (see above); warehouse: {warehouse}", file=sys.stderr)
    return code
