"""Time `dbt build` on the raw tables of N synthetic letters: full build vs incremental.

    .venv/bin/python benchmarks/dbt_bench.py [--letters 5000] [--new 20] [--keep DIR]

1. writes N synthetic letters (`devtools.synthetic`, text) into an inbox and loads them with the
   real loader (`ingest.raw.pipeline.run_load`) into a fresh warehouse in a temp dir;
2. `dbt parse` once (untimed), so every timed build uses dbt's partial parsing like a night does;
3. times `dbt build` on the fresh warehouse (the first, full build);
4. loads `--new` more letters and times `dbt build` (incremental: fct_findings and
   bridge_findings_themes only process the new letters);
5. times `dbt build --full-refresh` on the same data, for comparison;
6. loads `--new` more letters and times the build a night needs after new letters only:
   `dbt build --select source:raw+ --exclude resource_type:unit_test` (what depends on the raw
   tables, without reloading unchanged seeds or re-running the unit tests, which dbt advises
   to run in development and CI rather than in production).

Prints wall times, the incremental / full ratio (target < 25%) and the slowest dbt nodes of
each build (from run_results.json). Everything is written under a temp dir; nothing under data/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from devtools.synthetic import write_corpus
from ingest.raw.pipeline import run_load
from ingest.settings import Settings
from ingest.warehouse.build import run_dbt


def bench_settings(root: Path) -> Settings:
    return Settings.from_env().with_overrides(
        data_dir=root,
        inbox_dir=root / "inbox",
        archive_dir=root / "archive",
        runs_dir=root / "runs",
        work_warehouse=root / "work.duckdb",
        published_warehouse=root / "published.duckdb",
        report_dir=root / "report",
        alert_log=root / "alerts.jsonl",
        dbt_target_dir=root / "dbt_target",
    )


def timed_dbt(settings: Settings, args: list[str]) -> tuple[float, list[tuple[str, float]]]:
    """Wall time of one dbt command (its output swallowed) and its slowest nodes."""
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = run_dbt(settings, args)
    elapsed = time.perf_counter() - t0
    if code != 0:
        sys.stdout.write(out.getvalue()[-4000:])
        raise SystemExit(f"dbt {' '.join(args)} failed with exit code {code}")
    run_results = settings.dbt_target_dir / "run_results.json"
    if args[0] == "parse" or not run_results.is_file():
        return elapsed, []
    results = json.loads(run_results.read_text())["results"]
    nodes = sorted(((r["unique_id"].split(".", 2)[-1], r["execution_time"]) for r in results),
                   key=lambda x: -x[1])
    return elapsed, nodes


def load(settings: Settings, files: list[Path], night: int) -> tuple[float, dict]:
    """Move these corpus files into the inbox (folder `night<n>`) and load the inbox."""
    folder = settings.inbox_dir / f"night{night}"
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        path.rename(folder / path.name)
    t0 = time.perf_counter()
    counts = run_load(settings)
    return time.perf_counter() - t0, counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--letters", type=int, default=5000)
    ap.add_argument("--new", type=int, default=20)
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp dir)")
    args = ap.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="dbt_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(root)
    try:
        # one corpus for every night: it never gives an authority two inspections starting the
        # same day (independent corpora would, and the build fails on such a conflicting pair)
        corpus = write_corpus(root / "corpus", args.letters + 2 * args.new, seed=1, pdf_share=0.0)
        nights = [corpus[:args.letters], corpus[args.letters:args.letters + args.new],
                  corpus[args.letters + args.new:]]
        t_load, counts = load(settings, nights[0], night=1)
        print(f"loaded {counts['new']} letters in {t_load:.1f}s (rejected {counts['rejected']})")
        timed_dbt(settings, ["parse"])

        t_full, nodes_full = timed_dbt(settings, ["build"])
        (n_insp, n_find, n_bridge) = _counts(settings)
        print(f"full build:        {t_full:6.1f}s  ({n_insp} inspections, {n_find} findings, "
              f"{n_bridge} finding-theme rows)")

        t_load2, counts2 = load(settings, nights[1], night=2)
        t_incr, nodes_incr = timed_dbt(settings, ["build"])
        (n_insp2, n_find2, _) = _counts(settings)
        print(f"incremental build: {t_incr:6.1f}s  after {counts2['new']} new letters "
              f"(+{n_insp2 - n_insp} inspections, +{n_find2 - n_find} findings)")

        t_refresh, nodes_refresh = timed_dbt(settings, ["build", "--full-refresh"])
        print(f"full-refresh build:{t_refresh:6.1f}s  (same data as the incremental build)")
        print(f"incremental / full build: {t_incr / t_full:.0%}   "
              f"incremental / full-refresh: {t_incr / t_refresh:.0%}   (target < 25%)")
        t_load3, counts3 = load(settings, nights[2], night=3)
        t_night, nodes_night = timed_dbt(settings, ["build", "--select", "source:raw+",
                                                     "--exclude", "resource_type:unit_test"])
        print(f"incremental, raw-dependent nodes only: {t_night:6.1f}s  after {counts3['new']} new letters "
              f"({len(nodes_night)} of {len(nodes_incr)} nodes)   / full build: {t_night / t_full:.0%}")
        incremental_models = ("fct_findings", "bridge_findings_themes")
        for label, nodes in (("full", nodes_full), ("incremental", nodes_incr)):
            secs = sum(s for name, s in nodes if name in incremental_models)
            print(f"fct_findings + bridge_findings_themes, {label} build: {secs:.2f}s")
        for label, nodes in (("full", nodes_full), ("incremental", nodes_incr)):
            top = ", ".join(f"{name} {secs:.2f}s" for name, secs in nodes[:5])
            print(f"slowest nodes ({label}): {top}")
        node_sum = sum(s for _, s in nodes_incr)
        print(f"incremental: {node_sum:.1f}s inside {len(nodes_incr)} dbt nodes, "
              f"{t_incr - node_sum:.1f}s dbt start-up/scheduling")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _counts(settings: Settings) -> tuple[int, int, int]:
    import duckdb

    with duckdb.connect(str(settings.work_warehouse)) as con:
        return tuple(con.execute(f"select count(*) from marts.{t}").fetchone()[0]
                     for t in ("fct_inspections", "fct_findings", "bridge_findings_themes"))


if __name__ == "__main__":
    sys.exit(main())
