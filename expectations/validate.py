"""Run the GX suites against the work warehouse through Checkpoints; keep results in
`audit.dq_checks` (the night's one data-quality verdict) and data docs.

What the night's validate steps call:

- `validate_raw(settings, run_id)`: the `raw.*` suites (the ingest contract), after the load;
- `validate_marts(settings, run_id)`: the `marts.*` suites (volumes and distributions), after
  dbt has built the marts (and its on-run-end hook has written its tests' rows).

Each reads its tables from DuckDB into pandas DataFrames (GX's SQL path does not work on
DuckDB) and runs one GX Checkpoint per table in a file Data Context kept beside the data docs
(`<docs_dir>/_store`, so the raw and marts calls of a night share one data docs index). The
Checkpoint's Actions update the data docs site (HTML in `docs_dir`) and write one row per
expectation to `audit.dq_checks` (stage raw or marts; re-validating a run replaces that run's
rows for those suites). The thresholds are the dbt project's vars (`ingest.warehouse.rules`);
the volume checks compare with the published warehouse.

Each then reads the verdict back through the one reader (`ingest.warehouse.verdict`) and
returns it, with `data_docs` and `by_stage` (each stage's own verdict: what the night's step
runner, `orchestration.steps.run_step`, records in the night history, one entry per stage):

- `validate_raw`: the verdict of stage raw (by_stage: raw);
- `validate_marts`: the whole night's verdict (raw, dbt's tests, marts), with `final: True`
  (by_stage: marts; the night's dbt step records stage dbt, `orchestration.dbt`).

    {"success", "evaluated", "passed", "warned", "failed", "warnings": [...], "failures": [...],
     "data_docs", "by_stage", ...}  (see ingest/warehouse/verdict.py)

A warning (severity warn) never makes `success` false. A failed expectation never raises: the
caller decides whether to fail the step and alert. A warehouse that cannot be read or written
raises `WarehouseUnavailable` (one line).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pandas as pd

from expectations import MART_SUITES, RAW_SUITES, Rules
from expectations.results import (
    MAX_SAMPLE,
    TableInfo,
    WarehouseUnavailable,
    _one_line,
    expectation_severity,
)
from ingest.files import write_file
from ingest.settings import Settings
from ingest.warehouse.rules import dq_thresholds
from ingest.warehouse.verdict import read_run_verdict

__all__ = ["WarehouseUnavailable", "read_run_verdict", "validate_marts", "validate_raw", "validate_suites"]

log = logging.getLogger(__name__)

DOCS_SITE = "ofsted_data_quality"
DATA_SOURCE = "work_warehouse"


@dataclass(frozen=True)
class Suite:
    """One suite, from its module `expectations.<name>` (see the package docstring)."""

    name: str
    module: ModuleType

    @property
    def table(self) -> str:
        return self.module.TABLE

    @property
    def tables(self) -> tuple[str, ...]:
        """The warehouse tables it reads whole (their published rows are the volume baseline)."""
        return tuple(getattr(self.module, "TABLES", (self.module.TABLE,)))

    @property
    def id_columns(self) -> tuple[str, ...]:
        return tuple(self.module.ID_COLUMNS)

    def derive(self, frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
        derive = getattr(self.module, "derive", None)
        return derive(frame, rules) if derive else frame


@dataclass(frozen=True)
class TableFrame:
    suite: Suite
    frame: pd.DataFrame
    problem: str | None = None  # why the table could not be read (then `frame` is empty)


# --- public entry points --------------------------------------------------------------------

def validate_raw(settings: Settings, run_id: str, docs_dir: Path | None = None) -> dict:
    """Validate the raw tables (`raw.letters`, `raw.findings`) of the work warehouse; record and
    return the verdict of stage raw."""
    summary = validate_suites(settings, run_id, RAW_SUITES, docs_dir)
    verdict = read_run_verdict(settings.work_warehouse, run_id, ("raw",))
    return {**verdict, "data_docs": summary["data_docs"], "by_stage": {"raw": verdict}}


def validate_marts(settings: Settings, run_id: str, docs_dir: Path | None = None) -> dict:
    """Validate the marts (`marts.dim_*`, `marts.fct_*`, `marts.bridge_*`) of the work warehouse;
    record the marts' verdict, and return the whole night's verdict (stage dbt's is recorded by
    the dbt step, which ran before)."""
    summary = validate_suites(settings, run_id, MART_SUITES, docs_dir)
    night = read_run_verdict(settings.work_warehouse, run_id)
    marts = read_run_verdict(settings.work_warehouse, run_id, ("marts",))
    return {**night, "data_docs": summary["data_docs"], "final": True, "by_stage": {"marts": marts}}


def validate_suites(
    settings: Settings, run_id: str, suites: tuple[str, ...], docs_dir: Path | None = None
) -> dict:
    """Validate the named suites (the Checkpoints write their rows to `audit.dq_checks`);
    `docs_dir` defaults to `settings.report_dir / "data_docs"`. Returns their counts
    (success, evaluated, failed, warned) and `data_docs`."""
    docs_dir = Path(docs_dir) if docs_dir is not None else settings.report_dir / "data_docs"
    specs = [load_suite(name) for name in suites]
    rules = Rules(dq_thresholds(settings), published_row_counts(settings.published_warehouse, specs))
    frames = [
        replace(tf, frame=tf.suite.derive(tf.frame, rules))
        for tf in read_frames(settings.work_warehouse, specs)
    ]
    validated_at = dt.datetime.now(dt.UTC)
    index = docs_dir / "index.html"
    results = run_checkpoints(frames, rules, settings.work_warehouse, run_id, validated_at, docs_dir)
    guard_offline(docs_dir)
    outcomes = [r for result in results for r in result.results]
    severities = [expectation_severity(r.expectation_config) for r in outcomes if not r.success]
    failed, warned = severities.count("error"), severities.count("warn")
    log.info("DQ %s: %d expectations, %d failed, %d warnings (%s)", ",".join(suites), len(outcomes),
             failed, warned, index)
    return {"success": not failed, "evaluated": len(outcomes), "failed": failed, "warned": warned,
            "data_docs": str(index)}


def stage_of(suite: str) -> str:
    """The night's stage a suite belongs to: raw (before dbt) or marts (after it)."""
    return "raw" if suite in RAW_SUITES else "marts"


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_OFFLINE_NOTE = ("if (!window.jQuery && !document.getElementById('offline-note')) { var p = "
                 "document.createElement('p'); p.id = 'offline-note'; p.style.padding = '1em'; "
                 "p.textContent = 'The tables on this page are drawn by scripts from the internet (jQuery, "
                 "Bootstrap), which did not load: open it with a network connection.'; "
                 "document.body.prepend(p); }")


def guard_offline(docs_dir: Path) -> None:
    """GX's data docs load jQuery and Bootstrap from CDNs; offline every inline `$(...)` threw
    "$ is not defined". Each inline script that uses jQuery runs only when it loaded, and the
    page then says why its tables are empty. Idempotent (a guarded page is left as it is)."""
    for page in Path(docs_dir).rglob("*.html"):
        try:
            text = page.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue

        def guard(m: re.Match) -> str:
            body = m.group(1)
            uses_jquery = "$(" in body or "jQuery(" in body
            if not uses_jquery or body.startswith("if (window.jQuery)"):
                return m.group(0)
            return f"<script>if (window.jQuery) {{{body}}} else {{ {_OFFLINE_NOTE} }}</script>"

        guarded = _INLINE_SCRIPT.sub(guard, text)
        if guarded != text:
            write_file(page, guarded)


def load_suite(name: str) -> Suite:
    """The suite `expectations.<name>` (imports GX)."""
    _quiet_gx()
    return Suite(name, importlib.import_module(f"expectations.{name}"))


# --- reading --------------------------------------------------------------------------------

def read_frames(warehouse: Path, suites: list[Suite]) -> list[TableFrame]:
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
        return [_read_one(con, s) for s in suites]
    finally:
        con.close()


def _read_one(con: duckdb.DuckDBPyConnection, suite: Suite) -> TableFrame:
    try:
        return TableFrame(suite, con.sql(suite.module.QUERY).df())
    except (duckdb.CatalogException, duckdb.BinderException) as exc:  # missing table or column
        return TableFrame(suite, pd.DataFrame(), f"cannot read {suite.table}: {_one_line(exc)}")
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot read {suite.table}: {_one_line(exc)}") from exc


def published_row_counts(published: Path, suites: list[Suite]) -> dict[str, int]:
    """Rows of each suite's table in the published warehouse (last night's, as analysts see it).
    No published warehouse yet, or a table it lacks: no count (the volume check then asks only
    for rows). An unreadable one is logged and treated the same: it must not stop tonight."""
    if not Path(published).is_file():
        return {}
    counts: dict[str, int] = {}
    try:
        con = duckdb.connect(str(published), read_only=True)
    except duckdb.Error as exc:
        log.warning("volume checks without a baseline: cannot open %s: %s", published, _one_line(exc))
        return {}
    try:
        for table in {t for suite in suites for t in suite.tables}:
            try:
                counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
            except duckdb.Error:
                continue
    finally:
        con.close()
    return counts


# --- validating -----------------------------------------------------------------------------

def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations.core", "posthog", "tzlocal"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _info(tf: TableFrame) -> TableInfo:
    return TableInfo(tf.suite.table, tf.suite.id_columns, tf.problem)


_CONTEXTS: dict[Path, Any] = {}  # docs_dir -> its Data Context: built once per process (the raw
#                                  and marts checks of a night share one), the last few kept


def data_context(docs_dir: Path):
    """A file Data Context under `docs_dir/_store` (suites, validation results, checkpoints)
    whose data docs site is `docs_dir` itself; built once per process and folder."""
    key = Path(docs_dir).resolve()
    if key in _CONTEXTS and (key / "_store" / "gx").is_dir():
        return _CONTEXTS[key]
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=docs_dir / "_store")
    if context.config.analytics_enabled is not False:  # saved in the store's config: set once
        context.enable_analytics(False)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    sites = context.list_data_docs_sites()
    if DOCS_SITE not in sites:
        context.add_data_docs_site(site_name=DOCS_SITE, site_config=site)
    elif sites[DOCS_SITE] != site:  # the folder moved (a copied store): point at this one
        context.update_data_docs_site(site_name=DOCS_SITE, site_config=site)
    while len(_CONTEXTS) >= 4:
        _CONTEXTS.pop(next(iter(_CONTEXTS)))
    _CONTEXTS[key] = context
    return context


def _forget_previous(docs_dir: Path, suites: list[str]) -> None:
    """Drop stored results and rendered pages of these suites: re-validating a run (or
    validating the next night into the same folder) replaces them instead of piling up."""
    store = docs_dir / "_store" / "gx" / "uncommitted" / "validations"
    for suite in suites:
        shutil.rmtree(store / suite, ignore_errors=True)
        shutil.rmtree(docs_dir / "validations" / suite, ignore_errors=True)
        (docs_dir / "expectations" / f"{suite}.html").unlink(missing_ok=True)


def run_checkpoints(
    frames: list[TableFrame], rules: Rules, warehouse: Path, run_id: str, validated_at: dt.datetime,
    docs_dir: Path,
) -> list[Any]:
    """One Checkpoint per table (its DataFrame is the batch), its Action writing the results to
    `audit.dq_checks`; then the data docs pages of every result and suite, and the site's index,
    built once (an UpdateDataDocsAction on each Checkpoint rebuilt the index after every table).
    Returns each suite's result."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    from expectations.actions import WriteDQResultsAction

    docs_dir.mkdir(parents=True, exist_ok=True)
    _forget_previous(docs_dir, [tf.suite.name for tf in frames])
    context = data_context(docs_dir)
    source = context.data_sources.add_or_update_pandas(DATA_SOURCE)
    gx_run = RunIdentifier(run_name=run_id, run_time=validated_at)
    results, rendered = [], []
    for tf in frames:
        name = tf.suite.name
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe("whole_table")
        suite = context.suites.add_or_update(tf.suite.module.build_suite(rules))
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        ids = [c for c in tf.suite.id_columns if c in tf.frame.columns]
        # SUMMARY, not COMPLETE: a few example rows (with their ID columns), not every failing row
        result_format: dict = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_SAMPLE}
        if ids:
            result_format["unexpected_index_column_names"] = ids
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            result_format=result_format,
            actions=[
                WriteDQResultsAction(
                    name="write_dq_results", warehouse=str(warehouse), run_id=run_id,
                    validated_at=validated_at, table=tf.suite.table, id_columns=list(tf.suite.id_columns),
                    problem=tf.problem, stage=stage_of(name), data_docs=str(docs_dir / "index.html"),
                ),
            ],
        ))
        result = checkpoint.run(batch_parameters={"dataframe": tf.frame}, run_id=gx_run)
        results.extend(result.run_results.values())
        rendered += [*result.run_results, ExpectationSuiteIdentifier(name=suite.name)]
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=rendered)
    return results
