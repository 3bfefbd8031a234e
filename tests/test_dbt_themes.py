"""Theme patterns (seed finding_themes) against hand-labelled findings: a quality gate.

The figures per theme are printed by `benchmarks/theme_quality.py`; here the micro-averaged
precision and recall over the whole fixture, and the precision and recall of every theme, must
stay at or above 0.85, so a pattern change that breaks theme assignment fails the suite. The
fixture keeps a held-out set (`heldout3`) that was never used to tune the patterns.
"""

from __future__ import annotations

import csv

import pytest
from _dbt_support import theme_quality


@pytest.fixture(scope="module")
def labels() -> list[dict[str, str]]:
    return theme_quality.read_labels()


def test_fixture_is_big_enough_and_uses_only_known_themes(labels):
    known = set(theme_quality.theme_codes())
    assert len(labels) >= 80
    assert sum(r["source"].startswith("real:") for r in labels) == 50  # every finding of the 3 letters
    used = set().union(*(theme_quality.expected_themes(r) for r in labels))
    assert used <= known, used - known
    assert known <= used, known - used  # every theme has labelled examples
    assert len({r["finding_text"] for r in labels}) == len(labels)
    assert len({r["finding_id"] for r in labels}) == len(labels)
    assert {r["category"] for r in labels} <= {"strength", "satisfactory", "area_for_development",
                                                "priority_action"}


def test_fixture_keeps_a_held_out_set_covering_every_theme(labels):
    held_out = [r for r in labels if theme_quality.label_set(r) == "heldout3"]
    assert len(held_out) >= 30
    used = set().union(*(theme_quality.expected_themes(r) for r in held_out))
    assert used == set(theme_quality.theme_codes())


def test_patterns_reach_the_quality_target(labels):
    results = theme_quality.evaluate()
    overall = results["_all"]
    assert overall.support >= 400
    assert overall.precision >= 0.85, overall
    assert overall.recall >= 0.85, overall


def test_every_theme_reaches_the_quality_target(labels):
    results = theme_quality.evaluate()
    for theme in theme_quality.theme_codes():
        s = results[theme]
        assert s.support >= 5, (theme, s)
        assert s.precision >= 0.85, (theme, s)
        assert s.recall >= 0.85, (theme, s)


def test_each_set_of_the_fixture_is_reported(labels):
    results = theme_quality.evaluate()
    sets = theme_quality.label_sets(labels)
    assert sets[0] == "real" and {"written", "written4", "heldout2", "heldout3"} <= set(sets)
    assert sum(results[f"_{part}"].support for part in sets) == results["_all"].support


def test_a_broken_pattern_is_caught(tmp_path, labels):
    """The gate can fail: a taxonomy whose supervision pattern matches everything scores lower."""
    with theme_quality.THEMES_CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["theme_code"] == "supervision":
            row["pattern"] = "."
    broken = tmp_path / "themes.csv"
    with broken.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    good, bad = theme_quality.evaluate()["supervision"], theme_quality.evaluate(broken)["supervision"]
    assert bad.fp == len(labels) - good.support and bad.precision < 0.1 < good.precision
