"""What one big file in `OFSTED_EXTERNAL_DIR` costs every `ofsted sql`: wall time and peak RSS.

A 150 MB one-line CSV (slow to sniff: one line is not split across threads) beside a small
one, `OFSTED_SQL_TIMEOUT_S=2`, three `ofsted sql "select 1"` in a row in a fresh data directory
(the first loads the folder, the next read the cache). Prints one line per query.

    .venv/bin/python benchmarks/external_bench.py [--mb 150]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=150)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ofsted-ext-bench-") as tmp:
        root = Path(tmp)
        ext = root / "ext"
        ext.mkdir()
        (ext / "small.csv").write_text("a\n1\n")
        with open(ext / "big.csv", "w") as f:
            f.write("c\n" + "y" * (args.mb * 2**20) + "\n")
        wh = root / "ofsted.duckdb"
        con = duckdb.connect(str(wh))
        con.execute("create schema marts; create table marts.t as select 1 as x")
        con.close()
        env = {**os.environ, "OFSTED_DATA_DIR": str(root / "data"), "OFSTED_EXTERNAL_DIR": str(ext),
               "OFSTED_SQL_TIMEOUT_S": "2", "OFSTED_EXTERNAL_MAX_FILE_BYTES": "1GB"}
        for i in range(args.runs):
            t0 = time.perf_counter()
            done = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m", "ingest.cli",
                                   "sql", "--warehouse", str(wh), "select 1 as one"],
                                  env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            lines = done.stderr.splitlines()
            rss = next((int(ln.split("=")[1]) for ln in reversed(lines) if ln.startswith("maxrss_kb=")), 0)
            warn = [ln for ln in lines if "warning" in ln or "error" in ln]
            print(f"query {i + 1}: exit {done.returncode}, {wall:.2f} s wall, peak RSS {rss / 1024:.0f} MB; "
                  f"{' | '.join(warn) or 'no warnings'}")


if __name__ == "__main__":
    main()
