"""No input makes the parser do super-linear work. The budget is on work done, not wall time:
each generated letter (a corpus of the shapes that made the old patterns backtrack, mixed at
random, ~256 KB) is parsed by an isolated worker whose kernel CPU limit is 2 s per document;
the old patterns needed minutes for such a letter, the linear ones a fraction of a second.
(How parse time grows from 10 KB to 2 MB is printed by benchmarks/parse_scaling_bench.py.)"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pathological_text import FRAGMENTS, letter

from ingest.letters.isolate import IsolatedParser, Limits


@pytest.fixture(scope="module")
def parser():
    p = IsolatedParser(Limits(cpu_s=2, wall_s=120, memory_bytes=1 << 30), workers=1)
    yield p
    p.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(sorted(FRAGMENTS)), min_size=1, max_size=6))
def test_pathological_letters_stay_within_the_cpu_budget(parser, parts):
    got = parser.parse_one(letter(parts, 256 * 1024), None, "letter.txt")
    assert got.failed is None
    assert got.letter is not None or "exceeded" not in got.rejected, (parts, got.rejected)


def test_the_budget_does_stop_a_document_that_spins(parser):
    """The same budget, on a letter the parser does take long over (a 12 MB one), is enforced:
    so the test above would fail if the patterns were quadratic again."""
    big = letter(["filler"], 12 * 1024 * 1024) * 4
    tight = IsolatedParser(Limits(cpu_s=0.01, wall_s=120, memory_bytes=1 << 30, max_bytes=64 << 20))
    try:
        got = tight.parse_one(big, None, "big.txt")
    finally:
        tight.close()
    assert got.rejected is not None and "exceeded" in got.rejected and "CPU" in got.rejected


def test_a_call_interrupted_mid_batch_leaves_no_answers_for_the_next(monkeypatch):
    """A parse interrupted while its workers are busy (a timeout, ^C) must not hand what they
    still send to the next call, whose keys are the same row numbers: the next load would give
    one letter another's parse."""
    from ingest.letters import isolate
    from ingest.letters.parse import parse_document
    from ingest.settings import PROJECT_ROOT

    samples = sorted((PROJECT_ROOT / "data" / "sample_letters").glob("*.txt"))
    first, second = samples[0].read_bytes(), samples[1].read_bytes()
    pool = IsolatedParser(Limits(cpu_s=10, wall_s=120, memory_bytes=1 << 30), workers=1)
    try:
        real_wait = isolate.wait

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(isolate, "wait", interrupted)
        with pytest.raises(KeyboardInterrupt):
            pool.parse_many([(0, first, None, "first.txt")])
        monkeypatch.setattr(isolate, "wait", real_wait)
        got = pool.parse_many([(0, second, None, "second.txt")])[0]
        alone = pool.parse_many([(0, second, None, "second.txt")])[0]
    finally:
        pool.close()
    assert got.letter is not None and got.letter == alone.letter
    assert got.letter.authority_name != parse_document(first, "first.txt").authority_name
