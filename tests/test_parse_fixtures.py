"""Each fixture letter `<case>.<ext>` parses to (or is rejected as) its `<case>.expected.json`.

An expected file is either a subset of the record `ofsted parse` prints (every key given must
match exactly; `findings` and `copy_recipients` are compared whole), or
`{"status": "rejected", "reason": ...}` where the actual reason must start with the one given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.letters.models import RejectedDocument
from ingest.letters.parse import PARSER_VERSION, parse_document

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "letters"
PAIRS = sorted(
    (p.name.removesuffix(".expected.json"), p)
    for p in FIXTURES.glob("*.expected.json")
)


def _letter_file(case: str) -> Path:
    found = [p for p in FIXTURES.glob(f"{case}.*") if not p.name.endswith(".expected.json")]
    assert len(found) == 1, f"{case}: expected one letter file, found {found}"
    return found[0]


def _outcome(path: Path) -> dict:
    try:
        # through JSON, as `ofsted parse` prints it
        return json.loads(json.dumps(parse_document(path.read_bytes(), path.name).to_json()))
    except RejectedDocument as rej:
        return {"status": "rejected", "reason": rej.reason}


def test_fixture_pairs_exist():
    assert len(PAIRS) >= 30
    for case, _ in PAIRS:
        _letter_file(case)


@pytest.mark.parametrize(("case", "expected_path"), PAIRS, ids=[c for c, _ in PAIRS])
def test_fixture(case: str, expected_path: Path):
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    got = _outcome(_letter_file(case))
    assert got["status"] == expected["status"], got.get("reason")
    if expected["status"] == "rejected":
        assert got["reason"].startswith(expected["reason"]), got["reason"]
        assert "\n" not in got["reason"]
        return
    assert got["parser_version"] == PARSER_VERSION
    for key, value in expected.items():
        assert got[key] == value, key


def test_parsed_fixture_texts_are_clean():
    """Whatever the encoding, bullets, ligatures or wrapping: one clean string per finding."""
    for case, expected_path in PAIRS:
        if json.loads(expected_path.read_text(encoding="utf-8"))["status"] != "parsed":
            continue
        got = _outcome(_letter_file(case))
        for f in got["findings"]:
            text = f["text"]
            assert text == " ".join(text.split()), case
            assert not any(ch in text for ch in "\ufb01\ufb00\ufb02\u2019\uf0b7\u2022\ufffe\r"), case
            assert text[0].isupper(), (case, text)
