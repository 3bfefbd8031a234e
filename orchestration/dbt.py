"""The night's dbt step: one `dbt build` of the whole project, in the task's process.

Chosen by measurement (`benchmarks/run_bench.py`; same process, same warehouse, load 7-9):
three layer builds, each with dbt's saved parse, cost 30.3 s against 19.3-23.9 s for one
build of the whole project (every dbt command pays dbt's start-up, the saved parse's load and
the project's on-run hooks); a full parse, which every Cosmos layer task paid (Cosmos copies
the saved parse only with a cache dir), cost 12.5 s alone. So the night runs dbt once, through
dbt's own runner (`ingest.warehouse.build.build_night`), on a target directory that persists
between nights and holds dbt's saved parse: no parse when the project has not changed, no
project copy, no Cosmos. `dbt docs generate` then reads the same target directory without
compiling again (`ingest.warehouse.publish.generate_dbt_docs`).

What the data team keeps:

- a failing dbt test fails the night at once: when every failed node is a test (data or
  unit), `DbtTestsFailed` (no retry: rebuilding cannot change a test's data), its message
  naming each failed test and what it found; any other failure is retried;
- every node's result (from `run_results.json`) is the step's result: the counts by status,
  each failure and each warning by name, for the alert and the night history; with it the
  verdict of stage dbt (its data tests, from `audit.dq_checks`), which the night history
  records whether the build passed or failed: a night failed by a dbt test shows it in
  `ofsted status` as `dbt FAILED 1 of 232`, not as if no test ran;
- a re-run after a fix (an Airflow clear, `ofsted rerun`, or the next night) rebuilds only
  what is needed: what failed with its lineage, what changed in the project, what reads a raw
  table whose rows changed (`ingest.warehouse.build.rebuild_selection`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from ingest.settings import Settings
from orchestration.steps import DbtTestsFailed, Night, Step

TEST_TYPES = ("test", "unit_test")


class DbtBuildFailed(RuntimeError):
    """dbt could not build (a model failed, or dbt could not run): retried; one line, then the
    failed nodes one a line."""


def outcome(results: list[dict], selection: list[str] | None) -> dict[str, Any]:
    """The step's result: counts by status, the failed and the warned nodes by name."""
    return {
        "nodes": len(results),
        "statuses": dict(sorted(Counter(r["status"] for r in results).items())),
        "failed": [f"{r['name']}: {r['message']}" for r in results if r["status"] in ("fail", "error")],
        "warned": [f"{r['name']}: {r['message']}" for r in results if r["status"] == "warn"],
        "selection": " ".join(selection) if selection else "everything",
    }


def build(settings: Settings, run_id: str | None, run_date: str | None) -> dict[str, Any]:
    """The night's `dbt build` (see the module docstring). Returns `outcome`; raises
    DbtTestsFailed when only tests failed, DbtBuildFailed otherwise."""
    from ingest.warehouse.build import EXIT_OK, build_night, night_env

    code, results, selection = build_night(settings, night_env(run_date, run_id))
    done = outcome(results, selection)
    if run_id is not None:
        done["by_stage"] = {"dbt": _verdict(settings, run_id)}
    if code == EXIT_OK:
        return done
    failed = [r for r in results if r["status"] in ("fail", "error")]
    lines = "\n".join(done["failed"])
    if failed and all(r["resource_type"] in TEST_TYPES for r in failed):
        raise DbtTestsFailed(f"dbt build: {len(failed)} test(s) failed: "
                             + ", ".join(r["name"] for r in failed) + "\n" + lines, result=done)
    if failed:
        raise DbtBuildFailed(f"dbt build: {len(failed)} node(s) failed: "
                             + ", ".join(r["name"] for r in failed) + "\n" + lines)
    raise DbtBuildFailed(f"dbt build could not run (exit {code}; dbt's output is in the task's log)")


def _verdict(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """The verdict of stage dbt of this run (the data tests dbt's on-run-end hook recorded), or
    None when the warehouse cannot be read (the build's own failure says why)."""
    from ingest.warehouse.verdict import WarehouseUnavailable, read_run_verdict

    try:
        return read_run_verdict(settings.work_warehouse, run_id, ("dbt",))
    except WarehouseUnavailable:
        return None


def _build(night: Night) -> dict[str, Any]:
    return build(night.settings, night.run_id, night.run_date)


def dbt_steps(settings: Settings) -> list[Step]:
    """The night's dbt steps (read by `orchestration.night`): one, `dbt`, the same in the DAG and
    in `ofsted rerun`. Nothing of dbt is read here: the DAG parses without the manifest."""
    return [Step(name="dbt", call=_build, doc="`dbt build` of the whole project, in-process on dbt's "
                 "saved parse; after a failed build only what needs rebuilding (orchestration/dbt.py)",
                 records="dq.dbt", data_dir=True, work_warehouse=True, timeout=dt.timedelta(minutes=60))]
