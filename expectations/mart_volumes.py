"""The marts' volumes night on night: one row per mart with its rows tonight and the fewest it
may have given the published warehouse (last night's, as analysts see it).

A night may add letters but should not lose many: a mart shrinking by more than
`max_row_count_drop_share` of its published rows fails (a truncated load, a broken join).
The marts' keys and relationships are dbt's tests.

Derived columns (`derive`, from the rules and the manifest): `may_be_empty`,
`published_row_count` (null on the first night) and `min_row_count` (at least 1, or 0 for a
mart whose dbt `meta` says `may_be_empty`, and the published rows less the allowed drop).

The marts are those of the dbt manifest (`mart_tables`): every table or incremental model in
schema marts, none listed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from expectations import Rules
from ingest.settings import get_settings
from ingest.warehouse.build import prebuilt_target

TABLE = "marts.*"
ID_COLUMNS: tuple[str, ...] = ("table_name", "published_row_count")


def mart_tables(manifest: Path) -> dict[str, bool]:
    """Every mart dbt builds as a table (`schema.alias` of each table or incremental model in
    schema marts) -> whether it may be empty (its `meta: may_be_empty`), from the dbt manifest
    (`make setup` and the image write it): a new mart is guarded the night it
    lands, with no list here to forget it in."""
    try:
        nodes = json.loads(Path(manifest).read_text(encoding="utf-8"))["nodes"].values()
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise RuntimeError(f"cannot list the marts from the dbt manifest {manifest}: {exc}") from exc
    return {
        f"{n['schema']}.{n['alias']}": bool(((n.get("config") or {}).get("meta") or {}).get("may_be_empty"))
        for n in sorted(nodes, key=lambda n: (n.get("schema") or "", n.get("alias") or ""))
        if n.get("resource_type") == "model" and n.get("schema") == "marts"
        and (n.get("config") or {}).get("materialized") in ("table", "incremental")
    }


def project_marts() -> dict[str, bool]:
    """`mart_tables` of the project's own parse (`make setup`, the image's `dbt parse`), beside the
    saved parse the night's dbt starts from: present before any build, unlike a build's target."""
    return mart_tables(prebuilt_target(get_settings().dbt_project_dir) / "manifest.json")


def _query(tables: tuple[str, ...]) -> str:
    return "\nunion all\n".join(
        f"select '{table}' as table_name, count(*) as row_count from {table}" for table in tables
    )


def __getattr__(name: str):
    """`TABLES` and `QUERY` (the suite interface), read from the manifest when first asked."""
    if name == "TABLES":
        return tuple(project_marts())
    if name == "QUERY":
        return _query(__getattr__("TABLES"))
    raise AttributeError(name)


def derive(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Add each mart's published rows and the fewest rows it may have tonight."""
    if frame.empty:
        return frame
    frame = frame.copy()
    frame["published_row_count"] = [rules.previous_rows.get(t) for t in frame["table_name"]]
    marts = project_marts()
    frame["may_be_empty"] = [marts.get(t, False) for t in frame["table_name"]]
    frame["min_row_count"] = [rules.min_rows(t, floor=0 if may else 1)
                              for t, may in zip(frame["table_name"], frame["may_be_empty"], strict=True)]
    return frame


def build_suite(rules: Rules) -> gx.ExpectationSuite:
    drop = float(rules.thresholds["max_row_count_drop_share"])
    marts = len(__getattr__("TABLES"))
    return gx.ExpectationSuite(
        name="mart_volumes",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(
                min_value=marts, max_value=marts, notes="every mart was counted",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="row_count", min_value=1, row_condition="may_be_empty == False",
                condition_parser="pandas",
                notes="every mart has rows (but one whose dbt meta says may_be_empty)",
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="row_count", column_B="min_row_count", or_equal=True,
                notes=f"no mart shrinks by more than {drop:.0%} of its published rows",
            ),
        ],
    )
