"""Inline SVG charts drawn in Python: no script, no network, one <rect class="bar"> per value.

Each chart is a string of SVG markup (plus a legend list when there are several series) that
the templates place as it is; every value is also in a table beside the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ingest.letters.models import CATEGORIES, CATEGORY_LABELS
from ingest.report.formats import _clip, esc, fmt_int

__all__ = ["CATEGORY_COLOURS", "CATEGORY_LABELS"]  # the labels are the letters' (re-exported)
# one colour per category, in CATEGORIES order: green, blue, amber, red
CATEGORY_COLOURS = dict(zip(CATEGORIES, ("#2f855a", "#5b8fd0", "#dd9a2b", "#c53030"), strict=True))
INSPECTION_COLOUR = "#2c4f7c"
HIGHLIGHT_COLOUR = "#c05621"  # the authority a comparison is about
CONTEXT_COLOUR = "#a0aec0"  # the others it is compared with
BENCHMARK_COLOUR = "#2c4f7c"  # its region and England
NARROW_WIDTH = 330  # a chart's width on a phone (the report's column at 375 px is about 340 px)


def nice_scale(max_value: float, ticks: int = 5) -> tuple[float, float]:
    """A round axis maximum and tick step covering `max_value` (whole numbers: counts)."""
    if max_value <= 0:
        return 1.0, 1.0
    raw = max_value / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(1.0, step)
    if step != int(step):
        step = math.ceil(step)
    return math.ceil(max_value / step) * step, float(step)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str
    colours: Sequence[str] | None = None  # one per value, to colour each bar of a single series

    def colour_of(self, i: int) -> str:
        return self.colours[i] if self.colours else self.colour


def _legend(series: Sequence[Series]) -> str:
    if len(series) < 2:
        return ""
    items = "".join(
        f'<li><span class="swatch" style="background:{s.colour}"></span>{esc(s.name)}</li>'
        for s in series
    )
    return f'<ul class="legend">{items}</ul>'


def _empty(title: str, message: str | None) -> str:
    return f'<p class="empty">{esc(message or f"No data for “{title}” yet.")}</p>'


def svg_column_chart(title: str, labels: Sequence[str], series: Sequence[Series],
                     y_label: str = "", width: int = 560, height: int = 280, empty: str | None = None) -> str:
    """Vertical bars, stacked when there is more than one series; one <rect class="bar"> per value."""
    if not labels or not any(v for s in series for v in s.values):
        return _empty(title, empty)
    left, right, top, bottom = 48, 12, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    y_max, step = nice_scale(max(totals))
    band = plot_w / len(labels)
    bar_w = max(2.0, min(48.0, band * 0.68))
    label_every = max(1, math.ceil(len(labels) * 34 / plot_w))
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{esc(title)}" preserveAspectRatio="xMinYMin meet">',
           f"<title>{esc(title)}</title>"]
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = top + plot_h - plot_h * tick / y_max
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{fmt_int(tick)}</text>")
        tick += step
    if y_label:
        out.append(f'<text class="axis-label" x="{left}" y="{top - 9}" text-anchor="start">'
                   f"{esc(y_label)}</text>")
    for i, label in enumerate(labels):
        x = left + band * i + (band - bar_w) / 2
        base = top + plot_h
        for s in series:
            v = s.values[i]
            if not v:
                continue
            h = plot_h * v / y_max
            base -= h
            out.append(f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                       f'height="{h:.1f}" fill="{s.colour_of(i)}" data-value="{v}">'
                       f"<title>{esc(label)} · {esc(s.name)}: {fmt_int(v)}</title></rect>")
        if totals[i] and len(labels) <= 24:
            out.append(f'<text class="value" x="{x + bar_w / 2:.1f}" y="{base - 5:.1f}" '
                       f'text-anchor="middle">{fmt_int(totals[i])}</text>')
        if i % label_every == 0:
            out.append(f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{top + plot_h + 18}" '
                       f'text-anchor="middle">{esc(label)}</text>')
    base = top + plot_h
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>')
    out.append("</svg>")
    return "".join(out) + _legend(series)


def svg_bar_chart(title: str, labels: Sequence[str], series: Sequence[Series],
                  width: int = 560, row_height: int = 26, empty: str | None = None,
                  fmt: Callable[[float], str] = fmt_int) -> str:
    """Horizontal bars (stacked for several series), a label left of each and its total after
    (written by `fmt`, whole numbers by default)."""
    if not labels or not any(v for s in series for v in s.values):
        return _empty(title, empty)
    longest = max(len(label) for label in labels)
    label_chars = min(longest, max(20, int(width * 0.3 / 6.9)))
    left = 14 + int(label_chars * 6.9)
    right, top, bottom = 44, 8, 26
    plot_w = width - left - right
    height = top + bottom + row_height * len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    x_max, step = nice_scale(max(totals), ticks=4)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{esc(title)}" preserveAspectRatio="xMinYMin meet">',
           f"<title>{esc(title)}</title>"]
    tick = 0.0
    while tick <= x_max + 1e-9:
        x = left + plot_w * tick / x_max
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                   f"{fmt(tick)}</text>")
        tick += step
    bar_h = row_height * 0.64
    for i, label in enumerate(labels):
        y = top + row_height * i + (row_height - bar_h) / 2
        shown = _clip(label, label_chars)
        out.append(f'<text class="label" x="{left - 8}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end">'
                   f"<title>{esc(label)}</title>{esc(shown)}</text>")
        x = float(left)
        for s in series:
            v = s.values[i]
            if not v:
                continue
            w = plot_w * v / x_max
            out.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar_h:.1f}" '
                       f'fill="{s.colour_of(i)}" data-value="{v}"><title>{esc(label)} · {esc(s.name)}: '
                       f"{fmt(v)}</title></rect>")
            x += w
        out.append(f'<text class="value" x="{x + 5:.1f}" y="{y + bar_h / 2 + 4:.1f}">'
                   f"{fmt(totals[i])}</text>")
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}"/>')
    out.append("</svg>")
    return "".join(out) + _legend(series)


def category_series(rows: Sequence[dict[str, Any]]) -> list[Series]:
    return [Series(CATEGORY_LABELS[c], [r[c] for r in rows], CATEGORY_COLOURS[c]) for c in CATEGORIES]


def responsive(draw: Callable[..., str], *args: Any, width: int, **kwargs: Any) -> str:
    """The chart `draw(*args, width=..., **kwargs)` twice: at `width` for wide screens and at
    NARROW_WIDTH for phones, where a wide chart shrunk to fit would make its text too small to
    read; the stylesheet shows one of them (.chart-wide / .chart-narrow)."""
    if width <= NARROW_WIDTH * 1.2:
        return draw(*args, width=width, **kwargs)
    return (f'<div class="chart-wide">{draw(*args, width=width, **kwargs)}</div>'
            f'<div class="chart-narrow">{draw(*args, width=NARROW_WIDTH, **kwargs)}</div>')
