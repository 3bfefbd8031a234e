"""Per-attack cost of the hostile corpus (tests/hostile_corpus.py), and one `ofsted load` of all
of it beside the real letters.

    .venv/bin/python benchmarks/hostile_bench.py [--only NAME]

Each attack is parsed by `ofsted parse` in a fresh subprocess (the isolated worker included):
prints wall seconds, peak RSS of the whole process tree (sampled every 50 ms, summed over the
tree) and the outcome. Then `ofsted load` of the real letters plus every attack: wall seconds,
peak summed RSS, exit code, and the summary line (targets: < 240 s, < 2.5 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile_corpus import ATTACKS, build  # noqa: E402


def _tree_rss(pid: int) -> int:
    """Summed RSS (bytes) of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                parts = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(d))
            rss[int(d)] = int(parts[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def measure(cmd: list[str], env: dict[str, str], timeout: float = 900) -> tuple[float, int, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        if time.perf_counter() - t0 > timeout:
            proc.kill()
        time.sleep(0.05)
    out = proc.stdout.read() if proc.stdout else ""
    return time.perf_counter() - t0, peak, proc.returncode, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    args = ap.parse_args()
    ofsted = str(Path(sys.executable).parent / "ofsted")
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox"
        shutil.copytree(ROOT / "data" / "sample_letters", inbox)
        build(inbox)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OFSTED_")}
        env |= {"OFSTED_DATA_DIR": str(Path(tmp) / "data"), "OFSTED_INBOX_DIR": str(inbox)}
        print(f"{'attack':<24} {'seconds':>8} {'peak MB':>8}  outcome")
        for a in ATTACKS:
            if args.only and a.name != args.only:
                continue
            secs, peak, code, out = measure([ofsted, "parse", str(inbox / a.name)], env)
            try:
                reason = json.loads(out).get("reason", "parsed")
            except ValueError:
                reason = (out.strip().splitlines() or [f"exit {code}"])[-1][:90]
            print(f"{a.name:<24} {secs:8.1f} {peak / 1e6:8.0f}  exit {code}: {reason}", flush=True)
        if args.only:
            return
        secs, peak, code, out = measure([ofsted, "load"], env)
        print(f"\nofsted load (3 real letters + {len(ATTACKS)} attacks): {secs:.1f} s, "
              f"peak {peak / 1e6:.0f} MB summed RSS, exit {code}")
        print("  " + out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
