"""The parser on inputs nobody wrote by hand: date and bullet forms, synthetic letters,
random bytes and mutated real letters (parse or reject, nothing else), and `ofsted parse`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _parse_support import render_letter_pdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.synthetic import generate_letter, render_pdf
from ingest.letters.command import cli_parse
from ingest.letters.models import CATEGORIES, Letter, RejectedDocument
from ingest.letters.parse import parse_document
from ingest.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "letters"
REAL = sorted((ROOT / "data" / "sample_letters").iterdir())
PLAIN = (FIXTURES / "plain_utf8.txt").read_text(encoding="utf-8")
PLAIN_DATES = "8\u20139 March 2011"


def _outcome(data: bytes, name: str) -> Letter | str:
    try:
        return parse_document(data, name)
    except RejectedDocument as rej:
        return rej.reason


# --- forms of the same fact ---------------------------------------------------------------------

@pytest.mark.parametrize(("written", "start", "end"), [
    ("18 and 19 May 2010", "2010-05-18", "2010-05-19"),
    ("30 November and 1 December 2010", "2010-11-30", "2010-12-01"),
    ("8\u20139 March 2011", "2011-03-08", "2011-03-09"),
    ("8-9 March 2011", "2011-03-08", "2011-03-09"),
    ("8 to 9 March 2011", "2011-03-08", "2011-03-09"),
    ("5 and 6 October 2010", "2010-10-05", "2010-10-06"),
    ("12 January 2011", "2011-01-12", "2011-01-12"),
    ("30 December 2010 and 1 January 2011", "2010-12-30", "2011-01-01"),
    ("18, 19 and 20 May 2010", "2010-05-18", "2010-05-20"),
    ("18th and 19th May 2010", "2010-05-18", "2010-05-19"),
    ("2 and 3 Sept 2010", "2010-09-02", "2010-09-03"),
])
def test_inspection_date_forms(written: str, start: str, end: str):
    letter = parse_document(PLAIN.replace(PLAIN_DATES, written).encode(), "l.txt")
    assert (letter.inspection_start_date.isoformat(), letter.inspection_end_date.isoformat()) == (start, end)


@pytest.mark.parametrize("written", [
    "9 and 8 March 2011", "1 March and 9 April 2011", "31 and 32 March 2011",
])
def test_impossible_inspection_dates_are_rejected(written: str):
    reason = _outcome(PLAIN.replace(PLAIN_DATES, written).encode(), "l.txt")
    assert isinstance(reason, str)
    assert reason.startswith(("implausible inspection dates", "no inspection dates found"))


@pytest.mark.parametrize("bullet", [
    "- ", "\u2022 ", "\u2022", "\u2013 ", "* ", "\uf0b7 ", "\uf0b7\t", "\u25aa ",
])
def test_each_bullet_style_starts_a_finding(bullet: str):
    text = PLAIN.replace("\n- ", "\n" + bullet)
    letter = parse_document(text.encode(), "l.txt")
    assert letter.counts() == {
        "strength": 2, "satisfactory": 3, "area_for_development": 3, "priority_action": 0,
    }
    assert all(f.text[0].isupper() for f in letter.findings)


def test_numbered_bullets_restart_ordinals_per_section():
    lines, n = [], 0
    for s in PLAIN.split("\n"):
        if s.startswith("- "):
            n += 1
            s = f"{n}. {s[2:]}"
        elif s in ("Satisfactory practice", "Areas for development"):
            n = 0
        lines.append(s)
    letter = parse_document("\n".join(lines).encode(), "l.txt")
    assert [(f.category, f.ordinal) for f in letter.findings] == [
        ("strength", 1), ("strength", 2),
        ("satisfactory", 1), ("satisfactory", 2), ("satisfactory", 3),
        ("area_for_development", 1), ("area_for_development", 2), ("area_for_development", 3),
    ]
    assert letter.findings[0].text.startswith("Managers provide")


A1 = ("Core assessments do not consistently analyse the impact of parental mental health on children, "
      "and so plans do not always address the risks identified.")


@pytest.mark.parametrize("footer", [
    "Page 2 of 3", "PAGE 2 OF 3", "Page 2", "2 of 3", "- 2 -", "Page 2/3",
    "Wiltshire Council CRA letter   Page 2 of 3",
])
def test_page_number_lines_inside_a_finding_are_dropped(footer: str):
    broken = A1.replace(" children,", f"\n\n{footer}\n\f\n\nchildren,")
    letter = parse_document(PLAIN.replace(A1, broken).encode(), "l.txt")
    texts = [f.text for f in letter.findings if f.category == "area_for_development"]
    assert texts[0] == A1
    assert len(texts) == 3


def test_a_finding_that_begins_like_the_closing_paragraph_is_still_a_finding():
    lines = PLAIN.replace("\n- ", "\n\n").split("\n")  # paragraphs, no bullets
    i = lines.index(A1)
    addressed = "All areas for development identified in the last inspection have been addressed."
    lines[i + 1:i + 1] = ["", addressed]
    letter = parse_document("\n".join(lines).encode(), "l.txt")
    texts = [f.text for f in letter.findings if f.category == "area_for_development"]
    assert texts[:2] == [A1, addressed]
    assert len(texts) == 4


def test_a_dash_starting_a_wrapped_line_inside_a_sentence_is_not_a_bullet():
    wrapped = (
        "- Children are seen alone during assessments\n"
        "\u2013 including very young children \u2013\n"
        "and their wishes and feelings are recorded."
    )
    one_line = "- Children are seen alone during assessments and their wishes and feelings are recorded."
    text = PLAIN.replace(one_line, wrapped)
    letter = parse_document(text.encode(), "l.txt")
    sat = [f.text for f in letter.findings if f.category == "satisfactory"]
    assert sat[1] == (
        "Children are seen alone during assessments \u2013 including very young children \u2013 "
        "and their wishes and feelings are recorded."
    )
    assert len(sat) == 3


def test_care_of_address_keeps_the_addressee_and_not_the_other_persons_title():
    text = PLAIN.replace("\nMs Carolyn Godfrey\n", "\nMr Mark Wyatt c/o Ms Carolyn Godfrey\n")
    letter = parse_document(text.encode(), "l.txt")
    assert (letter.recipient_name, letter.recipient_title) == ("Mr Mark Wyatt", None)


def test_meets_requirements_heading_wrapped_over_two_lines():
    heading = "The service meets the requirements of statutory guidance in the following areas"
    text = PLAIN.replace("Satisfactory practice\n", heading.replace(" in the ", " in the\n") + ":\n")
    letter = parse_document(text.encode(), "l.txt")
    sat = [f for f in letter.findings if f.category == "satisfactory"]
    assert [(f.heading, f.ordinal) for f in sat] == [(heading, 1), (heading, 2), (heading, 3)]
    assert sat[0].text.startswith("Initial assessments are completed")


def test_a_heading_repeated_continues_its_ordinals():
    """(category, ordinal) is the findings' key: a second "Strengths" section must not restart at 1."""
    extra = "Strengths\n\n- An extra strength.\n\nAreas for development\n"
    text = PLAIN.replace("Areas for development\n", extra)
    letter = parse_document(text.encode(), "l.txt")
    strengths = [(f.ordinal, f.text) for f in letter.findings if f.category == "strength"]
    assert [o for o, _ in strengths] == [1, 2, 3]
    assert strengths[-1][1] == "An extra strength."


# --- letters in the style of the real ones (devtools.synthetic, with their correct parse) ----------

def _assert_synthetic(letter: Letter, expected: dict) -> None:
    got = json.loads(json.dumps(letter.to_json()))
    for key in ("letter_date", "recipient_name", "recipient_title", "authority_name",
                "inspection_start_date", "inspection_end_date", "statutory_basis",
                "previous_inspection", "summary", "inspector_name", "copy_recipients"):
        assert got[key] == expected[key], key
    assert [(f["category"], f["heading"], f["ordinal"], f["text"]) for f in got["findings"]] == [
        (f["category"], f["heading"], f["ordinal"], f["text"]) for f in expected["findings"]
    ]


def test_synthetic_text_letters_parse_exactly():
    for seed in range(150):
        s = generate_letter(seed)
        _assert_synthetic(parse_document(s.to_bytes(), f"{seed}.txt"), s.expected)


def test_synthetic_pdf_letters_parse_exactly():
    for seed in range(1000, 1008):
        s = generate_letter(seed)
        letter = parse_document(render_pdf(s), f"{seed}.pdf")
        assert letter.source_format == "pdf"
        _assert_synthetic(letter, s.expected)


# --- parse or reject, never anything else ---------------------------------------------------------

def _check(data: bytes, name: str) -> None:
    out = _outcome(data, name)
    if isinstance(out, str):
        assert out and "\n" not in out
        assert not out.startswith("internal parser error"), out  # the safety net must stay unused
        return
    assert out.findings
    assert out.inspection_start_date <= out.inspection_end_date
    for cat in CATEGORIES:
        ordinals = [f.ordinal for f in out.findings if f.category == cat]
        assert ordinals == list(range(1, len(ordinals) + 1))
    assert all(f.text == " ".join(f.text.split()) and f.text for f in out.findings)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=3000), name=st.sampled_from(["a.txt", "a.pdf", "a"]))
def test_random_bytes_parse_or_reject(data: bytes, name: str):
    _check(data, name)


@FUZZ
@given(body=st.binary(max_size=2000))
def test_random_bytes_behind_a_pdf_header_are_rejected(body: bytes):
    out = _outcome(b"%PDF-1.4\n" + body + b"\n%%EOF\n", "a.pdf")
    assert isinstance(out, str) and not out.startswith("internal parser error")


_REAL_LINES = [p.read_bytes().decode("utf-8").split("\n") for p in REAL]
_mutation = st.tuples(
    st.sampled_from(["delete", "duplicate", "swap", "truncate", "insert", "blank"]),
    st.integers(0, 10_000), st.integers(0, 10_000), st.text(max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(
    which=st.integers(0, len(_REAL_LINES) - 1),
    mutations=st.lists(_mutation, min_size=1, max_size=6),
    encoding=st.sampled_from(["utf-8", "cp1252", "utf-8-sig"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_mutated_real_letters_parse_or_reject(which, mutations, encoding, newline):
    lines = list(_REAL_LINES[which])
    for op, a, b, text in mutations:
        if not lines:
            break
        i, j = a % len(lines), b % len(lines)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines = lines[:i]
        elif op == "insert":
            lines.insert(i, text)
        else:
            lines[i] = ""
    data = newline.join(lines).encode(encoding, errors="replace")
    _check(data, "mutated.txt")


_PDF = render_letter_pdf(PLAIN)


@settings(max_examples=25, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, len(_PDF) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_damaged_pdf_parses_or_is_rejected(flips):
    data = bytearray(_PDF)
    for pos, value in flips:
        data[pos] = value
    _check(bytes(data), "damaged.pdf")


def _settings(**over: object) -> Settings:
    return Settings.from_env({}).with_overrides(**over)


def test_the_size_cap_is_the_setting_not_a_parser_constant(tmp_path, capsys):
    """A letter padded past 20 MiB parses when OFSTED_MAX_FILE_BYTES allows it, and is
    refused unread, naming the setting, when it does not."""
    # padded with one blank line of 21 MiB of spaces (21 million empty lines took seconds to split)
    big = _write(tmp_path / "padded.txt", REAL[0].read_bytes() + b"\n" + b" " * (21 * 1024 * 1024))
    assert cli_parse(big, _settings(max_file_bytes=32 * 1024 * 1024)) == 0
    assert json.loads(capsys.readouterr().out)["authority_name"] == "Dorset County Council"
    assert cli_parse(big, _settings(max_file_bytes=1024 * 1024)) == 2
    reason = json.loads(capsys.readouterr().out)["reason"]
    assert reason.startswith("file too large") and "OFSTED_MAX_FILE_BYTES" in reason


# --- ofsted parse FILE ------------------------------------------------------------------------------

def test_cli_parse_prints_the_record(capsys):
    assert cli_parse(REAL[0], _settings()) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "parsed"
    assert out["authority_name"] == "Dorset County Council"
    assert out["inspection_start_date"] == "2010-05-18"
    assert len(out["findings"]) == 18


@pytest.mark.parametrize(("make", "reason"), [
    (lambda d: d / "missing.pdf", "cannot read"),
    (lambda d: d, "not a regular file: directory"),
    (lambda d: _fifo(d / "pipe.txt"), "not a regular file: FIFO"),
    (lambda d: Path("/dev/zero"), "not a regular file: character device"),
    (lambda d: _socket(d / "sock.txt"), "not a regular file: socket"),
    (lambda d: _write(d / "empty.txt", b""), "empty file"),
    (lambda d: _sparse(d / "huge.pdf", 20 * 1024 * 1024 + 10), "file too large"),
    (lambda d: _write(d / "school.txt", (FIXTURES / "not_cra_school_letter.txt").read_bytes()),
     "not a contact, referral and assessment inspection letter"),
])
def test_cli_parse_rejects_with_one_line_and_exit_2(tmp_path, capsys, make, reason):
    path = make(tmp_path)
    assert cli_parse(path, _settings()) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["status"] == "rejected"
    assert out["reason"].startswith(reason)
    assert "Traceback" not in captured.out + captured.err


def test_ofsted_parse_command_end_to_end(tmp_path):
    """The installed console script: JSON on stdout, exit 2 for a bad file, never a traceback."""
    bad = _write(tmp_path / "garbage.pdf", b"%PDF-1.4 not really\n%%EOF")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    ok = subprocess.run([sys.executable, "-m", "ingest.cli", "parse", str(REAL[2])],
                        capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["recipient_name"] == "Mr Mark Wyatt"
    rej = subprocess.run([sys.executable, "-m", "ingest.cli", "parse", str(bad)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert rej.returncode == 2
    assert json.loads(rej.stdout) == {"status": "rejected", "reason": "corrupt PDF: PDFium cannot open it"}
    assert "Traceback" not in rej.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _socket(path: Path) -> Path:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)  # nobody writes to it: reading it must not hang
    return path


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)
    return path
