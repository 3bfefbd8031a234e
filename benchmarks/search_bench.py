"""The report's search box at scale: index size, load time and query time in headless Chromium,
beside `ofsted search` (SQL) on the same warehouse. Figures, never assertions.

Builds (or reuses, with --keep DIR) a warehouse of N synthetic letters plus the samples the way
the night does (benchmarks/report_bench.py), writes the report, opens it from file:// and runs
each query five times through the function the search box calls (`window.ofstedSearch`).

    .venv/bin/python benchmarks/search_bench.py [--letters 5000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from _browser_support import open_page  # noqa: E402
from report_bench import build_warehouse  # noqa: E402

from ingest.report.render import SEARCH_INDEX_FILE, write_report  # noqa: E402
from ingest.warehouse.search import search  # noqa: E402

QUERIES = [("supervision", False), ("supervision unallocated", False), ("supervision unallocated", True),
           ("children's services social workers", True), ("zeppelin", False)]

LOAD_JS = """() => {
  const t = performance.now();
  const e = performance.getEntriesByType("navigation")[0];
  return {dom_content_loaded_ms: e.domContentLoadedEventEnd, load_ms: e.loadEventEnd};
}"""
QUERY_JS = """([q, a]) => {
  const times = [];
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    n = window.ofstedSearch(q, a).hits.length;
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  return {hits: n, median_ms: times[2], max_ms: times[4]};
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--letters", type=int, default=5000)
    ap.add_argument("--keep", type=Path, help="build the warehouse in DIR, or reuse the one there")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="search_bench_"))
    settings = build_warehouse(root, args.letters)
    out = root / "report"
    t0 = time.perf_counter()
    page_path = write_report(settings.with_overrides(report_dir=out), None)
    print(f"report written in {time.perf_counter() - t0:.1f}s")
    index = (out / SEARCH_INDEX_FILE).read_bytes()
    print(f"search index: {len(index):,} bytes, {len(gzip.compress(index)):,} gzipped")
    with open_page(page_path.as_uri()) as (page, _):
        print("page in Chromium (file://):", page.evaluate(LOAD_JS))
        for q, any_word in QUERIES:
            r = page.evaluate(QUERY_JS, [q, any_word])
            sql = []
            for _ in range(5):
                t = time.perf_counter()
                search(settings.published_warehouse, q, limit=1000, any_word=any_word)
                sql.append(time.perf_counter() - t)
            print(f"{q!r:40} {'any' if any_word else 'every':5} {r['hits']:>7,} findings  "
                  f"browser median {r['median_ms']:.1f} ms (max {r['max_ms']:.1f})  "
                  f"ofsted search (SQL, connection each time) median {statistics.median(sql) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
