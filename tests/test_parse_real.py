"""The three real letters parse to what `tests/fixtures/letters/real_expected.json` says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.letters.models import Letter
from ingest.letters.parse import PARSER_VERSION, parse_document

ROOT = Path(__file__).resolve().parent.parent
LETTERS = ROOT / "data" / "sample_letters"
EXPECTED = json.loads((ROOT / "tests" / "fixtures" / "letters" / "real_expected.json").read_text())
CASES = sorted(k for k in EXPECTED if not k.startswith("_"))
# fields of the expected file that are not the parser's (gss_code comes from the seed lookup)
NOT_PARSED = {"gss_code", "counts", "copy_recipients", "texts"}


def _parse(name: str) -> Letter:
    return parse_document((LETTERS / name).read_bytes(), name)


def test_every_sample_letter_has_an_expectation():
    assert sorted(p.name for p in LETTERS.iterdir()) == CASES


@pytest.mark.parametrize("name", CASES)
def test_real_letter_fields(name: str):
    expected = EXPECTED[name]
    got = _parse(name).to_json()
    for field, value in expected.items():
        if field not in NOT_PARSED:
            assert got[field] == value, field
    assert got["parser_version"] == PARSER_VERSION
    assert got["source_format"] == "text"
    assert got["status"] == "parsed"


@pytest.mark.parametrize("name", CASES)
def test_real_letter_findings(name: str):
    expected = EXPECTED[name]
    letter = _parse(name)
    assert letter.counts() == expected["counts"]
    by_category: dict[str, list[str]] = {}
    for f in letter.findings:
        by_category.setdefault(f.category, []).append(f.text)
    for category, texts in expected["texts"].items():
        for text in texts:
            assert text in by_category[category]
    # ordinals run 1..n within each section, in order
    for category, texts in by_category.items():
        ordinals = [f.ordinal for f in letter.findings if f.category == category]
        assert ordinals == list(range(1, len(texts) + 1))
    # no finding swallowed a heading, a bullet or the closing paragraph
    for f in letter.findings:
        assert not f.text.startswith(("-", "\u2022"))
        assert "Any areas for development" not in f.text
        assert "  " not in f.text and "\n" not in f.text


@pytest.mark.parametrize("name", CASES)
def test_real_letter_copy_recipients(name: str):
    letter = _parse(name)
    assert len(letter.copy_recipients) == EXPECTED[name]["copy_recipients"]
    assert [c.ordinal for c in letter.copy_recipients] == [1, 2, 3, 4]
    assert letter.copy_recipients[-1].name == "Andrew Spencer"
    assert letter.copy_recipients[-1].role == "Department for Education"


def test_dudley_one_line_address_and_shared_signature_line():
    letter = _parse("004_d31db654b42efda9.txt")
    assert letter.recipient_name == "Mr Mark Wyatt"
    # "Director of Children's Services" follows "c/o Ms Pauline Sharratt": her title, not his
    assert letter.recipient_title is None
    assert letter.inspector_name == "Marie McGuinness"
    # the copy block wraps a role over a blank line and puts two people on one line
    assert [(c.name, c.role) for c in letter.copy_recipients[:3]] == [
        ("Mr John Polychronarkis", "Chief Executive, Dudley Metropolitan Borough Council"),
        ("Ms Pauline Sharratt", "Chair of Dudley Safeguarding Children Board"),
        ("Cllr Elizabeth Walker", "Lead Member for Children's Services, Dudley Metropolitan Borough Council"),
    ]


def test_derbyshire_heading_meets_requirements_is_satisfactory():
    letter = _parse("003_9c1c04a8ac30f548.txt")
    sat = [f for f in letter.findings if f.category == "satisfactory"]
    assert {f.heading for f in sat} == {
        "The service meets the requirements of statutory guidance in the following areas"
    }
    assert letter.summary == (
        "The inspection identified areas of strength and areas of practice that met requirements, "
        "with some areas for development."
    )
