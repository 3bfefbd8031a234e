"""The four finding categories are defined once (`ingest.letters.models.CATEGORY_LABELS`):
every Python place reads it, and dbt's copies of the list equal it."""

from __future__ import annotations

import re

import yaml

from ingest.letters.models import CATEGORIES, CATEGORY_LABELS
from ingest.settings import PROJECT_ROOT

DBT = PROJECT_ROOT / "dbt_project"


def accepted_category_lists() -> dict[str, list]:
    """Every accepted_values test on a column named `category` in the dbt project's yml files:
    '<file>:<model>' -> its values."""
    out = {}
    for path in sorted((DBT / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tables = [t for source in doc.get("sources", []) for t in source.get("tables", [])]
        for model in [*doc.get("models", []), *tables]:
            for column in model.get("columns", []) or []:
                if column.get("name") != "category":
                    continue
                for test in [*(column.get("data_tests") or []), *(column.get("tests") or [])]:
                    if isinstance(test, dict) and "accepted_values" in test:
                        spec = test["accepted_values"]
                        values = (spec.get("arguments") or {}).get("values", spec.get("values"))
                        out[f"{path.relative_to(DBT)}:{model['name']}"] = values
    return out


def test_the_categories_are_four_in_the_order_letters_list_them():
    assert CATEGORIES == ("strength", "satisfactory", "area_for_development", "priority_action")
    assert list(CATEGORY_LABELS) == list(CATEGORIES) and all(CATEGORY_LABELS.values())


def test_every_dbt_accepted_values_on_a_category_column_is_the_python_list():
    found = accepted_category_lists()
    # the staging model and the marts analysts query each check their categories
    assert {"models/staging/_raw__models.yml:stg_raw__findings", "models/marts/fct_findings.yml:fct_findings",
            "models/marts/findings_wide.yml:findings_wide"} <= set(found), found
    for where, values in found.items():
        assert values == list(CATEGORIES), where


def test_fct_inspections_counts_each_category_and_only_those():
    sql = (DBT / "models" / "marts" / "fct_inspections.sql").read_text(encoding="utf-8")
    counted = re.findall(r"filter \(where category = '(\w+)'\) as (\w+)_count", sql)
    assert counted == [(c, c) for c in CATEGORIES]


def test_the_parser_recognises_a_heading_for_each_category_and_no_other():
    from ingest.letters.parse import _HEADING

    assert set(_HEADING.groupindex) == set(CATEGORIES)


def test_the_report_labels_colours_and_columns_read_the_one_list():
    from ingest.report import charts, pages

    assert charts.CATEGORY_LABELS is CATEGORY_LABELS
    assert list(charts.CATEGORY_COLOURS) == list(CATEGORIES)
    assert [label for label, _ in pages.CATEGORY_COLUMNS] == list(CATEGORY_LABELS.values())
    template = (PROJECT_ROOT / "ingest" / "report" / "templates" / "authority.html.j2").read_text()
    for c in CATEGORIES:  # the template iterates the list it is given, spelling none of them
        assert f'"{c}"' not in template and f"'{c}'" not in template
