"""`ofsted ...` entry points. Argument parsing only: each command calls one function.

Every command prints a clear one-line error (never a traceback: the full trace goes to the
log file, `OFSTED_LOG_FILE`) and exits non-zero on failure. `--data-dir DIR` (or
`OFSTED_DATA_DIR`) names the one directory a command works in; every command says on stderr
which paths it reads and writes. The commands that write there hold its lock (`ingest.lock`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

from ingest.settings import Settings, SettingsError, get_settings

#: command -> (paths it reads, paths it writes), as Settings fields; said on stderr at start.
PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "load": (("inbox_dir",), ("archive_dir", "work_warehouse")),
    "reparse": (("archive_dir",), ("work_warehouse",)),
    "build": (("work_warehouse",), ("work_warehouse",)),
    "run": (("inbox_dir",), ("archive_dir", "work_warehouse", "published_warehouse", "report_dir")),
    "rerun": (("work_warehouse",), ("work_warehouse", "published_warehouse", "report_dir")),
    "status": (("data_dir", "work_warehouse"), ()),
    "quarantine": (("work_warehouse",), ("work_warehouse",)),
    "release": (("work_warehouse",), ("work_warehouse",)),
    "sql": (("published_warehouse",), ()),
    "analysis": (("published_warehouse",), ()),
    "search": (("published_warehouse",), ()),
    "export": (("published_warehouse",), ()),
    "report": (("published_warehouse",), ("report_dir",)),
}
#: the commands that write in the data directory: they hold its lock while they run.
WRITERS = ("load", "reparse", "build", "run", "rerun", "quarantine", "release")
EXIT_BUSY = 3  # another writer holds the data directory
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # the reader of stdout went away, as a shell reports `cat`'s


def _stdout_reader_gone() -> bool:
    """stdout is a pipe whose reader has gone (`ofsted status | head -1`): told by poll(2), so a
    BrokenPipeError from anything else (a socket) is still an error."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.__stdout__.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poll.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


class Terminated(KeyboardInterrupt):
    """SIGTERM (a supervisor, `timeout`, `docker stop`, `kill`) in a command that writes in the
    data directory: it stops the command as ^C does (the night recorded as interrupted at its
    step, dbt's queries cancelled, the lock let go of) instead of ending the process where it
    stands, which left the night "running" until the next one started."""

    def __str__(self) -> str:
        return "SIGTERM"


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt(command: str) -> Iterator[None]:
    """For a writing command: SIGTERM raises `Terminated` for the block (main thread only)."""
    if command not in WRITERS or threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _settings(args: argparse.Namespace) -> Settings:
    data_dir = getattr(args, "data_dir", None)
    s = get_settings(os.path.abspath(data_dir) if data_dir else None)  # a relative flag: from the cwd
    over = {}
    if getattr(args, "inbox", None):
        over["inbox_dir"] = Path(args.inbox).resolve()
    if getattr(args, "warehouse", None):
        # for writers (load/reparse/build/run) --warehouse is the working copy they write;
        # for readers (sql/export) it is the published file they read.
        readers = ("sql", "analysis", "search", "export", "report")
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
    p = sub.add_parser("run", help="run the night once, now: the nightly DAG's steps, in this process")
    p.add_argument("--inbox", help="folder of letters (local source); default: settings")
    p.add_argument("--airflow", action="store_true",
                   help="run it through Airflow's dag.test (the DAG as Airflow builds it; slower)")


def _run_run(args) -> int:
    from orchestration.runner import cli_run

    settings = _settings(args)
    return cli_run(settings, airflow=args.airflow, trace=lambda what: log_trace(settings, what))


def _add_sql(sub) -> None:
    p = sub.add_parser("sql", help="query the published warehouse (read-only)")
    p.add_argument("query", nargs="?", help="SQL text")
    p.add_argument("-f", "--file", help="read the SQL from a file")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    _add_var_flag(p)
    _add_width_flags(p)


def _add_var_flag(p) -> None:
    p.add_argument("--var", action="append", metavar="NAME=VALUE",
                   help="set a parameter the SQL reads with getvariable('NAME') (repeatable)")


def _add_width_flags(p) -> None:
    p.add_argument("--max-width", type=int, metavar="N",
                   help="table format: cut cells at N characters (default 60; 0 = never; "
                        "a single column is never cut)")
    p.add_argument("--wrap", action="store_true",
                   help="table format: wrap long cells onto more lines instead of cutting them")


def _run_sql(args) -> int:
    from ingest.warehouse.query import cli_sql

    return cli_sql(_settings(args), query=args.query, file=args.file, fmt=args.format,
                   max_width=args.max_width, wrap=args.wrap, variables=args.var)


def _add_analysis(sub) -> None:
    p = sub.add_parser("analysis", help="run a worked analysis of dbt_project/analyses/ "
                                        "(no NAME: list them with their parameters)")
    p.add_argument("name", nargs="?", help="the analysis, e.g. predecessor_findings_of_todays_authorities")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    _add_var_flag(p)
    _add_width_flags(p)


def _run_analysis(args) -> int:
    from ingest.warehouse.analyses import cli_analysis

    return cli_analysis(_settings(args), args.name, variables=args.var, fmt=args.format,
                        max_width=args.max_width, wrap=args.wrap)


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="full-text search of the findings, best first (BM25, stemmed words; "
                                      "every word must match)")
    p.add_argument("words", help='what to look for, e.g. "threshold guidance" (findings with every word)')
    p.add_argument("--any", action="store_true", dest="any_word",
                   help="findings with any of the words, not every word")
    p.add_argument("--limit", type=int, default=20, help="at most this many findings (default 20)")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table",
                   help="table/markdown show rank, score, authority, date, category and text; "
                        "csv/json every column")
    _add_width_flags(p)


def _run_search(args) -> int:
    from ingest.warehouse.search import cli_search

    return cli_search(_settings(args), args.words, limit=args.limit, fmt=args.format,
                      max_width=args.max_width, wrap=args.wrap, any_word=args.any_word)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write every mart as Parquet (and CSV) for BI tools")
    p.add_argument("dir", help="output folder")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--csv", action="store_true", help="also write CSV")
    p.add_argument("--excel", action="store_true",
                   help="also write CSV with a UTF-8 byte-order mark (Excel on Windows reads it as written)")


def _run_export(args) -> int:
    from ingest.warehouse.export import cli_export

    return cli_export(_settings(args), out_dir=Path(args.dir), csv=args.csv, excel=args.excel)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write the static HTML report from the published warehouse")
    p.add_argument("--warehouse", help="DuckDB file to read; default: the published warehouse")
    p.add_argument("--out", help="output folder; default: settings report_dir")


def _run_report(args) -> int:
    from ingest.report.render import cli_report

    return cli_report(_settings(args), out_dir=Path(args.out).resolve() if args.out else None)


def _add_rerun(sub) -> None:
    sub.add_parser("rerun", help="after a fix: dbt build, both DQ checks, publish and report again "
                                 "on the letters already loaded (no fetching); recorded as a night")


def _run_rerun(args) -> int:
    from orchestration.runner import cli_rerun

    settings = _settings(args)
    return cli_rerun(settings, trace=lambda what: log_trace(settings, what))


def _add_status(sub) -> None:
    sub.add_parser("status", help="the last nights, what is quarantined, whether a night is running; "
                                  "exit 0 when the last night succeeded")


def _run_status(args) -> int:
    from ingest.controls import cli_status

    return cli_status(_settings(args))


def _add_quarantine(sub) -> None:
    for name, verb in (("quarantine", "take a document out of the warehouse and of later nights"),
                       ("release", "bring a quarantined document back")):
        p = sub.add_parser(name, help=f"{verb} (at the next build: `ofsted rerun` or the next night)")
        p.add_argument("document", metavar="SHA_OR_URI", help="its sha256 (or a unique prefix) or source URI")
        p.add_argument("--reason", required=True, help="why (kept in raw.quarantine with who and when)")


def _run_quarantine(args) -> int:
    from ingest.controls import cli_quarantine

    return cli_quarantine(_settings(args), args.document, args.reason, action=args.command)


COMMANDS = {
    "parse": (_add_parse, _run_parse),
    "load": (_add_load, _run_load),
    "reparse": (_add_reparse, _run_reparse),
    "build": (_add_build, _run_build),
    "run": (_add_run, _run_run),
    "sql": (_add_sql, _run_sql),
    "analysis": (_add_analysis, _run_analysis),
    "search": (_add_search, _run_search),
    "export": (_add_export, _run_export),
    "report": (_add_report, _run_report),
    "rerun": (_add_rerun, _run_rerun),
    "status": (_add_status, _run_status),
    "quarantine": (_add_quarantine, _run_quarantine),
    "release": (lambda sub: None, _run_quarantine),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ofsted", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    for name, p in sub.choices.items():
        if name in PATHS:
            p.add_argument("--data-dir", help="the data directory (work and published warehouse, archive, "
                                              "report, night history); default: OFSTED_DATA_DIR")
    return parser


def source_text(settings: Settings) -> str:
    """Where letters come from, as said to the user: the inbox folder, or the (redacted) index URL."""
    from ingest.redact import redact_url

    if settings.source == "http":
        return f"index {redact_url(settings.http_index_url or '(OFSTED_HTTP_INDEX_URL not set)')}"
    return f"inbox dir {settings.inbox_dir}"


def say_paths(command: str, settings: Settings) -> None:
    """One line on stderr: the paths this command reads and writes."""
    reads, writes = PATHS.get(command, ((), ()))
    parts = [f"data dir {settings.data_dir}"]
    parts += [f"reads {source_text(settings)}" if f == "inbox_dir" else f"reads {f.replace('_', ' ')} "
              f"{getattr(settings, f)}" for f in reads if f != "data_dir"]
    parts += [f"writes {f.replace('_', ' ')} {getattr(settings, f)}" for f in writes]
    print(f"ofsted {command}: " + "; ".join(parts), file=sys.stderr, flush=True)


def log_trace(settings: Settings | None, command: str) -> Path | None:
    """Append the current exception's full trace to the log file; its path, or None if unwritable."""
    from ingest.files import append_bytes
    from ingest.redact import redact

    path = settings.log_file if settings else get_settings().log_file
    try:
        entry = f"--- {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} pid {os.getpid()} " \
                f"ofsted {command}\n{traceback.format_exc()}\n"
        append_bytes(path, (redact(entry) or "").encode())
    except OSError:
        return None
    return path


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    run = COMMANDS[args.command][1]
    if args.command not in WRITERS:
        return run(args)
    from ingest.lock import data_dir_lock

    with data_dir_lock(settings, args.command, echo=lambda line: print(f"ofsted {args.command}: {line}",
                                                                         file=sys.stderr)):
        if args.command in ("run", "rerun", "build"):
            from ingest.warehouse.publish import clean_orphans

            for gone in clean_orphans(settings):
                what = "night" if gone.parent == settings.runs_dir else "publish"
                print(f"ofsted {args.command}: removed {gone} (left by an interrupted {what})",
                      file=sys.stderr)
        return run(args)


#: commands whose stdout is data (CSV, JSON, Markdown): escaped only where it is a terminal
DATA_OUTPUT = ("sql", "search", "parse")


def main(argv: list[str] | None = None) -> int:
    from ingest import redact

    redact.install(escape_stdout=False)  # URLs' user-info at once; the settings' secrets below
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = _settings(args)
        redact.install(settings, escape_stdout=args.command not in DATA_OUTPUT)
        if args.command in PATHS:
            say_paths(args.command, settings)
        with _sigterm_as_interrupt(args.command):
            return _dispatch(args, settings)
    except Terminated:
        print(f"ofsted {args.command}: stopped (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"ofsted {args.command}: interrupted", file=sys.stderr)
        return 130
    except SettingsError as exc:
        print(f"ofsted {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last line of defence: one line, never a traceback
        from ingest.files import UnsafeFile
        from ingest.lock import DataDirLocked

        if isinstance(exc, BrokenPipeError) and _stdout_reader_gone():
            return EXIT_BROKEN_PIPE  # nobody reads any more: stop quietly (entry() silences stdout)
        if isinstance(exc, DataDirLocked):
            print(f"ofsted {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_BUSY
        if isinstance(exc, UnsafeFile):  # a link, FIFO or folder planted at a name we use: one line
            print(f"ofsted {args.command}: error: {exc}", file=sys.stderr)
            return 1
        try:
            log = log_trace(settings, args.command)
        except Exception:  # noqa: BLE001 - the settings themselves may be what failed
            log = None
        where = f" (full trace in {log})" if log else ""
        line = type(exc).__name__
        if str(exc).strip():
            line = f"{line}: {exc}".strip().splitlines()[0]
        print(f"ofsted {args.command}: error: {line[:400]}{where}", file=sys.stderr)
        return 1


def entry() -> None:
    """The `ofsted` command (and `python -m ingest.cli`): `main`, then the process's end without
    the interpreter's last garbage collections over everything a run left in memory (dbt's
    manifest, GX's context): with `gc.freeze()` they skip it, and an `ofsted run` ends 0.1 s after
    its last line instead of 1.7 s. Exit handlers still run. Not in `main`, which tests call in
    their own long-lived process."""
    import gc

    code = main()
    broken = code == EXIT_BROKEN_PIPE
    if not broken:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            broken, code = True, code or EXIT_BROKEN_PIPE
    if broken:  # what stdout still holds would fail again at exit ("Exception ignored ...")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
