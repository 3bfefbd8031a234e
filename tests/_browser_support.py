"""Open a page in Debian's headless Chromium through Playwright, recording what went wrong.

Tests marked `browser` call `chromium_or_skip()` first: without `/usr/bin/chromium` they are
skipped with the reason (`.ci/run` installs the package when it is absent).

One Chromium per test process, started by the first page and stopped when the process ends;
each page opens in a new browser context (its own cookies, storage and cache), so no page sees
another's state. Starting Playwright and Chromium for every page cost ~0.75 s each.
"""

from __future__ import annotations

import atexit
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ingest.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def chromium_or_skip() -> Path:
    if not CHROMIUM.is_file() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the python playwright package is not installed")
    return CHROMIUM if CHROMIUM.is_file() else Path(shutil.which("chromium"))


@dataclass
class PageProblems:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"console_errors": self.console_errors, "page_errors": self.page_errors,
                "failed_requests": self.failed_requests}


_browser: Any = None  # this process's Chromium (`_chromium`)


def _chromium() -> Any:
    """This process's Chromium, started at the first call (again if it has gone)."""
    global _browser
    if _browser is None or not _browser.is_connected():
        from playwright.sync_api import sync_playwright

        executable = chromium_or_skip()
        pw = sync_playwright().start()
        _browser = pw.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)

        def stop() -> None:
            try:
                _browser.close()
            finally:
                pw.stop()

        atexit.register(stop)
    return _browser


@contextmanager
def open_page(url: str, width: int = 1280, height: int = 900) -> Iterator[tuple[Any, PageProblems]]:
    """Yield (page, problems) with `url` loaded in headless Chromium, in a context of its own."""
    chromium_or_skip()
    problems = PageProblems()
    context = _chromium().new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.on("console",
                lambda m: problems.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: problems.failed_requests.append(f"{r.url} {r.failure}"))
        page.on("request", lambda r: problems.requests.append(r.url))
        page.goto(url, wait_until="load")
        yield page, problems
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (test-artifacts/ is gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


CHART_FACTS_JS = """
() => Array.from(document.querySelectorAll('svg.chart'))
    .filter(svg => svg.getClientRects().length > 0)  // the one drawn for this screen's width
    .map(svg => {
  const box = svg.getBoundingClientRect();
  const bars = Array.from(svg.querySelectorAll('rect.bar'));
  return {
    title: svg.getAttribute('aria-label'),
    section: svg.closest('section') ? svg.closest('section').id : null,
    width: box.width, height: box.height,
    bars: bars.length,
    drawn: bars.filter(b => {
      const r = b.getBoundingClientRect(); return r.width > 0 && r.height > 0;
    }).length,
    total: bars.reduce((s, b) => s + Number(b.dataset.value), 0),
  };
})
"""


def chart_facts(page: Any) -> list[dict[str, Any]]:
    """For each chart shown on the page (each is drawn twice, for wide screens and for phones, and
    one of the two is hidden): its rendered size, bars drawn, and the sum of their values."""
    return page.evaluate(CHART_FACTS_JS)
