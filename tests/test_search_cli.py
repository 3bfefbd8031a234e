"""`ofsted search`: the command around the night's search index (marts.search_findings)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from _analysts_support import make_marts_warehouse, real_warehouse

from ingest.cli import main
from ingest.settings import get_settings


def search(capsys, warehouse: Path, *args: str) -> tuple[int, str, str]:
    """rc, stdout and stderr less its first line (the paths the command reads, said by every command)."""
    rc = main(["search", "--warehouse", str(warehouse), *args])
    out, err = capsys.readouterr()
    said, _, rest = err.partition("\n")
    assert said.startswith("ofsted search: data dir ") and f"reads published warehouse {warehouse}" in said
    return rc, out, rest


def test_a_warehouse_without_the_index_is_one_line(capsys, tmp_path):
    wh = make_marts_warehouse(tmp_path / "ofsted.duckdb")
    rc, out, err = search(capsys, wh, "thresholds")
    assert rc == 1 and out == ""
    assert err.startswith("ofsted search: error: this warehouse has no search index") and err.count("\n") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["   "], "empty search"),
    (["thresholds", "--limit", "0"], "limit must be a whole number"),
    (["x" * 1_001], "search too long: 1,001 characters (at most 1,000)"),
    (["thresholds", "--limit", "1001"], "limit must be a whole number from 1 to 1,000"),
])
def test_bad_searches_are_one_line(capsys, tmp_path, args, message):
    wh = make_marts_warehouse(tmp_path / "ofsted.duckdb")
    rc, out, err = search(capsys, wh, *args)
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"ofsted search: error: {message}"), err


def test_missing_warehouse(capsys, tmp_path):
    rc, _, err = search(capsys, tmp_path / "none.duckdb", "thresholds")
    assert rc == 1 and err.startswith("ofsted search: error: no published warehouse at ")


# --- on the real night's warehouse -----------------------------------------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    return real_warehouse(tmp_path_factory).published_warehouse


def ranked(real: Path, words: str, any_word: bool = False) -> list[tuple]:
    con = duckdb.connect(str(real), read_only=True)
    try:
        return con.execute("select finding_key, score from marts.search_findings(?, any_word := ?) "
                            "order by score desc, finding_key", [words, any_word]).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_thresholds_finds_derbyshires_threshold_guidance(capsys, real):
    # the real build adds generated letters to the samples: many findings are about thresholds
    rc, out, err = search(capsys, real, "thresholds", "--format", "json", "--limit", "500")
    assert rc == 0, err
    hits = json.loads(out)
    assert any(h["authority_name"] == "Derbyshire" and "revising threshold guidance" in h["finding_text"]
               for h in hits)
    assert all(h["matched_terms"] == ["threshold"] for h in hits)  # "thresholds" stemmed
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    # the same findings, in the same order, as the relation analysts query in SQL
    assert [(h["finding_key"], h["score"]) for h in hits] == ranked(real, "thresholds")[:500]


@pytest.mark.slow
def test_table_csv_markdown_and_limit(capsys, real):
    expected = ranked(real, "supervision managers")
    assert len(expected) > 3
    rc, out, _ = search(capsys, real, "supervision managers", "--limit", "3")
    lines = out.splitlines()
    assert rc == 0 and lines[0].split(" | ")[0] == "rank" and lines[-1] == "(3 rows)"
    assert [line.split(" | ")[0].strip() for line in lines[2:-1]] == ["1", "2", "3"]
    rc, out, _ = search(capsys, real, "supervision managers", "--limit", "3", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["finding_key"] for r in rows] == [k for k, _ in expected[:3]]
    assert json.loads(rows[0]["themes"]) is not None and rows[0]["source_uri"].startswith("file://")
    rc, out, _ = search(capsys, real, "supervision managers", "--limit", "2", "--format", "markdown")
    assert out.splitlines()[0] == ("| rank | score | authority_name | inspection_start_date | category "
                                   "| finding_text |")
    assert len(out.splitlines()) == 4


@pytest.mark.slow
def test_search_from_the_command_line(real):
    p = subprocess.run([sys.executable, "-m", "ingest.cli", "search", "--warehouse", str(real), "referrals",
                        "--wrap"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0
    [said] = p.stderr.splitlines()  # like every command: the paths it reads
    assert said == f"ofsted search: data dir {get_settings().data_dir}; reads published warehouse {real}"
    assert p.stdout.splitlines()[-1] == "(20 rows)"


@pytest.mark.slow
def test_data_dir_like_every_other_command(capsys, tmp_path_factory):
    settings = real_warehouse(tmp_path_factory)
    rc = main(["search", "--data-dir", str(settings.data_dir), "thresholds", "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert err.splitlines() == [f"ofsted search: data dir {settings.data_dir}; "
                                f"reads published warehouse {settings.published_warehouse}"]
    assert [h["finding_key"] for h in json.loads(out)] == [k for k, _ in ranked(settings.published_warehouse,
                                                                                "thresholds")[:20]]


@pytest.mark.slow
def test_every_word_by_default_any_word_on_request(capsys, real):
    words = "supervision unallocated"
    every, anyword = ranked(real, words), ranked(real, words, any_word=True)
    assert len(anyword) > len(every)
    assert {k for k, _ in every} <= {k for k, _ in anyword}
    con = duckdb.connect(str(real), read_only=True)
    try:  # every word: each finding found has both words' terms
        for key, _ in every:
            terms = {t for (t,) in con.execute("select term from marts.finding_terms where finding_key = ?",
                                               [key]).fetchall()}
            assert {"supervis", "unalloc"} <= terms
    finally:
        con.close()
    rc, out, _ = search(capsys, real, words, "--any", "--limit", "1000", "--format", "json")
    assert rc == 0 and [h["finding_key"] for h in json.loads(out)] == [k for k, _ in anyword][:1000]
    # a word no finding has: nothing for every word, said on stderr; ignored for any word
    rc, out, err = search(capsys, real, "zeppelin supervision", "--format", "json")
    assert rc == 0 and json.loads(out) == []
    said = "ofsted search: warning: no finding has the word 'zeppelin': it matches nothing"
    assert said in err.splitlines()
    rc, out, _ = search(capsys, real, "zeppelin supervision", "--any", "--format", "json", "--limit", "1000")
    assert [h["finding_key"] for h in json.loads(out)] == [k for k, _ in ranked(real, "supervision")][:1000]
