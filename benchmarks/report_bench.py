"""How long the static report takes to build, how many pages it writes and how big they are.

Builds a warehouse from N synthetic letters (`devtools.synthetic.write_corpus`, default 5,000,
text only, fixed seed) the way the night does without Airflow (load, `dbt build`, publish),
then writes the report twice into a fresh folder: cold (the first report there) and again
(with "new since the last report" compared). Prints wall and CPU time of each, the page
count, the search index size and the total size. Figures, never assertions.

    .venv/bin/python benchmarks/report_bench.py [--letters 5000] [--keep DIR]

`--keep DIR` builds the warehouse in DIR (or reuses the one already there) instead of a
temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.synthetic import write_corpus  # noqa: E402
from ingest.raw.pipeline import run_load  # noqa: E402
from ingest.report.render import REPORT_FILE, SEARCH_INDEX_FILE, write_report  # noqa: E402
from ingest.settings import PROJECT_ROOT, Settings  # noqa: E402
from ingest.warehouse.build import run_dbt  # noqa: E402
from ingest.warehouse.publish import publish_warehouse  # noqa: E402


def settings_for(root: Path) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFSTED_")}
    env.update(OFSTED_DATA_DIR=str(root / "data"), OFSTED_INBOX_DIR=str(root / "inbox"),
               OFSTED_DBT_TARGET_DIR=str(root / "dbt_target"), OFSTED_ALERT_LOG=str(root / "alerts.jsonl"))
    return Settings.from_env(env)


def build_warehouse(root: Path, letters: int) -> Settings:
    settings = settings_for(root)
    if settings.published_warehouse.is_file():
        print(f"reusing the warehouse in {root}")
        return settings
    inbox = root / "inbox"
    shutil.copytree(PROJECT_ROOT / "data" / "sample_letters", inbox)
    write_corpus(inbox / "synthetic", letters, seed=6, pdf_share=0.0)
    t0 = time.perf_counter()
    run_load(settings)
    if run_dbt(settings, ["build"]) != 0:
        raise SystemExit("dbt build failed")
    publish_warehouse(settings.work_warehouse, settings.published_warehouse)
    print(f"warehouse of {letters:,} synthetic letters + the samples built in "
          f"{time.perf_counter() - t0:.1f}s")
    return settings


def measure(label: str, settings: Settings, out: Path) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    write_report(settings, None, out_dir=out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    files = [p for p in out.rglob("*") if p.is_file()]
    pages = [p for p in files if p.suffix == ".html"]
    letters = [p for p in files if p.parent.name == "letters"]
    size = sum(p.stat().st_size for p in files if p not in letters)
    print(f"\n== {label}: wall {wall:.2f}s, CPU {cpu:.2f}s")
    print(f"   pages            {len(pages):>8,}  ({len(pages) - 1:,} authority pages)")
    print(f"   overview         {(out / REPORT_FILE).stat().st_size / 1e6:8.2f} MB")
    print(f"   search index     {(out / SEARCH_INDEX_FILE).stat().st_size / 1e6:8.2f} MB")
    print(f"   report files     {size / 1e6:8.2f} MB (without the letter copies)")
    print(f"   letter copies    {len(letters):>8,}  (hard links into the archive where possible)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--letters", type=int, default=5000)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the warehouse here")
    args = ap.parse_args()
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="report_bench_")
    root = args.keep or Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    try:
        settings = build_warehouse(root, args.letters)
        out = root / "report_bench_out"
        shutil.rmtree(out, ignore_errors=True)
        measure("first report (cold)", settings, out)
        measure("second report (compared with the first)", settings, out)
    finally:
        if tmp:
            tmp.cleanup()


if __name__ == "__main__":
    main()
