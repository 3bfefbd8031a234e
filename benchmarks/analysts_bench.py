"""What the analysts' tables cost the night, and how fast a search answers, at N synthetic letters.

    PYTHONPATH=. .venv/bin/python benchmarks/analysts_bench.py [--letters 5000] [--new 20] [--keep DIR]

1. loads N synthetic letters (devtools.synthetic) with the real loader into a fresh warehouse
   in a temp dir, `dbt parse` once (untimed);
2. `dbt build` (full) and, after `--new` more letters, `dbt build` (incremental, as a night);
3. from each build's run_results.json, the execution time of the analysts' nodes: the models
   findings_wide, bridge_authority_successions, finding_terms (token index + search macros),
   dim_dates (bank holidays, working days), inspections_wide, authority_comparisons,
   fct_finding_changes (what corrections changed: the generator re-issues about 3% of letters), the seeds bank_holidays and
   authority_split_populations, and every test on them or named dq_* (the DQ warnings); and the
   whole build's node time, for the share;
4. times `ingest.warehouse.search.search` for a few queries (median of 5 runs each) on the
   built warehouse, read-only, and prints the index's size.

Prints figures only; nothing is asserted. Everything is written under a temp dir.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dbt_bench import bench_settings, load, timed_dbt  # noqa: E402

from devtools.synthetic import write_corpus  # noqa: E402
from ingest.settings import Settings  # noqa: E402
from ingest.warehouse.search import search  # noqa: E402

MODELS = ("findings_wide", "bridge_authority_successions", "finding_terms", "dim_dates",
          "inspections_wide", "authority_comparisons", "fct_finding_changes")
SEEDS = ("bank_holidays", "authority_split_populations")
QUERIES = ("thresholds", "threshold guidance", "management oversight of casework",
           "common assessment framework", "zeppelin")


def analysts_nodes(settings: Settings) -> tuple[list[tuple[str, float]], float]:
    """(node, seconds) of the analysts' nodes of the last dbt command, and all nodes' seconds."""
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text())["nodes"]
    ours = set(MODELS) | set(SEEDS)
    picked = []
    for r in results:
        node = manifest.get(r["unique_id"], {})
        name = node.get("name", r["unique_id"])
        parents = {p.split(".")[-1] for p in node.get("depends_on", {}).get("nodes", [])}
        is_ours = name in ours or name.startswith("dq_") or (
            node.get("resource_type") == "test" and parents & ours)
        if is_ours:
            picked.append((name, r["execution_time"]))
    return sorted(picked, key=lambda x: -x[1]), sum(r["execution_time"] for r in results)


def report(label: str, wall: float, settings: Settings) -> None:
    nodes, total = analysts_nodes(settings)
    ours = sum(s for _, s in nodes)
    print(f"{label}: build {wall:.1f}s wall, {total:.1f}s in dbt nodes; analysts' nodes "
          f"{ours:.2f}s ({ours / total:.0%}) in {len(nodes)} nodes")
    print("   slowest: " + ", ".join(f"{n} {s:.2f}s" for n, s in nodes[:6]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--letters", type=int, default=5000)
    ap.add_argument("--new", type=int, default=20)
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp dir)")
    args = ap.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="analysts_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(root)
    try:
        # one corpus split into two nights, as dbt_bench does (independent corpora would give an
        # authority two inspections starting the same day, a conflict that fails the build)
        corpus = write_corpus(root / "corpus", args.letters + args.new, seed=1, pdf_share=0.0)
        t_load, counts = load(settings, corpus[:args.letters], night=1)
        print(f"loaded {counts['new']} letters in {t_load:.1f}s")
        timed_dbt(settings, ["parse"])
        wall, _ = timed_dbt(settings, ["build"])
        report("full build", wall, settings)
        _, counts2 = load(settings, corpus[args.letters:], night=2)
        wall, _ = timed_dbt(settings, ["build"])
        report(f"incremental build after {counts2['new']} new letters", wall, settings)

        import duckdb

        with duckdb.connect(str(settings.work_warehouse), read_only=True) as con:
            rows, terms, findings = con.execute(
                "select count(*), count(distinct term), count(distinct finding_key) "
                "from marts.finding_terms").fetchone()
            print(f"index: {rows:,} (term, finding) rows, {terms:,} terms, {findings:,} findings")
        for q in QUERIES:
            times, hits = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                hits = search(settings.work_warehouse, q, limit=20)
                times.append(time.perf_counter() - t0)
            print(f"search {q!r}: {statistics.median(times) * 1000:.0f} ms median of 5, "
                  f"{len(hits)} hits (limit 20)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
