"""Load throughput and memory: inbox -> raw tables vs parse-only, on synthetic letters.

    .venv/bin/python benchmarks/load_bench.py [--n 5000] [--small 1000] [--pdf-share 0.2]

Writes a corpus of synthetic letters (text and PDF, `devtools.synthetic`), then, each in a
fresh subprocess so the peak RSS figures are independent:

- parse-only: read every file and `parse_document` it (one core);
- load: `ingest.raw.pipeline.run_load` into an empty warehouse (read each inbox file once, write
  it durably to the archive, parse in batches to Arrow tables handed to the loader thread,
  bulk insert into DuckDB), every document parsed in the isolated worker pool
  (`ingest.letters.isolate`: per-document CPU, wall and memory limits), once with the default
  number of workers here and once with two;
- load at the smaller size, to show peak memory does not grow with the corpus.

Prints letters/s, the load/parse ratio (target >= 0.80) and peak RSS (target: flat).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def _cpu_s() -> float:
    """CPU seconds used so far by this process (all threads) and its finished children: on a
    shared machine this measures the work, where wall time also measures the neighbours."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child_parse(inbox: Path) -> dict:
    from ingest.letters.models import RejectedDocument
    from ingest.letters.parse import parse_document

    files = sorted(p for p in inbox.rglob("*") if p.is_file())
    c0 = _cpu_s()
    t0 = time.perf_counter()
    parsed = rejected = 0
    for p in files:
        try:
            parse_document(p.read_bytes(), p.name)
            parsed += 1
        except RejectedDocument:
            rejected += 1
    dt = time.perf_counter() - t0
    cpu = _cpu_s() - c0
    return {"mode": "parse", "n": len(files), "parsed": parsed, "rejected": rejected, "seconds": dt,
            "per_s": len(files) / dt, "per_cpu_s": len(files) / cpu, "peak_rss_mb": _peak_rss_mb()}


def _worker_usage(s, workers: int | None) -> tuple[float, int]:
    """CPU seconds and summed peak RSS of the isolated parse workers (children of the
    forkserver, so not in RUSAGE_CHILDREN)."""
    from ingest.letters import isolate
    from ingest.raw.pipeline import parse_workers

    pool = isolate.shared_parser(isolate.Limits.from_settings(s), workers or parse_workers(s))
    return pool.usage()


def child_load(inbox: Path, work: Path, workers: int | None) -> dict:
    from ingest.raw.pipeline import parse_workers, run_load
    from ingest.settings import Settings

    s = Settings.from_env({"OFSTED_DATA_DIR": str(work), "OFSTED_INBOX_DIR": str(inbox)})
    default_workers = parse_workers(s)
    n = sum(1 for p in inbox.rglob("*") if p.is_file())
    c0 = _cpu_s()
    t0 = time.perf_counter()
    counts = run_load(s, parse_workers=workers, on_document=lambda d: None)
    dt = time.perf_counter() - t0
    worker_cpu, worker_rss = _worker_usage(s, workers)
    cpu = _cpu_s() - c0 + worker_cpu
    return {"mode": "load", "n": n, "new": counts["new"], "duplicate": counts["duplicate"],
            "rejected": counts["rejected"], "failed": counts["failed"], "seconds": dt, "per_s": n / dt,
            "per_cpu_s": n / cpu,
            "peak_rss_mb": _peak_rss_mb(), "children_peak_rss_mb": worker_rss / 2**20,
            "batch_size": s.batch_size, "workers": workers or default_workers,
            "default_workers": default_workers}


def child_fetch(inbox: Path, work: Path) -> dict:
    """The local fetcher alone (stat, copy to a verified temp file, hash), for comparison."""
    from ingest.settings import Settings
    from ingest.sources import fetch_documents

    s = Settings.from_env({"OFSTED_DATA_DIR": str(work), "OFSTED_INBOX_DIR": str(inbox)})
    t0 = time.perf_counter()
    n = 0
    for r in fetch_documents(s, {}):
        n += 1
        if r.path:
            Path(r.path).unlink()
    dt = time.perf_counter() - t0
    return {"mode": "fetch", "n": n, "seconds": dt, "per_s": n / dt, "peak_rss_mb": _peak_rss_mb()}


def child_reparse(work: Path, workers: int | None) -> dict:
    """Archive -> parse -> replace rows: the ingest engine without the fetcher."""
    from ingest.raw.pipeline import run_reparse
    from ingest.settings import Settings

    s = Settings.from_env({"OFSTED_DATA_DIR": str(work)})
    c0 = _cpu_s()
    t0 = time.perf_counter()
    counts = run_reparse(s, everything=True, parse_workers=workers, on_document=lambda d: None)
    dt = time.perf_counter() - t0
    cpu = _cpu_s() - c0 + _worker_usage(s, workers)[0]
    n = counts["candidates"]
    return {"mode": "reparse", "n": n, "reparsed": counts["reparsed"], "seconds": dt, "per_s": n / dt,
            "per_cpu_s": n / cpu, "peak_rss_mb": _peak_rss_mb()}


def _run_child(*args: str) -> dict:
    env = os.environ | {"DO_NOT_TRACK": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _subset(corpus: list[Path], n: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in corpus[:n]:
        os.link(p, folder / p.name)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--pdf-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=2010)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))

    if args.child:
        mode, *rest = args.child
        if mode == "parse":
            result = child_parse(Path(rest[0]))
        elif mode == "fetch":
            result = child_fetch(Path(rest[0]), Path(rest[1]))
        elif mode == "reparse":
            result = child_reparse(Path(rest[0]), None if rest[1] == "auto" else int(rest[1]))
        else:
            result = child_load(Path(rest[0]), Path(rest[1]), None if rest[2] == "auto" else int(rest[2]))
        print(json.dumps(result))
        return 0

    from devtools.synthetic import write_corpus

    with tempfile.TemporaryDirectory(prefix="load_bench_") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        corpus = write_corpus(tmp_path / "corpus", args.n, seed=args.seed, pdf_share=args.pdf_share)
        pdfs = sum(p.suffix == ".pdf" for p in corpus)
        print(f"corpus: {len(corpus)} synthetic letters ({pdfs} PDF, {len(corpus) - pdfs} text), "
              f"written in {time.perf_counter() - t0:.1f}s")
        big = tmp_path / "corpus"
        small = _subset(corpus, args.small, tmp_path / "small")

        parse = _run_child("parse", str(big))
        load1 = _run_child("load", str(big), str(tmp_path / "work_1"), "auto")  # what `ofsted load` does here
        load = _run_child("load", str(big), str(tmp_path / "work_big"), "2")
        load_small = _run_child("load", str(small), str(tmp_path / "work_small"), "auto")
        parse_small = _run_child("parse", str(small))
        fetch_only = _run_child("fetch", str(big), str(tmp_path / "work_fetch"))
        reparse = _run_child("reparse", str(tmp_path / "work_1"), "auto")

    default_workers = load1["default_workers"]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          f"default parse worker processes here: {default_workers}")
    print(f"parse-only              {parse['n']:>6} letters: {parse['per_s']:8.1f} letters/s "
          f"({parse['seconds']:.1f}s, peak RSS {parse['peak_rss_mb']:.0f} MB)")
    for name, r in ((f"load ({default_workers} isolated worker)", load1),
                    ("load, 2 isolated workers", load)):
        print(f"{name:<23} {r['n']:>6} letters: {r['per_s']:8.1f} letters/s "
              f"({r['seconds']:.1f}s, {r['per_s'] / parse['per_s']:.0%} of parse-only; peak RSS "
              f"{r['peak_rss_mb']:.0f} MB, workers {r['children_peak_rss_mb']:.0f} MB; "
              f"{r['new']} new, {r['duplicate']} duplicate, {r['rejected']} rejected)")
    print("target: load >= 80% of parse-only speed")
    print(f"CPU cost (letters per CPU-second, all threads and workers): parse-only {parse['per_cpu_s']:.0f}, "
          f"load {load1['per_cpu_s']:.0f} ({load1['per_cpu_s'] / parse['per_cpu_s']:.0%}), "
          f"load with 2 workers {load['per_cpu_s']:.0f}, reparse {reparse['per_cpu_s']:.0f} "
          f"({reparse['per_cpu_s'] / parse['per_cpu_s']:.0%})")
    print(f"where the time goes: the local fetcher alone (copy + hash to a verified temp file) "
          f"{fetch_only['per_s']:.1f} letters/s ({fetch_only['per_s'] / parse['per_s']:.0%} of parse-only); "
          f"archive -> parse -> load without fetching (`reparse --all`) "
          f"{reparse['per_s']:.1f} letters/s ({reparse['per_s'] / parse['per_s']:.0%} of parse-only)")
    print(f"peak RSS, load (loader process; workers apart): "
          f"{load_small['n']} letters {load_small['peak_rss_mb']:.0f} MB, "
          f"{load1['n']} letters {load1['peak_rss_mb']:.0f} MB")
    print(f"peak RSS, parse-only: {parse_small['n']} letters {parse_small['peak_rss_mb']:.0f} MB, "
          f"{parse['n']} letters {parse['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
