"""Parse time against input size, on the text shapes that made the old patterns backtrack.

    .venv/bin/python benchmarks/parse_scaling_bench.py [--root OTHER_CHECKOUT] [--cap 30]

For each shape of tests/pathological_text.py, letters of 10 KB to 2 MB are parsed once each
(CPU seconds of one process, `parse_document` only). Linear parsing shows a constant
microseconds-per-KB column. With `--root`, the parser of another checkout (say the code before
this change) is measured the same way; a measure that passes `--cap` CPU seconds is stopped and
shown as "> cap" (the larger sizes are then skipped for that shape).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES_KB = (10, 100, 500, 2000)


def _child(root: str, shape: str, kb: int) -> None:
    sys.path[:0] = [str(ROOT / "tests"), root]
    import resource
    import time

    from pathological_text import letter

    from ingest.letters.models import RejectedDocument
    from ingest.letters.parse import parse_document

    data = letter([shape], kb * 1024)
    t0 = time.process_time()
    try:
        parse_document(data, "letter.txt")
        outcome = "parsed"
    except RejectedDocument as rej:
        outcome = rej.reason
    print(json.dumps({"cpu_s": time.process_time() - t0, "outcome": outcome,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(root: Path, shape: str, kb: int, cap: float) -> dict | None:
    cmd = [sys.executable, __file__, "--child", str(root), shape, str(kb)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap + 15, check=True,
                             preexec_fn=lambda: __import__("resource").setrlimit(
                                 __import__("resource").RLIMIT_CPU, (int(cap) + 1, int(cap) + 1)))
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(ROOT), help="checkout whose parser to measure")
    ap.add_argument("--cap", type=float, default=30.0)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    sys.path.insert(0, str(ROOT / "tests"))
    from pathological_text import FRAGMENTS

    print(f"parser of {args.root}")
    print(f"{'shape':<10} {'KB':>6} {'CPU s':>8} {'us/KB':>7} {'RSS MB':>7}  outcome")
    for shape in FRAGMENTS:
        for kb in SIZES_KB:
            r = measure(Path(args.root), shape, kb, args.cap)
            if r is None:
                print(f"{shape:<10} {kb:>6} {'> ' + format(args.cap, 'g'):>8}")
                break
            print(f"{shape:<10} {kb:>6} {r['cpu_s']:8.3f} {r['cpu_s'] / kb * 1e6:7.0f} {r['rss_mb']:7.0f}  "
                  f"{r['outcome'][:60]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
