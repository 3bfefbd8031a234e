"""`ofsted sql` and `ofsted export` against a published warehouse, read-only and locked down."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow.parquet as pq
import pytest
from _analysts_support import AUTHORITIES, INSPECTIONS, WORKED_QUESTIONS, make_marts_warehouse, real_warehouse

from ingest.cli import main
from ingest.warehouse.export import export_marts
from ingest.warehouse.publish import publish_warehouse
from ingest.warehouse.query import run_query


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return make_marts_warehouse(tmp_path_factory.mktemp("wh") / "ofsted.duckdb")


class Captured(NamedTuple):
    out: str
    err: str


def errors(err: str) -> str:
    """stderr less the one line naming the command's paths (there is exactly one)."""
    notes = [ln for ln in err.splitlines() if re.match(r"ofsted \w+: data dir ", ln)]
    assert len(notes) == 1, err
    return "".join(ln for ln in err.splitlines(keepends=True) if not re.match(r"ofsted \w+: data dir ", ln))


def read(capsys) -> Captured:
    """stdout and stderr, less the one line each command prints on stderr naming its paths."""
    out, err = capsys.readouterr()
    return Captured(out, errors(err) if err else err)


def sql(capsys, warehouse: Path, *args: str) -> tuple[int, str, str]:
    rc = main(["sql", "--warehouse", str(warehouse), *args])
    out, err = read(capsys)
    return rc, out, err


def duck(warehouse: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("set search_path = 'marts'")
        return con.execute(query).fetchall()
    finally:
        con.close()


# --- output formats ---------------------------------------------------------------------------

def test_table_output_is_aligned_with_numbers_right_and_null_shown(capsys, warehouse):
    rc, out, err = sql(capsys, warehouse, """
        select authority_name, count(*) as inspections, sum(priority_action_count) as pa,
               max(previous_inspection_key) as prev
        from fct_inspections join dim_authorities using (authority_key)
        group by all order by inspections desc, authority_name""")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split(" | ")[0].strip() == "authority_name"
    assert set(lines[1]) <= {"-", "+"}
    body = lines[2:-1]
    assert lines[-1] == f"({len(body)} rows)"
    assert len(body) == 3  # the authorities inspected
    # every row has its separators in the same columns
    bars = {tuple(i for i, ch in enumerate(line) if ch == "|") for line in lines[:1] + body}
    assert len(bars) == 1
    dorset = next(line for line in body if line.startswith("Dorset "))
    cells = dorset.split(" | ")
    width = len(lines[0].split(" | ")[1])
    assert cells[1] == "2".rjust(width)  # right-aligned count
    kingston = next(line for line in body if line.startswith("Kingston"))
    assert kingston.split(" | ")[-1].strip() == "NULL"


def test_csv_output_matches_duckdb(capsys, warehouse):
    q = "select inspection_key, letter_date, has_priority_action, previous_inspection_key " \
        "from fct_inspections order by inspection_key"
    rc, out, err = sql(capsys, warehouse, "--format", "csv", q)
    assert rc == 0 and err == ""
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["inspection_key", "letter_date", "has_priority_action", "previous_inspection_key"]
    expected = duck(warehouse, q)
    assert len(rows) - 1 == len(expected) == len(INSPECTIONS)
    for got, exp in zip(rows[1:], expected, strict=True):
        assert got[0] == exp[0]
        assert got[1] == exp[1].isoformat()
        assert got[2] == ("true" if exp[2] else "false")
        assert got[3] == (exp[3] or "")


def test_json_output_is_records_with_iso_dates_and_nulls(capsys, warehouse):
    q = "select inspection_key, inspection_start_date, priority_action_count, previous_inspection_key " \
        "from fct_inspections order by inspection_key"
    rc, out, err = sql(capsys, warehouse, "--format", "json", q)
    assert rc == 0 and err == ""
    records = json.loads(out)
    assert [r["inspection_key"] for r in records] == [r[0] for r in duck(warehouse, q)]
    first = records[0]
    assert first["inspection_start_date"] == INSPECTIONS[0][1].isoformat()
    assert first["previous_inspection_key"] is None
    assert isinstance(first["priority_action_count"], int)
    assert json.loads(sql(capsys, warehouse, "--format", "json", "select 1 where false")[1]) == []


def test_sql_from_file_runs_the_last_statement(capsys, warehouse, tmp_path):
    f = tmp_path / "q.sql"
    f.write_text("-- themes used\nset search_path = 'marts';\n"
                 "select theme_name, count(*) as n from bridge_findings_themes "
                 "join dim_themes using (theme_key) group by 1 order by 1;\n")
    rc, out, err = sql(capsys, warehouse, "-f", str(f), "--format", "csv")
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["theme_name", "n"]
    expected = duck(warehouse, "select theme_name, count(*) from marts.bridge_findings_themes "
                               "join marts.dim_themes using (theme_key) group by 1 order by 1")
    assert [(r[0], int(r[1])) for r in rows[1:]] == expected


def test_sql_from_stdin(warehouse):
    p = subprocess.run([sys.executable, "-m", "ingest.cli", "sql", "--warehouse", str(warehouse), "-f", "-",
                        "--format", "csv"], input="select count(*) as n from dim_themes;\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["n", "4"]


def test_marts_are_on_the_search_path(capsys, warehouse):
    rc, out, _ = sql(capsys, warehouse, "--format", "csv", "select count(*) as n from fct_findings")
    total = sum(len(i[4]) for i in INSPECTIONS)
    assert rc == 0 and out.splitlines() == ["n", str(total)]


# --- errors: one line, exit 1, never a traceback ----------------------------------------------

@pytest.mark.parametrize(("query", "start"), [
    ("selec * from fct_inspections", "ofsted sql: error: Parser Error: syntax error at or near \"selec\""),
    ("select * from no_such_table", "ofsted sql: error: Catalog Error: Table with name no_such_table"),
    ("select no_such_column from fct_inspections", "ofsted sql: error: Binder Error:"),
    ("select 1/0::integer + 'x'", "ofsted sql: error: Conversion Error:"),
])
def test_bad_sql_gives_duckdbs_first_line(capsys, warehouse, query, start):
    rc, out, err = sql(capsys, warehouse, query)
    assert rc == 1 and out == ""
    assert err.startswith(start), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_warehouse(capsys, tmp_path):
    missing = tmp_path / "nowhere" / "ofsted.duckdb"
    rc, out, err = sql(capsys, missing, "select 1")
    assert rc == 1 and out == ""
    assert err == f"ofsted sql: error: no published warehouse at {missing}; run `make run` first\n"
    rc = main(["export", "--warehouse", str(missing), str(tmp_path / "out")])
    assert rc == 1
    assert read(capsys).err == (
        f"ofsted export: error: no published warehouse at {missing}; run `make run` first\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [[], ["   "], ["select 1", "-f", "x.sql"], ["-f", "no/such/file.sql"]])
def test_bad_arguments(capsys, warehouse, args):
    rc, out, err = sql(capsys, warehouse, *args)
    assert rc == 1 and out == ""
    assert err.startswith("ofsted sql: error: ") and err.count("\n") == 1


def test_cli_entry_point_prints_one_line_not_a_traceback(warehouse):
    p = subprocess.run([sys.executable, "-m", "ingest.cli", "sql", "--warehouse", str(warehouse),
                        "select * from fct_inspection"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == ""
    assert errors(p.stderr).startswith("ofsted sql: error: Catalog Error: Table with name fct_inspection")
    assert errors(p.stderr).count("\n") == 1


# --- nothing but the warehouse: external access denied, read-only, config locked -------------

@pytest.mark.parametrize(("template", "expected"), [
    ("copy fct_inspections to '{out}'", "Permission Error"),
    ("copy (select 1) to '{out}' (format parquet)", "Permission Error"),
    ("select * from read_csv('{secret}')", "Permission Error"),
    ("select * from read_text('{secret}')", "Permission Error"),
    ("select * from '{secret}'", "Error"),
    ("select * from glob('{dir}/*')", "Permission Error"),
    ("attach '{other}' as other", "Permission Error"),
    ("install httpfs", "Permission Error"),
    ("load httpfs", "Permission Error"),
    ("export database '{dir}/dump'", "Permission Error"),
    ("set enable_external_access = true", "the configuration has been locked"),
    ("set lock_configuration = false", "the configuration has been locked"),
    ("reset enable_external_access", "the configuration has been locked"),
    ("create table t as select 1", "read-only mode"),
    ("delete from fct_inspections", "read-only mode"),
])
def test_external_access_and_writes_are_denied(capsys, warehouse, tmp_path, template, expected):
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    out_file = tmp_path / "leak.csv"
    q = template.format(out=out_file, secret=secret, dir=tmp_path, other=other)
    rc, out, err = sql(capsys, warehouse, q)
    assert rc == 1, out
    assert err.startswith("ofsted sql: error: ") and expected in err and err.count("\n") == 1
    assert "hunter2" not in out + err
    assert not out_file.exists() and not (tmp_path / "dump").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.duckdb", "secret.csv"]


def test_locked_connection_cannot_reach_a_file_through_a_sql_file(capsys, warehouse, tmp_path):
    f = tmp_path / "sneaky.sql"
    f.write_text(f"set enable_external_access = true;\nselect * from read_csv('{f}');\n")
    rc, _, err = sql(capsys, warehouse, "-f", str(f))
    assert rc == 1 and "the configuration has been locked" in err


# --- works while a night is running -----------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("create schema if not exists raw")
    con.execute("create or replace table raw.busy as select range as i from range(1000)")
    con.execute("begin")
    con.execute("insert into raw.busy select range from range(1000)")
    print("writing", flush=True)
    sys.stdin.readline()           # hold the write lock (and an open transaction) until told
    con.execute("commit")
    con.close()
""")


def test_sql_reads_the_published_warehouse_while_a_night_writes_the_work_one(tmp_path):
    published = make_marts_warehouse(tmp_path / "ofsted.duckdb")
    work = tmp_path / "ofsted_work.duckdb"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(work)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        # the work file really is locked by the writer...
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(work), read_only=True)
        # ...while the analysts' command reads the published file, in its own process
        p = subprocess.run([sys.executable, "-m", "ingest.cli", "sql", "--warehouse", str(published),
                            "--format", "csv", "select count(*) as n from fct_inspections"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines() == ["n", str(len(INSPECTIONS))]
    finally:
        writer.stdin.write("\n")
        writer.stdin.close()
        writer.wait(timeout=60)
    assert writer.returncode == 0


class SwapOnFirstWrite(io.StringIO):
    """Output that, when the first rows arrive, publishes a new warehouse over the one being read."""

    def __init__(self, swap):
        super().__init__()
        self.swap = swap
        self.swapped = False

    def write(self, s: str) -> int:
        if not self.swapped:
            self.swapped = True
            self.swap()
        return super().write(s)


def test_publish_swap_mid_query_keeps_the_reader_on_a_whole_file(tmp_path):
    published = make_marts_warehouse(tmp_path / "ofsted.duckdb")
    con = duckdb.connect(str(published))
    con.execute("create table marts.big as select range as i from range(60000)")
    con.close()
    work = make_marts_warehouse(tmp_path / "ofsted_work.duckdb")
    con = duckdb.connect(str(work))
    con.execute("create table marts.big as select range + 1000000 as i from range(10)")
    con.close()

    out = SwapOnFirstWrite(lambda: publish_warehouse(work, published))
    n = run_query(published, "select i from big order by i", "csv", out)
    assert out.swapped
    lines = out.getvalue().splitlines()
    # the query that was running finished on yesterday's file: every row, none of tonight's
    assert n == 60000 and lines[1] == "0" and lines[-1] == "59999"
    # a query that starts after the swap sees tonight's file
    again = io.StringIO()
    assert run_query(published, "select min(i) as lo, count(*) as n from big", "csv", again) == 1
    assert again.getvalue().splitlines() == ["lo,n", "1000000,10"]


def test_two_readers_at_once(tmp_path):
    published = make_marts_warehouse(tmp_path / "ofsted.duckdb")
    results: list[str] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            buf = io.StringIO()
            run_query(published, "select count(*) as n from fct_findings", "csv", buf)
            results.append(buf.getvalue())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(set(results)) == 1 and len(results) == 4


# --- export -----------------------------------------------------------------------------------

def test_export_writes_every_mart_as_parquet_and_csv(capsys, warehouse, tmp_path):
    out_dir = tmp_path / "export"
    rc = main(["export", "--warehouse", str(warehouse), str(out_dir), "--csv"])
    out, err = read(capsys)
    assert rc == 0, err
    tables = [r[0] for r in duck(warehouse, "select table_name from information_schema.tables "
                                            "where table_schema = 'marts' order by 1")]
    assert len(tables) == 7
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"{t}.parquet" for t in tables] + [f"{t}.csv" for t in tables]
        + [f"{t}.schema.json" for t in tables] + [".ofsted-export.json"])
    for t in tables:
        expected = duck(warehouse, f"select * from marts.{t} order by all")
        count = len(expected)
        assert any(line.split() == [t, f"{count:,}", "row" if count == 1 else "rows"]
                   for line in out.splitlines()), out
        back = duck(warehouse, f"select * from read_parquet('{out_dir / (t + '.parquet')}') order by all")
        assert back == expected
        with (out_dir / f"{t}.csv").open(newline="") as f:
            csv_rows = list(csv.DictReader(f))
        assert len(csv_rows) == count
    with (out_dir / "dim_authorities.csv").open(newline="") as f:
        dorset = next(r for r in csv.DictReader(f) if r["authority_name"] == "Dorset")
    assert json.loads(dorset["current_authority_names"]) == ["Dorset"]  # lists as JSON text
    assert out.splitlines()[-1] == f"wrote 7 tables as Parquet and CSV to {out_dir.resolve()}"
    schema = pq.read_schema(out_dir / "fct_inspections.parquet")
    assert str(schema.field("letter_date").type) == "date32[day]"


def test_export_again_replaces_files_and_leaves_no_temp_files(warehouse, tmp_path):
    out_dir = tmp_path / "export"
    out_dir.mkdir()
    first = export_marts(warehouse, out_dir)
    second = export_marts(warehouse, out_dir)
    assert [(r["table"], r["rows"]) for r in first] == [(r["table"], r["rows"]) for r in second]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"{r['table']}.parquet" for r in first] + [".ofsted-export.json"])
    assert pq.read_table(out_dir / "fct_findings.parquet").num_rows == sum(len(i[4]) for i in INSPECTIONS)


def test_export_of_a_warehouse_without_marts(capsys, tmp_path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    rc = main(["export", "--warehouse", str(empty), str(tmp_path / "out")])
    assert rc == 1
    assert read(capsys).err.startswith("ofsted export: error: no tables in schema marts")


# --- against a real build (load the letters, dbt build, publish) -----------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    return real_warehouse(tmp_path_factory).published_warehouse


@pytest.mark.slow
@pytest.mark.parametrize(("question", "query"), WORKED_QUESTIONS,
                         ids=[f"q{i}" for i in range(1, len(WORKED_QUESTIONS) + 1)])
def test_worked_questions_answer_from_the_real_marts(capsys, real, question, query):
    rc, out, err = sql(capsys, real, "--format", "json", query)
    assert rc == 0, err
    records = json.loads(out)
    con = duckdb.connect(str(real), read_only=True)
    try:
        con.execute("set search_path = 'marts'")
        cur = con.execute(query)
        columns = [d[0] for d in cur.description]
        expected = cur.fetchall()
    finally:
        con.close()
    assert len(records) == len(expected) > 0
    assert list(records[0]) == columns
    assert [tuple(r.values()) for r in records] == [
        tuple(v.isoformat() if hasattr(v, "isoformat") else v for v in row) for row in expected]


@pytest.mark.slow
def test_export_of_the_real_marts(capsys, real, tmp_path):
    rc = main(["export", "--warehouse", str(real), str(tmp_path), "--csv"])
    out, err = read(capsys)
    assert rc == 0, err
    counts = dict(duck(real, "select table_name, estimated_size from duckdb_tables() "
                             "where schema_name = 'marts'"))
    # every mart dbt builds (the manifest's list, which mart_volumes guards too) is exported
    from expectations.mart_volumes import project_marts  # GX: not paid at collection

    marts = project_marts()
    assert sorted(counts) == sorted(name.split(".", 1)[1] for name in marts)
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == sorted(f"{t}.parquet" for t in counts)
    for table in counts:
        [(rows,)] = duck(real, f"select count(*) from marts.{table}")
        assert rows > 0 or marts[f"marts.{table}"], table  # only a may_be_empty mart may be empty
        assert pq.read_table(tmp_path / f"{table}.parquet").num_rows == rows
        assert re.search(rf"^{table}\s+{rows:,} rows?$", out, re.M), out
        with (tmp_path / f"{table}.csv").open(newline="") as f:
            assert sum(1 for _ in csv.DictReader(f)) == rows
        parquet = tmp_path / f"{table}.parquet"
        assert duck(real, f"select * from read_parquet('{parquet}') order by all") == duck(
            real, f"select * from marts.{table} order by all")


def test_table_output_stops_at_a_readable_size_csv_does_not(capsys, warehouse):
    rc, out, _ = sql(capsys, warehouse, "select range as i from range(10005)")
    lines = out.splitlines()
    assert rc == 0 and lines[-1].startswith("(first 10,000 rows shown; add a LIMIT")
    assert lines[2].strip() == "0" and lines[-2].strip() == "9999" and len(lines) == 2 + 10_000 + 1
    rc, out, _ = sql(capsys, warehouse, "--format", "csv", "select range as i from range(10005)")
    assert out.splitlines()[1:] == [str(i) for i in range(10005)]


def test_a_warehouse_held_open_by_a_writer_gives_one_clear_line(tmp_path):
    held = make_marts_warehouse(tmp_path / "held.duckdb")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(held)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        p = subprocess.run([sys.executable, "-m", "ingest.cli", "sql", "--warehouse", str(held), "select 1"],
                           capture_output=True, text=True, timeout=60)
    finally:
        writer.stdin.write("\n")
        writer.stdin.close()
        writer.wait(timeout=60)
    assert p.returncode == 1 and p.stdout == "" and errors(p.stderr).count("\n") == 1
    assert errors(p.stderr).startswith("ofsted sql: error: IO Error: Could not set lock on file")
    assert "read the published warehouse" in errors(p.stderr)


def test_export_into_a_file_path_is_one_clear_line(capsys, warehouse, tmp_path):
    not_a_dir = tmp_path / "taken"
    not_a_dir.write_text("a file, not a folder")
    rc = main(["export", "--warehouse", str(warehouse), str(not_a_dir)])
    err = read(capsys).err
    assert rc == 1 and err.startswith("ofsted export: error: ") and err.count("\n") == 1
    assert err == f"ofsted export: error: {not_a_dir} is a file, not a folder to export into\n"


def test_every_kind_of_value_in_each_format(capsys, warehouse):
    q = ("select 3.25::decimal(5,2) as d, 'nan'::double as nan, [1, 2] as l, {'a': 'x'} as s, "
         "timestamptz '2010-06-17 09:30:00+00' as ts, '\\xAB'::blob as b, true as t, null::int as n, "
         "'two\nlines' as txt")
    rc, out, _ = sql(capsys, warehouse, "--format", "json", q)
    assert rc == 0
    assert json.loads(out) == [{"d": 3.25, "nan": None, "l": [1, 2], "s": {"a": "x"},
                                "ts": "2010-06-17T09:30:00+00:00", "b": "\\xab", "t": True, "n": None,
                                "txt": "two\nlines"}]
    rc, out, _ = sql(capsys, warehouse, "--format", "csv", q)
    assert list(csv.reader(io.StringIO(out)))[1] == [
        "3.25", "NaN", "[1, 2]", '{"a": "x"}', "2010-06-17 09:30:00+00:00", "\\xab", "true", "", "two\nlines"]
    rc, out, _ = sql(capsys, warehouse, q)
    row = out.splitlines()[2]
    assert [c.strip() for c in row.split(" | ")] == [
        "3.25", "NaN", "[1, 2]", '{"a": "x"}', "2010-06-17 09:30:00+00:00", "\\xab", "true", "NULL",
        "two\\nlines"]


# --- bounds: time, memory, no spill folder, one statement ------------------------------------

def cli(warehouse: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """`ofsted sql` in its own process (the address-space cap and the timer are per process)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("OFSTED_")} | env
    return subprocess.run([sys.executable, "-m", "ingest.cli", "sql", "--warehouse", str(warehouse), *args],
                          capture_output=True, text=True, timeout=timeout, env=full)


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_a_query_past_the_timeout_stops_with_one_line(warehouse, fmt):
    # an aggregate that would run for hours, and a result streamed for ever
    q = "select count(*) from range(1e12::bigint)" if fmt == "table" else "select * from range(1e12::bigint)"
    p = cli(warehouse, "--format", fmt, q, OFSTED_SQL_TIMEOUT_S="1", timeout=60)
    assert p.returncode == 1
    assert errors(p.stderr) == ("ofsted sql: error: query stopped after 1 s "
                                "(the limit is OFSTED_SQL_TIMEOUT_S)\n")


@pytest.mark.parametrize("query", [
    "select len(range(1000000000))",          # one 8 GB list: past the process's address-space cap
    "select list(range) from range(1000000000)",  # built up in DuckDB's buffer pool: its memory_limit
])
def test_a_billion_element_list_hits_the_memory_limit_with_one_line(warehouse, query):
    p = cli(warehouse, query, OFSTED_SQL_MEMORY_LIMIT="512MB", OFSTED_SQL_TIMEOUT_S="60")
    assert p.returncode == 1 and p.stdout == ""
    assert errors(p.stderr).startswith("ofsted sql: error: Out of Memory Error: "), errors(p.stderr)
    assert errors(p.stderr).count("\n") == 1


def test_no_spill_folder_a_query_could_write_into(tmp_path):
    wh = make_marts_warehouse(tmp_path / "ofsted.duckdb")
    spill = tmp_path / "ofsted.duckdb.tmp"
    spill.mkdir()  # where DuckDB used to spill (and then let COPY TO write)
    p = cli(wh, f"copy (select 42 as answer) to '{spill}/leak.csv'")
    assert p.returncode == 1 and "Permission Error" in errors(p.stderr) and errors(p.stderr).count("\n") == 1
    assert list(spill.iterdir()) == []
    # a sort bigger than the memory limit fails in memory; it never creates a folder to spill to
    spill.rmdir()
    p = cli(wh, "select range from range(20000000) order by random() limit 1",
            OFSTED_SQL_MEMORY_LIMIT="64MB")
    assert p.returncode in (0, 1) and errors(p.stderr).count("\n") <= 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ofsted.duckdb"]
    assert cli(wh, "--format", "csv", "select current_setting('temp_directory') as t").stdout == 't\n""\n'


def test_one_statement_per_call_unless_from_a_file(capsys, warehouse, tmp_path):
    rc, out, err = sql(capsys, warehouse, "select 1; select 2")
    assert rc == 1 and out == ""
    assert err == ("ofsted sql: error: one statement per call (2 given): put a script in a file "
                   "and run it with -f FILE\n")
    f = tmp_path / "two.sql"
    f.write_text("select 1; select 2 as two;")
    rc, out, _ = sql(capsys, warehouse, "-f", str(f), "--format", "csv")
    assert rc == 0 and out.splitlines() == ["two", "2"]
    rc, out, _ = sql(capsys, warehouse, "--format", "csv", "select ';' as semi;")  # one statement
    assert rc == 0 and out.splitlines() == ["semi", ";"]


# --- widths and markdown ----------------------------------------------------------------------

LONG = "The threshold guidance is not consistently applied by all partner agencies across the county."


def test_long_cells_cut_at_60_by_default_whole_for_one_column_and_with_max_width(capsys, warehouse):
    q = f"select 1 as n, '{LONG}' as finding"
    _, out, _ = sql(capsys, warehouse, q)
    assert out.splitlines()[2].split(" | ")[1] == LONG[:59] + "…"
    _, out, _ = sql(capsys, warehouse, f"select '{LONG}' as finding")
    assert out.splitlines()[2] == LONG
    _, out, _ = sql(capsys, warehouse, "--max-width", "0", q)
    assert out.splitlines()[2].split(" | ")[1] == LONG
    _, out, _ = sql(capsys, warehouse, "--max-width", "20", q)
    assert out.splitlines()[2].split(" | ")[1] == LONG[:19] + "…"


def test_wrap_puts_a_long_cell_on_several_lines(capsys, warehouse):
    rc, out, _ = sql(capsys, warehouse, "--wrap", "--max-width", "30",
                     f"select 7 as n, '{LONG}' as finding, 'x' as y")
    lines = out.splitlines()
    assert rc == 0 and lines[-1] == "(1 row)"
    body = lines[2:-1]
    assert len(body) == 4
    cells = [[c.strip() for c in b.split("|")] for b in body]
    assert cells[0][0] == "7" and all(c[0] == "" for c in cells[1:])
    assert " ".join(c[1] for c in cells) == LONG
    assert all(len(c[1]) <= 30 for c in cells)
    assert [c[2] for c in cells] == ["x", "", "", ""]


def test_markdown_format(capsys, warehouse):
    rc, out, _ = sql(capsys, warehouse, "--format", "markdown",
                     "select inspection_key, priority_action_count as pa, 'a|b\nc' as t, null as z "
                     "from fct_inspections order by inspection_key limit 2")
    assert rc == 0
    assert out.splitlines() == [
        "| inspection_key | pa | t | z |",
        "|---|---:|---|---|",
        "| insp001 | 0 | a\\|b<br>c | NULL |",
        "| insp002 | 2 | a\\|b<br>c | NULL |",
    ]


# --- OFSTED_EXTERNAL_DIR: the analyst's own files as catalog ext --------------------------------

@pytest.fixture(autouse=True)
def _own_data_dir(monkeypatch, tmp_path):
    """Each test's data directory (where the ext cache goes) is its own, never the checkout's."""
    monkeypatch.setenv("OFSTED_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def ext_dir(tmp_path) -> Path:
    d = tmp_path / "mine"
    d.mkdir()
    (d / "DfE LA codes.csv").write_text(
        'dfe_la_code,authority,pupils\n"835",Dorset,64000\n332,Dudley,48000\n')
    duckdb.sql("select 'E10000009' as gss_code, 1.5::double as score").to_parquet(str(d / "scores.parquet"))
    (d / "garbage.parquet").write_bytes(b"\x00\x01 not parquet at all" * 10)
    (d / "huge.csv").write_text("a\n" + "1\n" * 600_000)
    (d / "link.csv").symlink_to(tmp_path / "secret.csv")
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    os.mkfifo(d / "pipe.csv")
    (d / "notes.txt").write_text("not a table")
    return d


def test_external_files_become_ext_tables_and_bad_ones_are_one_line_each(monkeypatch, capsys, warehouse,
                                                                          ext_dir):
    monkeypatch.setenv("OFSTED_EXTERNAL_DIR", str(ext_dir))
    monkeypatch.setenv("OFSTED_EXTERNAL_MAX_FILE_BYTES", "1MB")
    rc, out, err = sql(capsys, warehouse, "--format", "json",
                       "select a.authority_name, c.dfe_la_code, c.pupils, s.score "
                       "from dim_authorities a join ext.dfe_la_codes c using (dfe_la_code) "
                       "left join ext.scores s using (gss_code) order by 1")
    assert rc == 0, err
    assert json.loads(out) == [{"authority_name": "Dorset", "dfe_la_code": 835, "pupils": 64000,
                                "score": 1.5},
                               {"authority_name": "Dudley", "dfe_la_code": 332, "pupils": 48000,
                                "score": None}]
    warnings = sorted(err.splitlines())
    assert len(warnings) == 4, err
    assert all(w.startswith("ofsted sql: warning: ext file ") for w in warnings)
    named = {w.split()[5]: w for w in warnings}
    assert set(named) == {"garbage.parquet", "huge.csv", "link.csv", "pipe.csv"}
    assert "over the limit of 1000000 bytes (OFSTED_EXTERNAL_MAX_FILE_BYTES)" in named["huge.csv"]
    assert "symbolic link" in named["link.csv"] and "not a regular file" in named["pipe.csv"]
    assert "hunter2" not in out + err


def test_queries_still_read_and_write_no_file_in_the_external_dir(monkeypatch, capsys, warehouse, ext_dir):
    monkeypatch.setenv("OFSTED_EXTERNAL_DIR", str(ext_dir))
    before = sorted(p.name for p in ext_dir.iterdir())
    for q in (f"copy (select 1) to '{ext_dir}/out.csv'",
              f"select * from read_csv('{ext_dir}/DfE LA codes.csv')",
              f"attach '{ext_dir}/new.duckdb' as x2"):
        rc, _, err = sql(capsys, warehouse, q)
        assert rc == 1, q
        assert err.splitlines()[-1].startswith("ofsted sql: error: "), err
    assert sorted(p.name for p in ext_dir.iterdir()) == before


def test_too_many_external_files_loads_the_first_and_says_so(monkeypatch, capsys, warehouse, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(5):
        (d / f"t{i}.csv").write_text(f"i\n{i}\n")
    monkeypatch.setenv("OFSTED_EXTERNAL_DIR", str(d))
    monkeypatch.setenv("OFSTED_EXTERNAL_MAX_FILES", "3")
    rc, out, err = sql(capsys, warehouse, "--format", "csv",
                       "select table_name from information_schema.tables "
                       "where table_catalog = 'ext' order by 1")
    assert rc == 0 and out.splitlines() == ["table_name", "t0", "t1", "t2"]
    assert err == "ofsted sql: warning: 2 files in " + str(d) + \
        " not loaded (OFSTED_EXTERNAL_MAX_FILES is 3), first: t3.csv\n"


def test_export_csv_keeps_codes_as_text_and_says_each_columns_type(warehouse, tmp_path):
    import pandas as pd

    export_marts(warehouse, tmp_path, csv_too=True)
    raw = (tmp_path / "dim_authorities.csv").read_text().splitlines()
    assert raw[1].startswith('1,"E10000009","835","Dorset"')  # text quoted, numbers not
    schema = json.loads((tmp_path / "dim_authorities.schema.json").read_text())
    types = {c["name"]: c["type"] for c in schema["columns"]}
    assert types["dfe_la_code"] == "VARCHAR" and types["authority_key"] == "INTEGER"
    assert types["current_authority_names"] == "VARCHAR[]" and schema["rows"] == len(duck(
        warehouse, "select * from marts.dim_authorities"))
    dtypes = {c["name"]: "string" for c in schema["columns"] if c["csv_type"] == "VARCHAR"}
    df = pd.read_csv(tmp_path / "dim_authorities.csv", dtype=dtypes)
    assert sorted(df["dfe_la_code"]) == sorted(a[2] for a in AUTHORITIES)
    # Parquet is typed as in DuckDB
    assert str(pq.read_schema(tmp_path / "dim_authorities.parquet").field("dfe_la_code").type) == "string"


def test_export_removes_the_previous_exports_files_and_only_those(warehouse, tmp_path):
    out_dir = tmp_path / "export"
    out_dir.mkdir()
    (out_dir / "my_notes.csv").write_text("mine\n")  # not written by an export: kept
    (tmp_path / "outside.parquet").write_text("kept")
    export_marts(warehouse, out_dir, csv_too=True)
    assert (out_dir / "fct_findings.csv").exists()
    manifest = json.loads((out_dir / ".ofsted-export.json").read_text())
    assert manifest["files"]["fct_findings.csv"] == hashlib.sha256(
        (out_dir / "fct_findings.csv").read_bytes()).hexdigest()
    # the manifest tampered with: a file outside the folder, a user's file and a sub-folder listed
    # as if exported, and a file it did write changed since
    (out_dir / ".bashrc").write_text("the user's")
    (out_dir / "sub").mkdir()
    (out_dir / "fct_inspections.schema.json").write_text("edited by hand")
    manifest["files"].update({"../outside.parquet": "0" * 64, ".bashrc": "1" * 64, "sub": "2" * 64})
    (out_dir / ".ofsted-export.json").write_text(json.dumps(manifest))
    warnings: list[str] = []
    results = export_marts(warehouse, out_dir, warnings=warnings)  # Parquet only this time
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"{r['table']}.parquet" for r in results]
        + [".ofsted-export.json", "my_notes.csv", ".bashrc", "sub", "fct_inspections.schema.json"])
    assert (tmp_path / "outside.parquet").read_text() == "kept"
    assert (out_dir / ".bashrc").read_text() == "the user's"
    said = "\n".join(warnings)
    assert "'../outside.parquet', which is not a file name in this folder" in said
    assert "left .bashrc of an earlier export in place: it changed since" in said
    assert "left sub of an earlier export in place: refusing to replace" not in said  # one line each:
    assert "left sub of an earlier export in place: it is a directory, not a regular file" in said
    assert "left fct_inspections.schema.json of an earlier export in place: it changed since" in said


def test_export_refuses_before_writing_when_a_name_it_would_write_is_not_its_own(capsys, warehouse,
                                                                                  tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not parquet")
    for planted in ("user file", "symlink", "fifo", "folder"):
        out_dir = tmp_path / planted.replace(" ", "_")
        out_dir.mkdir()
        target = out_dir / "fct_findings.csv"
        if planted == "user file":
            target.write_text("an analyst's own findings\n")
        elif planted == "symlink":
            target.symlink_to(outside)
        elif planted == "fifo":
            os.mkfifo(target)
        else:
            target.mkdir()
        before = sorted(p.name for p in out_dir.iterdir())
        rc = main(["export", str(out_dir), "--csv", "--warehouse", str(warehouse)])
        _, err = read(capsys)
        assert rc == 1
        assert len(err.splitlines()) == 1
        assert err.startswith(f"ofsted export: error: refusing to export into {out_dir}: "
                              "fct_findings.csv is there and it ")
        assert sorted(p.name for p in out_dir.iterdir()) == before, planted  # nothing written at all
    assert outside.read_text() == "not parquet"
    assert (tmp_path / "user_file" / "fct_findings.csv").read_text() == "an analyst's own findings\n"


def test_export_writes_through_no_link_planted_at_its_temporary_names(warehouse, tmp_path):
    """The temporary names are new files (O_EXCL|O_NOFOLLOW) under unpredictable names: a link at
    the names the old export used (`.<file>.<pid>.tmp`) is never written through."""
    out_dir = tmp_path / "export"
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("fct_findings.parquet", "fct_findings.csv", ".ofsted-export.json"):
        (out_dir / f".{name}.{os.getpid()}.tmp").symlink_to(victim)
    export_marts(warehouse, out_dir, csv_too=True)
    assert victim.read_text() == "precious"
    assert pq.read_table(out_dir / "fct_findings.parquet").num_rows == sum(len(i[4]) for i in INSPECTIONS)


def test_export_excel_writes_csv_with_a_byte_order_mark(capsys, warehouse, tmp_path):
    rc = main(["export", str(tmp_path / "x"), "--excel", "--warehouse", str(warehouse)])
    out, err = read(capsys)
    assert rc == 0, err
    raw = (tmp_path / "x" / "dim_authorities.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf\"authority_key\"")
    assert "Parquet and CSV (with a byte-order mark, for Excel)" in out
    import pandas as pd

    assert list(pd.read_csv(tmp_path / "x" / "dim_authorities.csv", encoding="utf-8-sig").columns)[0] \
        == "authority_key"


def test_an_exported_csv_read_back_as_an_ext_table_keeps_its_types(monkeypatch, capsys, warehouse, tmp_path):
    export_marts(warehouse, tmp_path / "mine", csv_too=True)
    for parquet in (tmp_path / "mine").glob("*.parquet"):  # else each name is there twice
        parquet.unlink()
    monkeypatch.setenv("OFSTED_EXTERNAL_DIR", str(tmp_path / "mine"))
    rc, out, err = sql(capsys, warehouse, "--format", "csv",
                       "select column_name, data_type from information_schema.columns "
                       "where table_catalog = 'ext' and table_name = 'dim_authorities' "
                       "and column_name in ('authority_key', 'dfe_la_code', 'valid_from') order by 1")
    assert rc == 0 and err == ""
    assert out.splitlines()[1:] == ["authority_key,INTEGER", "dfe_la_code,VARCHAR", "valid_from,DATE"]


def test_a_huge_sparse_sidecar_is_named_in_one_line_and_every_query_still_runs(monkeypatch, capsys, warehouse,
                                                                                tmp_path):
    d = tmp_path / "ext"
    d.mkdir()
    (d / "codes.csv").write_text('code\n"007"\n')
    with open(d / "codes.schema.json", "wb") as f:  # 3 GB of nothing: was read whole (MemoryError)
        f.truncate(3 * 2**30)
    monkeypatch.setenv("OFSTED_EXTERNAL_DIR", str(d))
    monkeypatch.setenv("OFSTED_SQL_MEMORY_LIMIT", "512MB")
    rc, out, err = sql(capsys, warehouse, "--format", "csv", "select code from ext.codes")
    assert rc == 0, err
    assert out.splitlines() == ["code", "007"]  # loaded, its types guessed: the sidecar is refused
    assert err.splitlines() == ["ofsted sql: warning: ext file codes.schema.json ignored (file too large: "
                                "3221225472 bytes, over the limit of 4194304 bytes (the sidecar cap)): "
                                "codes.csv's types are guessed"]


def test_loading_the_folder_is_under_the_sql_time_limit(monkeypatch, capsys, warehouse, tmp_path):
    d = tmp_path / "ext"
    d.mkdir()
    (d / "a_small.csv").write_text("x\n1\n")
    (d / "b_one_line.csv").write_text("c\n" + "y" * 60_000_000 + "\n")  # one 60 MB line: slow to sniff
    (d / "c_after.csv").write_text("x\n2\n")
    monkeypatch.setenv("OFSTED_EXTERNAL_DIR", str(d))
    monkeypatch.setenv("OFSTED_SQL_TIMEOUT_S", "1")
    rc, out, err = sql(capsys, warehouse, "--format", "csv", "select x from ext.a_small")
    assert rc == 0 and out.splitlines() == ["x", "1"], err
    lines = err.splitlines()
    assert lines[0] == "ofsted sql: warning: ext file b_one_line.csv skipped: loading it passed " \
                       "OFSTED_SQL_TIMEOUT_S (1 s)"
    assert lines[1:] == ["ofsted sql: warning: 1 ext files not loaded: loading the folder passed "
                         "OFSTED_SQL_TIMEOUT_S (1 s), first: c_after.csv"]


def test_the_loaded_folder_is_cached_until_a_file_changes(monkeypatch, capsys, warehouse, tmp_path):
    d = tmp_path / "ext"
    d.mkdir()
    f = d / "t.csv"
    f.write_text("v\n1\n")
    monkeypatch.setenv("OFSTED_EXTERNAL_DIR", str(d))
    cache = tmp_path / "data" / "cache"
    assert sql(capsys, warehouse, "--format", "csv", "select v from ext.t")[1].splitlines() == ["v", "1"]
    assert len(list(cache.glob("ext-*.duckdb"))) == 1
    # the same size and mtime: the next query reads the cache, not the folder
    st = f.stat()
    f.write_text("v\n2\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sql(capsys, warehouse, "--format", "csv", "select v from ext.t")[1].splitlines() == ["v", "1"]
    # a new mtime: loaded again, and the old cache goes once it is a minute old
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert sql(capsys, warehouse, "--format", "csv", "select v from ext.t")[1].splitlines() == ["v", "2"]
    # a link planted at the cache's name is never attached or written through
    for old in cache.glob("ext-*"):
        old.unlink()
    victim = tmp_path / "victim.duckdb"
    make_marts_warehouse(victim)
    key_names = []
    assert sql(capsys, warehouse, "--format", "csv", "select v from ext.t")[1].splitlines() == ["v", "2"]
    key_names = [p.name for p in cache.glob("ext-*.duckdb")]
    for name in key_names:
        (cache / name).unlink()
        (cache / name).symlink_to(victim)
    before = victim.read_bytes()
    rc, out, err = sql(capsys, warehouse, "--format", "csv", "select v from ext.t")
    assert rc == 0 and out.splitlines() == ["v", "2"], err
    assert victim.read_bytes() == before and (cache / key_names[0]).is_symlink()


def test_sql_file_that_is_a_fifo_or_not_a_file_is_one_line_and_never_blocks(capsys, warehouse, tmp_path):
    fifo = tmp_path / "q.sql"
    os.mkfifo(fifo)
    rc, _, err = sql(capsys, warehouse, "-f", str(fifo))  # used to block for ever
    assert rc == 1 and err == f"ofsted sql: error: cannot read {fifo}: it is a FIFO (named pipe), not a " \
                              "regular file\n"
    rc, _, err = sql(capsys, warehouse, "-f", str(tmp_path))
    assert rc == 1
    assert err == f"ofsted sql: error: cannot read {tmp_path}: it is a directory, not a regular file\n"


def test_a_parse_error_never_echoes_a_file_others_cannot_read(capsys, warehouse, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hashhashhash:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    rc, _, err = sql(capsys, warehouse, "-f", str(secret))
    assert rc == 1 and "root" not in err and "hashhash" not in err
    assert err.startswith("ofsted sql: error: Parser Error: syntax error") and len(err.splitlines()) == 1
    # a readable SQL file of one's own still gets DuckDB's whole message
    mine = tmp_path / "mine.sql"
    mine.write_text("selec 1")
    mine.chmod(0o644)
    rc, _, err = sql(capsys, warehouse, "-f", str(mine))
    assert rc == 1 and '"selec"' in err


def test_control_characters_from_data_never_reach_the_terminal(capsys, warehouse):
    q = "select 'a' || chr(27) || ']0;owned' || chr(7) || chr(27) || '[2J' || chr(8238) || 'b' as x"
    for fmt in ("table", "markdown"):
        rc, out, err = sql(capsys, warehouse, "--format", fmt, q)
        assert rc == 0, err
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "a\\x1b]0;owned\\x07\\x1b[2J\\u202eb" in out
    rc, out, _ = sql(capsys, warehouse, "--format", "json", q)  # data formats keep the value (JSON-escaped)
    assert json.loads(out) == [{"x": "a\x1b]0;owned\x07\x1b[2J\u202eb"}]
