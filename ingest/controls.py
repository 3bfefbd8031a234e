"""The data team's controls: `ofsted status`, `ofsted quarantine` and `ofsted release`.

`quarantine` / `release` append one row to `raw.quarantine` in the work warehouse (the
document's sha256, the URI named, the reason, who: the OS user, when: UTC). Nothing else
changes then: dbt reads the log at every build, so the document leaves (or re-enters) the
warehouse at the next build, `ofsted rerun` or the next night; the loader also leaves a
quarantined document out of later loads. `status` reads the night history
(`ingest.nights`), the data directory's lock and the quarantine log.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
import sys
from pathlib import Path
from typing import Any

import duckdb

from ingest.redact import escape_controls, has_controls
from ingest.settings import Settings
from ingest.warehouse.verdict import STAGES as DQ_STAGES  # the stages of a night's verdict

_HEX = re.compile(r"[0-9a-f]{8,64}")
MIN_PREFIX = 8

# the quarantine state is the view raw.quarantined_documents (ingest/raw/schema.sql)
CURRENT_QUARANTINE_SQL = """
    select sha256, source_uri, reason, by_user, acted_at from raw.quarantined_documents
    order by acted_at, sha256
"""


class ControlError(RuntimeError):
    """A control that cannot be applied (one line: what to do instead)."""


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the uid itself
        return f"uid {os.getuid()}"


# --- quarantine / release -------------------------------------------------------------------

def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_schema = ? "
                       "and table_name = ?", [schema, table]).fetchone()[0] > 0


def resolve_document(con: duckdb.DuckDBPyConnection, ref: str) -> tuple[str, str | None]:
    """(sha256, source URI) of the document `ref` names: a sha256 or a unique prefix of one
    (at least 8 hex digits), a source URI, or a local file's path (as its file:// URI)."""
    ref = ref.strip()
    sources = [("raw.letters", "_sha256", "_source_uri"), ("raw.manifest", "_sha256", "source_uri"),
               ("raw.rejected_documents", "_sha256", "_source_uri"),
               ("raw.quarantine", "sha256", "source_uri")]
    union = " union all ".join(f"select {s} as sha, {u} as uri from {t} where {s} is not null"
                               for t, s, u in sources if _table_exists(con, *t.split(".")))
    if _HEX.fullmatch(ref.lower()):
        rows = con.execute(f"select sha, min(uri) from ({union}) where sha like ? group by sha",
                           [ref.lower() + "%"]).fetchall()
        if len(rows) > 1:
            raise ControlError(f"{ref} is the start of {len(rows)} documents' sha256: give more of it")
        if rows:
            return rows[0][0], rows[0][1]
    uris = [ref]
    if "://" not in ref:
        uris.append(Path(os.path.abspath(ref)).as_uri())
    for uri in uris:
        # the bytes last fetched from a URI (the manifest) first, then the letter first fetched from it
        for table, sha, col in sources[:3]:
            row = con.execute(f"select {sha} from {table} where {col} = ? and {sha} is not null",
                              [uri]).fetchone()
            if row:
                return row[0], uri
    hint = "" if _HEX.fullmatch(ref.lower()) or "://" in ref else f" (looked for {uris[-1]})"
    raise ControlError(f"no document {ref!r} in the warehouse{hint}: give a loaded document's sha256 "
                       "or source URI (`ofsted sql \"select _sha256, _source_uri from raw.letters\"`)")


def current_quarantine(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The documents quarantined now (raw.quarantined_documents: the latest action per document
    says 'quarantine'). A warehouse from before the view was added, opened read-only, raises
    ControlError: its state cannot be read without the one rule that defines it."""
    if not _table_exists(con, "raw", "quarantine"):
        return []
    if not _table_exists(con, "raw", "quarantined_documents"):
        raise ControlError("this warehouse predates raw.quarantined_documents: "
                           "run `ofsted build` (or the next night) to bring it up to date")
    cols = ("sha256", "source_uri", "reason", "by_user", "acted_at")
    return [dict(zip(cols, row, strict=True)) for row in con.execute(CURRENT_QUARANTINE_SQL).fetchall()]


MAX_REASON_CHARS = 2000


def checked_reason(reason: str) -> str:
    """A user's free text fit to store and show: at most MAX_REASON_CHARS characters, no control
    character (a terminal escape would act on every later `ofsted status`); spaces normalised."""
    if has_controls(reason.replace("\r", "")):
        raise ControlError("--reason holds a control character (" + escape_controls(
            next(c for c in reason if has_controls(c))) + "): write it as plain text")
    reason = " ".join(reason.split())
    if not reason:
        raise ControlError("--reason must say why (it is kept in raw.quarantine)")
    if len(reason) > MAX_REASON_CHARS:
        raise ControlError(f"--reason is {len(reason):,} characters; at most {MAX_REASON_CHARS:,} are kept "
                           "(say why in a sentence, and link to the rest)")
    return reason


def apply_control(settings: Settings, ref: str, reason: str, action: str) -> dict[str, Any]:
    """Append one quarantine/release row for the document `ref`; returns what was written
    (`written` False when the document already was in that state)."""
    from ingest.raw.db import connect

    if action not in ("quarantine", "release"):
        raise ValueError(action)
    reason = checked_reason(reason)
    if not settings.work_warehouse.is_file():
        raise ControlError(f"no warehouse at {settings.work_warehouse} (nothing loaded yet)")
    con = connect(settings.work_warehouse)
    try:
        sha, uri = resolve_document(con, ref)
        now_in = {q["sha256"]: q for q in current_quarantine(con)}
        row = {"sha256": sha, "source_uri": uri, "reason": reason, "action": action, "by_user": os_user(),
               "acted_at": dt.datetime.now(dt.UTC)}
        if (action == "quarantine") == (sha in now_in):
            prior = now_in.get(sha)
            return row | {"written": False, "prior": prior}
        con.execute("insert into raw.quarantine (sha256, source_uri, reason, action, by_user, acted_at) "
                    "values (?, ?, ?, ?, ?, ?)", [sha, uri, reason, action, row["by_user"], row["acted_at"]])
        con.execute("checkpoint")
    finally:
        con.close()
    return row | {"written": True}


def cli_quarantine(settings: Settings, ref: str, reason: str, action: str) -> int:
    """`ofsted quarantine|release SHA_OR_URI --reason ...`: one line saying what happens when."""
    try:
        done = apply_control(settings, ref, reason, action)
    except ControlError as exc:
        print(f"ofsted {action}: error: {exc}", file=sys.stderr)
        return 1
    name = f"{done['sha256']} ({done['source_uri'] or 'no URI'})"
    if not done["written"]:
        if action == "quarantine":
            p = done["prior"]
            print(f"{name} is already quarantined (by {p['by_user']} at {_when(p['acted_at'])}: "
                  f"{p['reason']}); nothing written")
        else:
            print(f"{name} is not quarantined; nothing written")
        return 0
    verb = "quarantined" if action == "quarantine" else "released"
    effect = ("it leaves the warehouse and later loads" if action == "quarantine"
              else "it comes back into the warehouse")
    print(f"{verb} {name} by {done['by_user']} at {_when(done['acted_at'])}: {done['reason']}")
    print(f"{effect} at the next build: run `ofsted rerun` now, or it happens at the next night "
          f"(recorded in raw.quarantine of {settings.work_warehouse})")
    return 0


# --- status ---------------------------------------------------------------------------------

def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, str) and value:
        try:
            return _when(dt.datetime.fromisoformat(value))
        except ValueError:
            return value
    return "-"


def dq_text(dq: dict[str, Any]) -> str:
    parts = []
    for stage in DQ_STAGES:
        r = dq.get(stage)
        warned = int((r or {}).get("warned") or 0)
        warnings = f", {warned} warning{'s' if warned != 1 else ''}" if warned else ""
        if not r:
            parts.append(f"{stage} -")
        elif r.get("success"):
            parts.append(f"{stage} ok ({r.get('evaluated', 0)}{warnings})")
        else:
            parts.append(f"{stage} FAILED {r.get('failed', 0)} of {r.get('evaluated', 0)}{warnings}")
    return ", ".join(parts)


def _counts_text(counts: dict[str, Any]) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{k} {counts[k]}" for k in ("new", "unchanged", "duplicate", "rejected", "failed")
                     if k in counts)


def night_lines(nights: list[dict[str, Any]]) -> list[str]:
    lines = []
    for n in nights:
        state = n["state"].upper() if n["state"] != "success" else "success"
        lines.append(f"  {_when(n['started_at'])}  {state:<8} {n['run_id']}  ({n.get('trigger') or '?'})")
        published = "; published" if n.get("published") else ""
        lines.append(f"      letters: {_counts_text(n.get('counts') or {})}; "
                     f"data quality: {dq_text(n.get('dq') or {})}{published}")
        if n["state"] == "failed":
            lines.append(f"      failed at {n.get('failed_task') or '?'}: {n.get('reason') or '?'}")
            for suite, r in (n.get("dq") or {}).items():
                for f in (r.get("failures") or [])[:5]:
                    lines.append(f"        {suite}: {f}")
        lines += [f"        {w}" for w in warning_lines(n)]
    return lines


def warning_lines(night: dict[str, Any]) -> list[str]:
    """A night's DQ warnings, one line each: they never fail a night and are never hidden."""
    return [f"warning ({stage}): {w}" for stage in DQ_STAGES
            for w in ((night.get("dq") or {}).get(stage) or {}).get("warnings") or []]


def dq_lines(night: dict[str, Any]) -> list[str]:
    """The night's data-quality verdict as `ofsted status` words it (`ofsted run` prints it too)."""
    return [f"data quality: {dq_text(night.get('dq') or {})}", *warning_lines(night)]


def _quarantine_lines(settings: Settings, damaged: list[str] | None = None) -> list[str]:
    """What is quarantined; a warehouse that cannot be opened for another reason than a writer
    holding it (a truncated or corrupt file) is added to `damaged` as one line."""
    in_use = " (from the published warehouse: the work one is in use)"
    for path, note in ((settings.work_warehouse, ""), (settings.published_warehouse, in_use)):
        if not path.is_file():
            continue
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            if damaged is not None and "Could not set lock" not in line:
                damaged.append(f"{path} cannot be read: {line}")
            continue
        try:
            rows = current_quarantine(con)
        except ControlError as exc:
            return [f"quarantined documents: unknown ({exc})"]
        finally:
            con.close()
        if not rows:
            return [f"quarantined documents: none{note}"]
        lines = [f"quarantined documents ({len(rows)}){note}:"]
        for q in rows:
            lines.append(f"  {q['sha256']}  {q['source_uri'] or '-'}")
            lines.append(f"      by {q['by_user']} at {_when(q['acted_at'])}: {q['reason']}")
        return lines
    return ["quarantined documents: unknown (no warehouse could be read)"]


def cli_status(settings: Settings, limit: int = 10) -> int:
    """`ofsted status`: exit 0 when the latest finished night succeeded, 1 otherwise."""
    from ingest.lock import describe, holder
    from ingest.nights import last_good_night, read_nights

    nights = read_nights(settings, limit=limit)
    held = holder(settings)
    running = [n for n in nights if n["state"] == "running"]
    if held is not None:
        print(f"running now: {describe(held)} holds the data directory")
    elif running:
        print(f"running now: nothing holds the data directory lock; night {running[0]['run_id']} is marked "
              "running (it is running on another machine, or it was killed)")
    else:
        print("running now: nothing")
    good = last_good_night(settings)
    if good:
        print(f"published warehouse: {settings.published_warehouse}, from {good['warehouse_run_id']} "
              f"(finished {_when(good['finished_at'])})")
    else:
        print(f"published warehouse: none published yet ({settings.published_warehouse})")
    finished = [n for n in nights if n["state"] != "running"]
    if nights:
        print(f"nights (newest first, up to {limit}):")
        for line in night_lines(nights):
            print(line)
    else:
        print("no night recorded yet")
    damaged: list[str] = []
    for line in _quarantine_lines(settings, damaged):
        print(line)
    for line in damaged:  # the next night would fail on it: never a quiet exit 0
        print(f"DAMAGED: {line}")
    last = finished[0] if finished else None
    if damaged:
        print("the warehouse above is damaged (truncated or corrupt): restore it, or move it away and "
              "run `ofsted reparse` (the archive keeps every letter)")
        return 1
    if last is None:
        print("last night: none finished yet")
        return 1
    if last["state"] == "success":
        print(f"last night {last['run_id']}: succeeded")
        return 0
    print(f"last night {last['run_id']}: FAILED at {last.get('failed_task') or '?'}; "
          "see the runbook `a night failed on DQ: what to do` in README.md")
    return 1
