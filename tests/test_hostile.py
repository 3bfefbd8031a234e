"""A hostile inbox beside the real letters (tests/hostile_corpus.py): `ofsted load` loads the
letters, rejects every hostile file with its reason, skips what is not a file, copies nothing
from outside the inbox, and a second run changes nothing. Then the same through the DAG
(`ofsted run --airflow`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _load_support import SAMPLES, make_settings, manifest, query, snapshot
from hostile_corpus import ATTACKS, build

from ingest.raw.commands import cli_load

# limits well below the defaults, so the limit attacks are stopped quickly
LIMITS = {"OFSTED_PARSE_CPU_S": "4", "OFSTED_PARSE_WALL_S": "8"}


@pytest.fixture(scope="module")
def hostile_inbox(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    inbox = root / "inbox"
    shutil.copytree(SAMPLES, inbox)
    build(inbox)
    return inbox


def _check_outcomes(rejected: dict[str, str], skipped: dict[str, str]) -> None:
    for a in ATTACKS:
        if a.outcome == "rejected":
            assert a.name in rejected, a.name
            assert a.expect in rejected[a.name], (a.name, rejected[a.name])
        else:
            assert skipped.get(a.name, "").startswith(a.expect) or a.expect in skipped.get(a.name, ""), \
                (a.name, skipped.get(a.name))


def test_load_keeps_the_letters_and_rejects_every_attack(tmp_path, hostile_inbox, capsys):
    s = make_settings(tmp_path, hostile_inbox, **LIMITS)
    assert cli_load(s) == 0
    out = capsys.readouterr().out.splitlines()
    n_rejected = sum(a.outcome == "rejected" for a in ATTACKS)
    assert out[-1].endswith(f"3 new, 0 unchanged, 0 duplicate, {n_rejected} rejected, 0 failed")

    assert sorted(r[0] for r in query(s, "select authority_name from raw.letters")) == [
        "Derbyshire County Council", "Dorset County Council", "Dudley Metropolitan Borough Council"]
    rejected = {Path(u).name: reason for u, reason in query(
        s, "select _source_uri, reason from raw.rejected_documents")}
    skipped = {name: detail for name, (status, detail) in manifest_details(s).items() if status == "skipped"}
    _check_outcomes(rejected, skipped)
    # a limit names itself, and the oversized file was refused without a hash
    assert "exceeded" in rejected["flate_bomb.pdf"] and "GiB" in rejected["flate_bomb.pdf"]
    assert query(s, "select _sha256 from raw.rejected_documents where _source_uri like '%oversized.txt'") \
        == [(None,)]
    # nothing from outside the inbox reached the archive
    archived = b"".join(p.read_bytes() for p in s.archive_dir.rglob("*") if p.is_file())
    assert b"outside the inbox" not in archived

    before = snapshot(s, with_times=False)
    assert cli_load(s) == 0
    out = capsys.readouterr().out.splitlines()
    unchanged = 3 + n_rejected - 1  # the letters and every rejection with a hash (not the oversized file)
    assert out[-1].endswith(f"0 new, {unchanged} unchanged, 0 duplicate, 0 rejected, 0 failed")
    assert snapshot(s, with_times=False) == before


def manifest_details(s) -> dict[str, tuple]:
    rows = query(s, "select source_uri, status, detail from raw.manifest")
    return {Path(u).name: (st, d) for u, st, d in rows}


def test_reparse_retry_rejected_retries_with_raised_limits(tmp_path):
    """A document rejected for a limit stays rejected nightly; --retry-rejected tries it again."""
    from hostile_corpus import nested_forms_pdf

    from ingest.raw.pipeline import run_load, run_reparse

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "slow.pdf").write_bytes(nested_forms_pdf(5))
    s = make_settings(tmp_path, inbox, OFSTED_PARSE_CPU_S="1", OFSTED_PARSE_WALL_S="3")
    assert run_load(s)["rejected"] == 1
    assert run_load(s)["rejected"] == 0  # not retried nightly
    assert run_reparse(s)["candidates"] == 0
    again = run_reparse(s, retry_rejected=True)
    assert again["candidates"] == 1 and again["rejected"] == 1
    assert "exceeded" in query(s, "select reason from raw.rejected_documents")[0][0]
    assert manifest(s)["slow.pdf"][0] == "rejected"


@pytest.mark.slow
def test_the_night_through_the_dag_rejects_the_attacks_and_publishes(tmp_path, hostile_inbox):
    """`ofsted run --airflow` (the DAG as Airflow builds it, through its dag.test) on the hostile
    inbox: the night succeeds, the letters are published, every attack is rejected or skipped
    with its reason; the tasks ran in Airflow, which kept its metadata DB."""
    from _airflow_support import ofsted_run, run_env, settings_for

    env = run_env(tmp_path, hostile_inbox, **LIMITS)
    done = ofsted_run(env, "--airflow")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "airflow: metadata DB created" in done.stdout and "  ok  " in done.stdout
    assert (Path(env["AIRFLOW_HOME"]) / "airflow.db").is_file()
    s = settings_for(env)
    n_rejected = sum(a.outcome == "rejected" for a in ATTACKS)
    assert f"letters: new 3, unchanged 0, duplicate 0, rejected {n_rejected}" in done.stdout
    import duckdb

    con = duckdb.connect(str(s.published_warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from marts.fct_inspections").fetchone()[0] == 3
        rejected = {Path(u).name: r for u, r in
                    con.execute("select _source_uri, reason from raw.rejected_documents").fetchall()}
        skipped = {Path(u).name: d for u, d in con.execute(
            "select source_uri, detail from raw.manifest where status = 'skipped'").fetchall()}
    finally:
        con.close()
    _check_outcomes(rejected, skipped)
