"""`ofsted ...` entry points. Argument parsing only: each command calls one function.

Every command prints a clear one-line error (never a traceback) and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingest.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings.from_env()
    over = {}
    if getattr(args, "inbox", None):
        over["inbox_dir"] = Path(args.inbox).resolve()
    if getattr(args, "warehouse", None):
        # for writers (load/reparse/build/run) --warehouse is the working copy they write;
        # for readers (sql/export) it is the published file they read.
        readers = ("sql", "search", "export", "report")
        key = "published_warehouse" if args.command in readers else "work_warehouse"
        over[key] = Path(args.warehouse).resolve()
    return s.with_overrides(**over)


# --- one function per command: each owned by the module it calls ---------------------------

def _add_parse(sub) -> None:
    p = sub.add_parser("parse", help="parse one letter (PDF or text) and print it as JSON")
    p.add_argument("file", help="a letter: .pdf or text")


def _run_parse(args) -> int:
    from ingest.letters.command import cli_parse

    return cli_parse(Path(args.file), _settings(args))


def _add_load(sub) -> None:
    p = sub.add_parser("load", help="fetch, archive, parse and load new letters into the raw tables")
    p.add_argument("--inbox", help="folder of letters to load (local source); default: settings")
    p.add_argument("--warehouse", help="DuckDB file to load into; default: the working warehouse")


def _run_load(args) -> int:
    from ingest.raw.commands import cli_load

    return cli_load(_settings(args))


def _add_reparse(sub) -> None:
    p = sub.add_parser("reparse", help="re-parse the archive into the raw tables (no fetching)")
    p.add_argument("--warehouse", help="DuckDB file to load into; default: the working warehouse")
    p.add_argument("--all", action="store_true",
                   help="re-parse every document, not only those of older parser versions")
    p.add_argument("--retry-rejected", action="store_true",
                   help="also retry documents this parser version rejected (after raising a limit, say)")


def _run_reparse(args) -> int:
    from ingest.raw.commands import cli_reparse

    return cli_reparse(_settings(args), everything=args.all, retry_rejected=args.retry_rejected)


def _add_build(sub) -> None:
    p = sub.add_parser("build", help="run `dbt build` on a warehouse's raw tables (no fetching)")
    p.add_argument("--warehouse", help="DuckDB file to build; default: the working warehouse")
    p.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    p.add_argument("--select", help="dbt selection (passed to --select)")


def _run_build(args) -> int:
    from ingest.warehouse.build import cli_build

    return cli_build(_settings(args), full_refresh=args.full_refresh, select=args.select)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run the nightly DAG once, in-process through Airflow")
    p.add_argument("--inbox", help="folder of letters (local source); default: settings")
    p.add_argument("--warehouse", help="working DuckDB file; default: settings")


def _run_run(args) -> int:
    from orchestration.runner import cli_run

    return cli_run(_settings(args))


def _add_sql(sub) -> None:
    p = sub.add_parser("sql", help="query the published warehouse (read-only)")
    p.add_argument("query", nargs="?", help="SQL text")
    p.add_argument("-f", "--file", help="read the SQL from a file")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    _add_width_flags(p)


def _add_width_flags(p) -> None:
    p.add_argument("--max-width", type=int, metavar="N",
                   help="table format: cut cells at N characters (default 60; 0 = never; "
                        "a single column is never cut)")
    p.add_argument("--wrap", action="store_true",
                   help="table format: wrap long cells onto more lines instead of cutting them")


def _run_sql(args) -> int:
    from ingest.warehouse.query import cli_sql

    return cli_sql(_settings(args), query=args.query, file=args.file, fmt=args.format,
                   max_width=args.max_width, wrap=args.wrap)


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="full-text search of the findings, best first (BM25, stemmed words)")
    p.add_argument("words", help='what to look for, e.g. "threshold guidance"')
    p.add_argument("--limit", type=int, default=20, help="at most this many findings (default 20)")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table",
                   help="table/markdown show rank, score, authority, date, category and text; "
                        "csv/json every column")
    _add_width_flags(p)


def _run_search(args) -> int:
    from ingest.warehouse.query import cli_search

    return cli_search(_settings(args), args.words, limit=args.limit, fmt=args.format,
                      max_width=args.max_width, wrap=args.wrap)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write every mart as Parquet (and CSV) for BI tools")
    p.add_argument("dir", help="output folder")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--csv", action="store_true", help="also write CSV")


def _run_export(args) -> int:
    from ingest.warehouse.export import cli_export

    return cli_export(_settings(args), out_dir=Path(args.dir), csv=args.csv)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write the static HTML report from the published warehouse")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--out", help="output folder; default: settings report_dir")


def _run_report(args) -> int:
    from ingest.report.render import cli_report

    return cli_report(_settings(args), out_dir=Path(args.out).resolve() if args.out else None)


COMMANDS = {
    "parse": (_add_parse, _run_parse),
    "load": (_add_load, _run_load),
    "reparse": (_add_reparse, _run_reparse),
    "build": (_add_build, _run_build),
    "run": (_add_run, _run_run),
    "sql": (_add_sql, _run_sql),
    "search": (_add_search, _run_search),
    "export": (_add_export, _run_export),
    "report": (_add_report, _run_report),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ofsted", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except KeyboardInterrupt:
        print("ofsted: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback
        print(f"ofsted {args.command}: error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
