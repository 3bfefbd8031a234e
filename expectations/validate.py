"""Run the GX suites against the work warehouse; keep results in `audit.dq_results` and data docs.

What the DAG's validate tasks call:

- `validate_raw(settings, run_id)`: the `raw.*` suites, after the load;
- `validate_marts(settings, run_id)`: the `marts.*` suites, after dbt has released the file.

Each reads its tables from DuckDB into pandas DataFrames (GX's SQL path does not work on
DuckDB), validates them with one ephemeral GX context and a pandas data source, appends one
row per expectation to `audit.dq_results` (re-validating a run replaces that run's rows for
those suites), builds GX data docs (HTML) and returns a JSON-serialisable summary:

    {"success", "evaluated", "failed",
     "failures": [{"table", "expectation", "column", "detail"}], "data_docs"}

A failed expectation never raises: the caller decides whether to fail the task and alert.
A warehouse that cannot be read raises `WarehouseUnavailable` with a one-line message.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from expectations import MART_SUITES, RAW_SUITES
from ingest.settings import Settings

log = logging.getLogger(__name__)

DOCS_SITE = "ofsted_data_quality"
MAX_EXAMPLES = 3  # failing rows named in a failure's detail
_HASH = re.compile(r"^[0-9a-f]{32,}$")  # sha256 / md5 surrogate keys: shown by their first 12

AUDIT_DDL = """
create schema if not exists audit;
create table if not exists audit.dq_results (
    run_id varchar not null,
    validated_at timestamptz not null,
    suite varchar not null,
    table_name varchar not null,
    expectation_type varchar not null,
    column_name varchar,
    kwargs json,
    success boolean not null,
    element_count bigint,
    unexpected_count bigint,
    observed_value varchar,
    details varchar
);
"""
AUDIT_COLUMNS = (
    "run_id", "validated_at", "suite", "table_name", "expectation_type", "column_name",
    "kwargs", "success", "element_count", "unexpected_count", "observed_value", "details",
)


class WarehouseUnavailable(RuntimeError):
    """The work warehouse could not be opened or read; the message is one line."""


@dataclass(frozen=True)
class TableFrame:
    suite: str
    table: str
    frame: pd.DataFrame
    id_columns: tuple[str, ...]
    problem: str | None = None  # why the table could not be read (then `frame` is empty)


# --- public entry points --------------------------------------------------------------------

def validate_raw(settings: Settings, run_id: str, docs_dir: Path | None = None) -> dict:
    """Validate the raw tables (`raw.letters`, `raw.findings`) of the work warehouse."""
    return validate_suites(settings, run_id, RAW_SUITES, docs_dir)


def validate_marts(settings: Settings, run_id: str, docs_dir: Path | None = None) -> dict:
    """Validate the marts (`marts.dim_*`, `marts.fct_*`, `marts.bridge_*`) of the work warehouse."""
    return validate_suites(settings, run_id, MART_SUITES, docs_dir)


def validate_suites(
    settings: Settings, run_id: str, suites: tuple[str, ...], docs_dir: Path | None = None
) -> dict:
    """Validate the named suites; `docs_dir` defaults to `settings.report_dir / "data_docs"`."""
    docs_dir = Path(docs_dir) if docs_dir is not None else settings.report_dir / "data_docs"
    modules = [suite_module(name) for name in suites]
    frames = read_frames(settings.work_warehouse, modules)
    validated_at = dt.datetime.now(dt.UTC)
    results = _run_gx(frames, modules, run_id, validated_at, docs_dir)
    rows = [
        row
        for tf, result in zip(frames, results, strict=True)
        for row in result_rows(tf, result, run_id, validated_at)
    ]
    write_results(settings.work_warehouse, run_id, suites, rows)
    index = docs_dir / "index.html"
    summary = summarise(rows, str(index))
    log.info(
        "DQ %s: %d expectations, %d failed (%s)", ",".join(suites), summary["evaluated"],
        summary["failed"], index,
    )
    return summary


def suite_module(name: str) -> ModuleType:
    """The suite module `expectations.<name>` (imports GX)."""
    _quiet_gx()
    return importlib.import_module(f"expectations.{name}")


# --- reading --------------------------------------------------------------------------------

def read_frames(warehouse: Path, modules: list[ModuleType]) -> list[TableFrame]:
    """Each suite's table as a DataFrame. A missing table gives an empty frame and a problem
    (its expectations then fail in GX); an unreadable warehouse raises WarehouseUnavailable."""
    if not Path(warehouse).is_file():
        raise WarehouseUnavailable(f"work warehouse not found: {warehouse}")
    try:
        # Default configuration on purpose: an in-process Airflow run may still hold dbt-duckdb's
        # connection to this file, and DuckDB refuses a second one with another config.
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open {warehouse}: {_one_line(exc)}") from exc
    try:
        return [_read_one(con, m) for m in modules]
    finally:
        con.close()


def _read_one(con: duckdb.DuckDBPyConnection, module: ModuleType) -> TableFrame:
    suite = module.__name__.rsplit(".", 1)[-1]
    try:
        frame = con.sql(module.QUERY).df()
        problem = None
    except (duckdb.CatalogException, duckdb.BinderException) as exc:  # missing table or column
        frame, problem = pd.DataFrame(), f"cannot read {module.TABLE}: {_one_line(exc)}"
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot read {module.TABLE}: {_one_line(exc)}") from exc
    return TableFrame(suite, module.TABLE, frame, tuple(module.ID_COLUMNS), problem)


# --- validating -----------------------------------------------------------------------------

def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations.core", "posthog", "tzlocal"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _context(docs_dir: Path):
    """One ephemeral context per call: suites and results stored under `docs_dir/_store`
    (so the raw and marts calls of a night share one data docs index), site in `docs_dir`."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    store = docs_dir / "_store"
    defaults = InMemoryStoreBackendDefaults()
    for name, cls, sub in (
        ("expectations_store", "ExpectationsStore", "expectations"),
        ("validation_results_store", "ValidationResultsStore", "validations"),
    ):
        defaults.stores[name] = {
            "class_name": cls,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(store / sub),
            },
        }
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={DOCS_SITE: site},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _forget_previous(docs_dir: Path, suites: list[str]) -> None:
    """Drop stored results of these suites and the rendered pages: re-validating a run (or
    validating the next night into the same folder) replaces them instead of piling up."""
    for suite in suites:
        shutil.rmtree(docs_dir / "_store" / "validations" / suite, ignore_errors=True)
        (docs_dir / "_store" / "expectations" / f"{suite}.json").unlink(missing_ok=True)
    for rendered in ("validations", "expectations"):
        shutil.rmtree(docs_dir / rendered, ignore_errors=True)


def _run_gx(
    frames: list[TableFrame], modules: list[ModuleType], run_id: str, validated_at: dt.datetime,
    docs_dir: Path,
) -> list[Any]:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    docs_dir.mkdir(parents=True, exist_ok=True)
    _forget_previous(docs_dir, [tf.suite for tf in frames])
    context = _context(docs_dir)
    source = context.data_sources.add_pandas("work_warehouse")
    gx_run = RunIdentifier(run_name=run_id, run_time=validated_at)
    results = []
    for tf, module in zip(frames, modules, strict=True):
        batch = source.add_dataframe_asset(tf.suite).add_batch_definition_whole_dataframe("whole_table")
        suite = context.suites.add(module.build_suite())
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=tf.suite, data=batch, suite=suite)
        )
        ids = [c for c in tf.id_columns if c in tf.frame.columns]
        # SUMMARY, not COMPLETE: a few example rows (with their ID columns), not every failing row
        result_format: dict = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
        if ids:
            result_format["unexpected_index_column_names"] = ids
        result = definition.run(
            batch_parameters={"dataframe": tf.frame}, result_format=result_format, run_id=gx_run
        )
        results.append(result)
    context.build_data_docs(site_names=[DOCS_SITE])
    return results


# --- results --------------------------------------------------------------------------------

def result_rows(tf: TableFrame, suite_result: Any, run_id: str, validated_at: dt.datetime) -> list[dict]:
    """One audit row per expectation of a suite's validation result."""
    rows = []
    for r in suite_result.results:
        config = r.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        result = r.result or {}
        rows.append({
            "run_id": run_id,
            "validated_at": validated_at,
            "suite": tf.suite,
            "table_name": tf.table,
            "expectation_type": config.type,
            "column_name": expectation_column(kwargs),
            "kwargs": json.dumps(kwargs, default=_json_default, sort_keys=True),
            "success": bool(r.success),
            "element_count": result.get("element_count"),
            "unexpected_count": result.get("unexpected_count"),
            "observed_value": _observed(result),
            "details": None if r.success else failure_detail(tf, config, r),
        })
    return rows


def expectation_column(kwargs: dict) -> str | None:
    """The column(s) an expectation is about: `col`, `a,b` for pairs and compounds, None for tables."""
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(map(str, kwargs["column_list"]))
    return None


def failure_detail(tf: TableFrame, config: Any, r: Any) -> str:
    """One line saying what failed: the rule, how many rows, which rows (by their ID columns)."""
    parts = [tf.problem] if tf.problem else []
    error = _exception_message(r.exception_info)
    result = r.result or {}
    notes = config.notes
    if notes and not isinstance(notes, str):
        notes = " ".join(notes)
    if notes:
        parts.append(str(notes))
    if error and not tf.problem:
        parts.append(error)
    elif "unexpected_count" in result:
        count, total = result.get("unexpected_count"), result.get("element_count")
        parts.append(f"{count} of {total} rows unexpected")
        examples = _examples(result, tf.id_columns)
        if examples:
            parts.append("e.g. " + "; ".join(examples))
    elif "observed_value" in result:
        parts.append(f"observed {_fmt(result['observed_value'])}{_bounds(config.kwargs)}")
    return " - ".join(p for p in parts if p)


def _examples(result: dict, id_columns: tuple[str, ...]) -> list[str]:
    index_rows = result.get("partial_unexpected_index_list") or []
    out = []
    for row in index_rows[:MAX_EXAMPLES]:
        if isinstance(row, dict):
            out.append(", ".join(f"{k}={_short(_fmt(v))}" for k, v in row.items()))
    if not out:
        out = [_fmt(v) for v in (result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]]
    return out


def _short(text: str) -> str:
    return text[:12] + "..." if _HASH.match(text) else text


def _bounds(kwargs: dict) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is None and hi is None:
        return ""
    return f" (expected {_fmt(lo) if lo is not None else '-inf'}..{_fmt(hi) if hi is not None else 'inf'})"


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return _one_line(info.get("exception_message") or "expectation raised an exception")
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return _one_line(nested.get("exception_message") or "expectation raised an exception")
    return None


def _observed(result: dict) -> str | None:
    if "observed_value" not in result:
        return None
    return json.dumps(result["observed_value"], default=_json_default)


def _fmt(value: Any) -> str:
    if value is None or value is pd.NaT:
        return "null"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.datetime):
        midnight = (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)
        return value.date().isoformat() if midnight else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _fmt(value.item())
    if isinstance(value, float):
        return "null" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def _json_default(value: Any) -> Any:
    if value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _one_line(exc: Any) -> str:
    return " ".join(str(exc).split())[:500]


def summarise(rows: list[dict], data_docs: str) -> dict:
    failed = [r for r in rows if not r["success"]]
    return {
        "success": not failed,
        "evaluated": len(rows),
        "failed": len(failed),
        "failures": [
            {
                "table": r["table_name"],
                "expectation": r["expectation_type"],
                "column": r["column_name"],
                "detail": r["details"],
            }
            for r in failed
        ],
        "data_docs": data_docs,
    }


# --- writing --------------------------------------------------------------------------------

def write_results(warehouse: Path, run_id: str, suites: tuple[str, ...], rows: list[dict]) -> None:
    """Replace this run's rows for these suites in `audit.dq_results` (one transaction)."""
    frame = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open {warehouse} to write DQ results: {_one_line(exc)}") from exc
    try:
        con.execute(AUDIT_DDL)
        con.execute("begin transaction")
        placeholders = ", ".join("?" for _ in suites)
        con.execute(
            f"delete from audit.dq_results where run_id = ? and suite in ({placeholders})",
            [run_id, *suites],
        )
        con.register("dq_rows", frame)
        con.execute(
            f"insert into audit.dq_results ({', '.join(AUDIT_COLUMNS)}) "
            f"select {', '.join(AUDIT_COLUMNS)} from dq_rows"
        )
        con.unregister("dq_rows")
        con.execute("commit")
    except duckdb.Error:
        con.execute("rollback")
        raise
    finally:
        con.close()
