"""CI cannot go green by skipping: with `OFSTED_REQUIRE` naming a marker, a skipped test that
carries it fails with the skip's reason; without it, the same test skips (a developer's
machine without Chromium or PostgreSQL). Run in a pytest session of its own (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = '''
import pytest

@pytest.mark.browser
def test_needs_chromium():
    pytest.skip("Debian's chromium is not installed")

@pytest.mark.stack
@pytest.mark.skipif(True, reason="needs Debian's postgresql")
def test_needs_the_stack():
    pass

@pytest.mark.slow
def test_skips_for_another_reason():
    pytest.skip("not here")

def test_runs():
    pass
'''


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest("from _require import pytest_configure, pytest_runtest_makereport  # noqa: F401")
    pytester.makeini('[pytest]\nmarkers =\n    slow: s\n    browser: b\n    stack: s\n')
    pytester.makepyfile(test_inner=INNER)
    return pytester


def test_required_markers_fail_when_skipped_and_say_why(inner, monkeypatch):
    monkeypatch.setenv("OFSTED_REQUIRE", "browser,stack")
    result = inner.runpytest_inprocess("-p", "no:cacheprovider", "-rA")
    # a skip in the call fails it; a skipif (decided in setup) is an error: either fails the session
    result.assert_outcomes(passed=1, skipped=1, failed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "requires the browser tests to run here" in out and "chromium is not installed" in out
    assert "requires the stack tests to run here" in out and "needs Debian's postgresql" in out


def test_without_the_requirement_they_skip(inner, monkeypatch):
    monkeypatch.delenv("OFSTED_REQUIRE", raising=False)
    inner.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=3)


def test_a_requirement_that_is_no_marker_stops_the_session(inner, monkeypatch):
    monkeypatch.setenv("OFSTED_REQUIRE", "browsr")
    result = inner.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "browsr is no marker" in result.stderr.str() + result.stdout.str()
