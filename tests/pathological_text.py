"""Text shapes that made the old parser's patterns backtrack (each a lazy or nested quantifier
rescanning the rest of the text from every start), assembled into letters of any size.
Shared by tests/test_parse_linear.py and benchmarks/parse_scaling_bench.py."""

from __future__ import annotations

# each fragment starts a match that can never complete (no tail after it)
FRAGMENTS: dict[str, str] = {
    "authority": "children's services in the ",  # ... which was conducted (never comes)
    "subject": "within the ",  # ... children's services (never comes)
    "statutory": "under section 20 of the ",  # ... Act 1989 before a full stop (never comes)
    "summary": "The inspection identified ",  # ... a full stop (never comes)
    "hyphen": "ab-",  # a hyphen chain that never reaches a line-end break
    "filler": "word ",
}

_HEAD = ("12 March 2010\n\nMr A Person\nDirector of Children's Services\nSometown Council\n\n"
         "Dear Mr Person\n\nAnnual unannounced inspection of contact, referral and assessment "
         "arrangements within {subject}\n\nThe inspection took place on 18 and 19 May 2010 {intro}\n\n")
_TAIL = ("Areas for development\n\n- Re-\nview the thresholds for referrals.\n\n"
         "Any areas for development identified above will be considered in any future inspection.\n\n"
         "Yours sincerely\n\nA Inspector\nHer Majesty's Inspector\n")


def letter(parts: list[str], size: int) -> bytes:
    """A letter whose subject and introduction repeat `parts` (fragment names) to about `size` bytes."""
    unit = "".join(FRAGMENTS[p] for p in parts) or FRAGMENTS["filler"]
    body = unit * max(1, size // len(unit))
    # the authority is named in the subject (so parsing goes on to the later fields), unless
    # the subject itself is the shape under test
    subject = body[: size // 4] if "subject" in parts else "Sometown children's services " + body[: size // 4]
    return _HEAD.format(subject=subject, intro=body).encode() + _TAIL.encode()
