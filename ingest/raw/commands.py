"""`ofsted load` and `ofsted reparse`: the raw pipeline as commands (argument handling and printing)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from ingest.raw.db import WarehouseLocked
from ingest.raw.pipeline import run_load, run_reparse
from ingest.settings import Settings
from ingest.sources import FetchConfigError, SourceUnavailable

# --- commands -------------------------------------------------------------------------------------------

_LABEL_WIDTH = 10


def format_document(d: dict[str, Any]) -> str:
    """One line of `ofsted load` output: outcome, source URI and the detail (reason, original...)."""
    detail = f"  ({d['detail']})" if d.get("detail") else ""
    return f"{d['outcome']:<{_LABEL_WIDTH}} {d['source_uri']}{detail}"


def format_summary(counts: dict[str, Any], warehouse: Path, verb: str = "loaded") -> str:
    parts = [f"{counts.get(k, 0)} {k}" for k in ("new", "unchanged", "duplicate", "rejected", "failed")]
    if counts.get("reparsed"):
        parts.insert(0, f"{counts['reparsed']} reparsed")
    return f"{verb} into {warehouse}: " + ", ".join(parts)


def format_report(counts: dict[str, Any], warehouse: Path, verb: str = "loaded") -> list[str]:
    """The lines `ofsted load` / `ofsted reparse` print: one per document that changed, then a summary."""
    lines = [format_document(d) for d in counts.get("documents", [])]
    return lines + [format_summary(counts, warehouse, verb)]


def _print_document(d: dict[str, Any]) -> None:
    print(format_document(d), flush=True)


def _run_command(name: str, fn: Callable[[], dict[str, Any]], settings: Settings) -> int:
    try:
        counts = fn()
    except SourceUnavailable as exc:  # what could be read was loaded (printed above); the night failed
        print(f"ofsted {name}: error: fetch failed: {exc}", file=sys.stderr)
        return 1
    except (WarehouseLocked, FetchConfigError) as exc:
        print(f"ofsted {name}: error: {exc}", file=sys.stderr)
        return 1
    except duckdb.Error as exc:
        msg = f"ofsted {name}: error: warehouse {settings.work_warehouse}: {exc}"
        print(msg.splitlines()[0], file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a permission: the OS's own words, and where
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ofsted {name}: error: {exc.strerror or exc}{where}".splitlines()[0], file=sys.stderr)
        return 1
    for line in format_report(counts, settings.work_warehouse, "loaded" if name == "load" else "re-parsed"):
        print(line)
    return 0


def cli_load(settings: Settings) -> int:
    """`ofsted load`: exit 0 when the run worked, even if some documents were rejected or failed."""
    return _run_command("load", lambda: run_load(settings, on_document=_print_document), settings)


def cli_reparse(settings: Settings, everything: bool = False, retry_rejected: bool = False) -> int:
    """`ofsted reparse [--all] [--retry-rejected]`: re-parse the archive into the raw tables,
    without fetching."""
    return _run_command("reparse", lambda: run_reparse(settings, everything, retry_rejected=retry_rejected,
                                                       on_document=_print_document), settings)
