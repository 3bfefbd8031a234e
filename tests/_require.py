"""What CI requires to run: `OFSTED_REQUIRE=browser,stack` (set by `.ci/run`) turns the skip of
a test marked with one of those markers into a failure, with the skip's reason, so CI cannot go
green without the browser or the stack. Unset (a developer's machine), such tests skip as
before. The conftest imports these hooks; a name that is not a registered marker stops the
session with a usage error."""

from __future__ import annotations

import os

import pytest

ENV = "OFSTED_REQUIRE"


def required() -> set[str]:
    return {m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()}


def pytest_configure(config: pytest.Config) -> None:
    known = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    unknown = required() - known
    if unknown:
        raise pytest.UsageError(f"{ENV}={os.environ[ENV]}: {', '.join(sorted(unknown))} is no marker "
                                f"(known: {', '.join(sorted(known))})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    needed = required() & {m.name for m in item.iter_markers()} if report.skipped else set()
    if needed:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"{ENV}={os.environ[ENV]} requires the {', '.join(sorted(needed))} tests "
                           f"to run here, but this one was skipped: {reason}")
