"""`ofsted parse FILE`: parse one letter under the same limits as a night, print it as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ingest.letters.isolate import IsolatedParser, Limits, read_bounded
from ingest.letters.models import RejectedDocument
from ingest.settings import Settings


def cli_parse(path: Path, settings: Settings) -> int:
    """Print the record (exit 0) or the rejection (exit 2) as JSON.

    Reads at most `OFSTED_MAX_FILE_BYTES` (+1) from the file, refuses anything but a regular
    file (a FIFO, /dev/zero, a socket), and parses in an isolated worker with the per-document
    CPU, wall-time and memory limits."""
    limits = Limits.from_settings(settings)
    try:
        data = read_bounded(path, limits.max_bytes)
    except RejectedDocument as rej:
        return _rejected(rej.reason)
    except OSError as exc:
        return _rejected(f"cannot read {path}: {exc.strerror or exc}")
    parser = IsolatedParser(limits, workers=1)
    try:
        outcome = parser.parse_one(data, None, path.name)
    finally:
        parser.close()
    if outcome.letter is None:
        return _rejected(outcome.rejected or outcome.failed or "not parsed")
    _print_json(outcome.letter.to_json())
    return 0


def _rejected(reason: str) -> int:
    _print_json({"status": "rejected", "reason": reason})
    return 2


def _print_json(obj: dict) -> None:
    try:
        print(json.dumps(obj, ensure_ascii=False, indent=2))
    except UnicodeEncodeError:  # a terminal that cannot show the letter's characters
        print(json.dumps(obj, indent=2))
    sys.stdout.flush()
