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


def dbt_categories() -> list:
    """dbt's one definition of the categories: the var `finding_categories` of dbt_project.yml."""
    project = yaml.safe_load((DBT / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"]["finding_categories"]


def test_dbts_one_definition_of_the_categories_is_the_python_list():
    assert dbt_categories() == list(CATEGORIES)


def test_every_dbt_accepted_values_on_a_category_column_reads_dbts_one_definition():
    found = accepted_category_lists()
    # the staging model and the marts analysts query each check their categories
    assert {"models/staging/_raw__models.yml:stg_raw__findings", "models/marts/fct_findings.yml:fct_findings",
            "models/marts/findings_wide.yml:findings_wide"} <= set(found), found
    for where, values in found.items():
        assert values == "{{ var('finding_categories') }}", where


def test_no_dbt_model_or_test_spells_the_categories_out():
    """Models, tests and macros loop over var('finding_categories'): none writes a category as a
    SQL string, nor names the columns of more than one category (a list of them is a second
    copy; `has_priority_action`, about one category, may name its one count)."""
    for path in sorted([*(DBT / "models").rglob("*.sql"), *(DBT / "tests").rglob("*.sql"),
                        *(DBT / "macros").rglob("*.sql")]):
        sql = path.read_text(encoding="utf-8")
        where = path.relative_to(DBT)
        assert not [c for c in CATEGORIES if f"'{c}'" in sql], where
        assert len([c for c in CATEGORIES if re.search(rf"\b{c}_(count|rows)\b", sql)]) <= 1, where
    for path in sorted((DBT / "models").rglob("*.yml")):  # expressions summing the counts
        text = path.read_text(encoding="utf-8")
        assert len([c for c in CATEGORIES if f"{c}_count +" in text or f"+ {c}_count" in text]) == 0, path


def test_the_marts_with_a_count_per_category_describe_each():
    for table in ("fct_inspections", "inspections_wide"):
        doc = yaml.safe_load((DBT / "models" / "marts" / f"{table}.yml").read_text(encoding="utf-8"))
        described = [col["name"] for col in doc["models"][0]["columns"]]
        counted = [c for c in described if c[: -len("_count")] in CATEGORIES]
        assert counted == [f"{c}_count" for c in CATEGORIES]


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
