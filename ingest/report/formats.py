"""How the report writes numbers, dates and text: one place for every page and chart."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def fmt_int(n: Any) -> str:
    return "–" if n is None else f"{int(n):,}"


def fmt_date(d: dt.date | None) -> str:
    return "–" if d is None else f"{d.day} {d:%b %Y}"


def fmt_pct(part: float, whole: float) -> str:
    return "–" if not whole else f"{100 * part / whole:.0f}%"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
