"""The synthetic letter generator: deterministic, varied, and its expected parse matches its text."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter

import pypdfium2 as pdfium
import pytest

from devtools.synthetic import AUTHORITIES, generate_letter, load_authorities, render_pdf, write_corpus
from ingest.letters.models import CATEGORIES, Letter


def _norm(s: str) -> str:
    s = s.replace("\uf0b7", " ").replace("\u2022", " ")
    return re.sub(r"\s+", " ", s).strip()


def _body_without_bullets(text: str) -> str:
    # remove the bullet markers at line starts, then join every line break and page gap
    lines = [re.sub(r"^\s*(?:[-*\u2013\u2022\uf0b7])\s+", "", ln) for ln in text.splitlines()]
    return _norm(" ".join(lines))


def test_same_seed_same_letter_and_pdf():
    a, b = generate_letter(42), generate_letter(42)
    assert a.text == b.text and a.expected == b.expected and a.to_bytes() == b.to_bytes()
    assert render_pdf(a) == render_pdf(b)
    assert generate_letter(43).text != a.text


def test_expected_record_is_what_the_text_says():
    for seed in range(60):
        s = generate_letter(seed)
        e = s.expected
        body = _body_without_bullets(s.text)
        assert f"in {e['authority_name']} which was conducted on" in body
        start = dt.date.fromisoformat(e["inspection_start_date"])
        end = dt.date.fromisoformat(e["inspection_end_date"])
        letter_date = dt.date.fromisoformat(e["letter_date"])
        assert dt.date(2009, 6, 1) <= start < end <= dt.date(2012, 3, 31)
        assert 14 <= (letter_date - end).days <= 46
        assert f"{letter_date.day} " in s.text.split("\n\n")[1] or str(letter_date.year) in s.text
        assert e["summary"] in body
        assert e["inspector_name"] in body
        for f in e["findings"]:
            assert f["text"] in body, (seed, f["text"])
            assert f["heading"] in s.text
        counts = Counter(f["category"] for f in e["findings"])
        assert {c: counts.get(c, 0) for c in CATEGORIES} == e["counts"]
        for c in e["copy_recipients"]:
            assert f"{c['name']}, {c['role']}" in body
        ordinals = [f["ordinal"] for f in e["findings"] if f["category"] == "area_for_development"]
        assert ordinals == list(range(1, len(ordinals) + 1))


def test_letters_vary_like_the_real_ones():
    letters = [generate_letter(i) for i in range(400)]
    assert len({s.authority.gss_code for s in letters}) > 100
    headings = Counter(f["heading"] for s in letters for f in s.expected["findings"])
    assert headings["Satisfactory practice"] > 0
    assert headings["The service meets the requirements of statutory guidance in the following areas"] > 0
    assert headings["Areas for priority action"] > 0
    assert {s.encoding for s in letters} == {"utf-8", "utf-8-sig", "cp1252"}
    assert {s.newline for s in letters} == {"\n", "\r\n"}
    assert any(s.layout["one_line_address"] for s in letters)
    assert any("\u2013" in s.text for s in letters)  # "8–9 March 2011"
    assert any(re.search(r"\d+ [A-Z][a-z]+ and \d+ [A-Z][a-z]+ \d{4}", s.text) for s in letters)
    assert any(s.expected["previous_inspection"] for s in letters)
    # page-break gaps inside a finding: a line followed by blank lines and a lower-case continuation
    assert any(re.search(r"[a-z,]\n\n+[a-z]", s.text) for s in letters)
    themes = Counter(f["theme"] for s in letters for f in s.expected["findings"])
    assert len(themes) == 18
    inspectors = {s.expected["inspector_name"] for s in letters}
    assert len(inspectors) > 15


def test_authority_names_as_letters_write_them():
    names = {a.letter_name for a in AUTHORITIES}
    assert len(AUTHORITIES) == 152 and len({a.gss_code for a in AUTHORITIES}) == 152
    for name in ("Dorset County Council", "Dudley Metropolitan Borough Council", "London Borough of Camden",
                 "Royal Borough of Kingston upon Thames", "City of York Council",
                 "Kingston upon Hull City Council", "Bournemouth Borough Council", "Leeds City Council"):
        assert name in names
    s = generate_letter(1, authority="E10000009")
    assert s.expected["authority_name"] == "Dorset County Council" and s.expected["gss_code"] == "E10000009"


def test_authorities_are_the_seeds_in_force_in_2010(tmp_path):
    seed = tmp_path / "local_authorities.csv"
    seed.write_text(
        "gss_code,dfe_la_code,authority_name,authority_type,region,valid_from,valid_to\n"
        "E10000009,835,Dorset (renamed),Counties,South West,,2019-03-31\n"
        "E06000059,838,Dorset,Unitary Authorities,South West,2019-04-01,\n"  # after 2010: left out
        "E06000023,801,\"Bristol, City of\",Unitary Authorities,South West,,\n",
        encoding="utf-8",
    )
    bristol, dorset = load_authorities(seed)
    assert (dorset.gss_code, dorset.la_name, dorset.letter_name, dorset.place) == (
        "E10000009", "Dorset (renamed)", "Dorset County Council", "Dorset (renamed)")
    assert (bristol.la_name, bristol.letter_name, bristol.place) == (
        "Bristol, City of", "Bristol City Council", "Bristol")

    with seed.open("a", encoding="utf-8") as f:
        f.write("E06009999,999,Nowhere,Unitary Authorities,South West,2009-04-01,\n")
    with pytest.raises(ValueError, match="E06009999 Nowhere has no letter-style name"):
        load_authorities(seed)


def test_to_letter_and_bytes_round_trip():
    s = generate_letter(7)
    letter = s.to_letter("x")
    assert isinstance(letter, Letter)
    assert letter.counts() == s.expected["counts"]
    raw = s.to_bytes()
    text = raw.decode(s.encoding)
    assert text.replace("\r\n", "\n") == s.text


def test_pdf_has_pages_footers_and_every_finding():
    s = next(generate_letter(i) for i in range(100) if len(generate_letter(i).expected["findings"]) > 14)
    doc = pdfium.PdfDocument(render_pdf(s))
    pages = [p.get_textpage().get_text_range() for p in doc]
    assert len(pages) >= 2
    for n, page in enumerate(pages, 1):
        assert f"Page {n} of {len(pages)}" in page
    body = _norm(" ".join(pages))
    for f in s.expected["findings"]:
        assert f["text"] in body
    assert s.expected["authority_name"] in body


def test_write_corpus(tmp_path):
    paths = write_corpus(tmp_path / "c", 30, seed=5, pdf_share=0.3, with_expected=True)
    assert len(paths) == 30 and all(p.exists() for p in paths)
    exts = Counter(p.suffix for p in paths)
    assert exts[".pdf"] > 0 and exts[".txt"] > 0
    assert all(p.read_bytes()[:4] == b"%PDF" for p in paths if p.suffix == ".pdf")
    exp = json.loads(paths[0].with_name(paths[0].name + ".expected.json").read_text())
    assert exp["source_format"] in ("pdf", "text") and exp["findings"]
    again = write_corpus(tmp_path / "d", 30, seed=5, pdf_share=0.3)
    assert [p.name for p in again] == [p.name for p in paths]
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_corpus_meets_the_data_quality_rules_it_is_used_to_exercise():
    """Benchmarks run whole nights on synthetic corpora: the corpus itself must pass the DQ gate
    (3-40 findings per letter, no authority inspected twice starting the same day: a correction
    is a second letter about the same inspection, so it is not counted as another)."""
    from collections import Counter

    from devtools.synthetic import iter_corpus

    starts: Counter[tuple[str, str]] = Counter()
    for _, letter, _ in iter_corpus(1500, seed=7):
        assert 3 <= len(letter.expected["findings"]) <= 40
        if "correction" in letter.expected:
            continue
        starts[(letter.expected["gss_code"], letter.expected["inspection_start_date"])] += 1
    assert max(starts.values()) == 1


# --- the programme: one inspection per authority per year, re-inspections, corrections ----------

def _programme_year(start: dt.date) -> int:
    """The programme year (April-March) an inspection started in, by its first calendar year."""
    return start.year if start.month >= 4 else start.year - 1


def test_a_corpus_inspects_each_authority_once_a_programme_year_and_corrects_a_few():
    from devtools.synthetic import MIN_DAYS_BETWEEN_INSPECTIONS, iter_corpus

    letters = [letter for _, letter, _ in iter_corpus(500, seed=6, pdf_share=0.0)]
    originals = [le for le in letters if "correction" not in le.expected]
    corrections = [le for le in letters if "correction" in le.expected]
    per_year: Counter[tuple[str, int]] = Counter()
    starts: dict[str, list[dt.date]] = {}
    for le in originals:
        start = dt.date.fromisoformat(le.expected["inspection_start_date"])
        per_year[(le.expected["gss_code"], _programme_year(start))] += 1
        starts.setdefault(le.expected["gss_code"], []).append(start)
    # most authorities of 2010 are there, each inspected in each of the three programme years
    assert len(starts) >= 140
    years = {y for _, y in per_year}
    assert years == {2009, 2010, 2011}
    complete = [g for g in starts if all((g, y) in per_year for y in years)]
    assert len(complete) >= 0.9 * len(starts)
    # a few authority-years have a second inspection, never closer than the minimum
    twice = sum(1 for n in per_year.values() if n > 1)
    assert max(per_year.values()) == 2 and 0.01 * len(per_year) <= twice <= 0.12 * len(per_year)
    for dates in starts.values():
        dates.sort()
        gaps = [(b - a).days for a, b in zip(dates, dates[1:], strict=False)]
        assert all(gap >= MIN_DAYS_BETWEEN_INSPECTIONS for gap in gaps)
    # a stated previous inspection is the authority's real previous one
    for le in originals:
        stated = le.expected["previous_inspection"]
        if stated:
            start = dt.date.fromisoformat(le.expected["inspection_start_date"])
            before = max(d for d in starts[le.expected["gss_code"]] if d < start)
            assert stated == f"{before:%B %Y}"
    # about 3% of the letters are corrections, of every kind
    assert 0.015 * len(letters) <= len(corrections) <= 0.06 * len(letters)
    assert {c.expected["correction"]["change"] for c in corrections} == {"redated", "reworded", "moved",
                                                                           "removed"}


def test_a_correction_is_a_later_letter_about_the_same_inspection_with_one_change():
    from devtools.synthetic import correct_letter
    from ingest.letters.parse import parse_document

    seen: set[str] = set()
    for seed in range(60):
        original = generate_letter(seed)
        fixed = correct_letter(original, 1000 + seed)
        e, o, record = fixed.expected, original.expected, fixed.expected["correction"]
        seen.add(record["change"])
        assert record["of_seed"] == original.seed and record["first_letter_date"] == o["letter_date"]
        for same in ("authority_name", "inspection_start_date", "inspection_end_date", "inspector_name"):
            assert e[same] == o[same]
        assert e["letter_date"] > o["letter_date"]
        old = [(f["category"], f["text"]) for f in o["findings"]]
        new = [(f["category"], f["text"]) for f in e["findings"]]
        change = record["change"]
        if change == "redated":
            assert new == old
        elif change == "moved":
            assert sorted(new) == sorted(old) and new != old
            section = [f for f in e["findings"] if f["category"] == record["category"]]
            moved = section[record["new_ordinal"] - 1]
            assert moved["text"] == record["old_text"]
        elif change == "removed":
            assert len(new) == len(old) - 1 and (record["category"], record["old_text"]) not in new
        else:
            assert record["old_text"] != record["new_text"] and len(new) == len(old)
            assert (record["category"], record["new_text"]) in new
            assert (record["category"], record["old_text"]) not in new
        assert e["counts"] == {c: sum(1 for f in e["findings"] if f["category"] == c) for c in e["counts"]}
        # the parser reads the re-issued letter as its expected parse says
        parsed = parse_document(fixed.to_bytes(), "letter.txt")
        assert parsed.letter_date.isoformat() == e["letter_date"]
        assert [(f.category, f.ordinal, f.text) for f in parsed.findings] == [
            (f["category"], f["ordinal"], f["text"]) for f in e["findings"]]
    assert seen == {"redated", "reworded", "moved", "removed"}


def test_the_shares_are_configurable():
    from devtools.synthetic import iter_corpus

    letters = [le for _, le, _ in iter_corpus(300, seed=3, pdf_share=0.0, reinspected_share=0.0,
                                               corrected_share=0.0)]
    per_year = Counter((le.expected["gss_code"], _programme_year(
        dt.date.fromisoformat(le.expected["inspection_start_date"]))) for le in letters)
    assert not any("correction" in le.expected for le in letters)
    assert set(per_year.values()) == {1}
    many = [le for _, le, _ in iter_corpus(200, seed=3, pdf_share=0.0, corrected_share=0.5)]
    assert 0.25 * 200 <= sum("correction" in le.expected for le in many) <= 0.45 * 200


def test_a_corpus_beyond_the_programme_keeps_each_inspection_distinct_and_ends():
    """More letters than the programme held (about 480): later rounds bring an authority's
    inspections closer, never to the same first day, and the generator always ends (a corpus
    larger than any benchmark asks for took a nightly CI run to its timeout once)."""
    from devtools.synthetic import _min_gap, iter_corpus

    assert [_min_gap(r) for r in range(9)] == [120, 60, 30, 15, 7, 3, 1, 1, 1]
    starts: dict[str, list[dt.date]] = {}
    for _, letter, _ in iter_corpus(3000, seed=9, pdf_share=0.0, corrected_share=0.0):
        starts.setdefault(letter.expected["gss_code"], []).append(
            dt.date.fromisoformat(letter.expected["inspection_start_date"]))
    assert sum(map(len, starts.values())) == 3000
    assert all(len(set(dates)) == len(dates) for dates in starts.values())
