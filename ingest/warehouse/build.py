"""`dbt build` of the warehouse through dbt's programmatic runner (`dbtRunner`).

The project (`settings.dbt_project_dir`) reads its DuckDB path from `OFSTED_WORK_WAREHOUSE`
in `profiles.yml`; `run_dbt` points that variable at `settings.work_warehouse` for the
duration of the call, and passes the project, profiles and target directories from settings,
so any warehouse file can be built without touching the default outputs.

    ofsted build [--warehouse FILE] [--full-refresh] [--select SELECTION]

re-runs the dbt build on a warehouse's raw tables (after a fix to a model or a seed), without
fetching anything, with dbt's own output, and exits non-zero when a model or a test fails.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

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


def run_dbt(settings: Settings, args: list[str]) -> int:
    """Run one dbt command (e.g. `["build"]`, `["docs", "generate"]`) in-process on the
    warehouse `settings.work_warehouse`, and release the file. Returns dbt's exit code: 0
    success, 1 a model or test failed, 2 dbt could not run (bad project, locked warehouse...)."""
    from dbt.cli.main import dbtRunner

    settings.work_warehouse.parent.mkdir(parents=True, exist_ok=True)
    env = {WAREHOUSE_ENV: str(settings.work_warehouse), "DO_NOT_TRACK": "1"}
    try:
        with _environment(env):
            result = dbtRunner().invoke(dbt_args(settings, args))
    finally:
        release_dbt_duckdb()
    if result.success:
        return EXIT_OK
    return EXIT_ERROR if result.exception is not None else EXIT_FAILED


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
