"""Write dbt_project/seeds/bank_holidays.csv: England and Wales bank holidays from the
maintained `holidays` package (dev only, not a run-time dependency of the product).

    pip install holidays && python devtools/make_bank_holidays_seed.py [--first 2005] [--last 2035]

One row per holiday date: holiday_date, holiday_name, source (package and version). Run it
again when the range must grow (the dbt test `assert_bank_holidays_cover_dim_dates` warns when
dim_dates reaches past the seed's last year) or when a new one-off bank holiday is announced.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

SEED = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "bank_holidays.csv"


def main(argv: list[str] | None = None) -> int:
    import holidays

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=int, default=2005)
    ap.add_argument("--last", type=int, default=2035)
    args = ap.parse_args(argv)
    # England's calendar (subdivision ENG); Wales has the same bank holidays.
    days = holidays.country_holidays("GB", subdiv="ENG", years=range(args.first, args.last + 1))
    source = f"holidays {holidays.__version__} (country GB, subdiv ENG)"
    with SEED.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["holiday_date", "holiday_name", "source"])
        for day, name in sorted(days.items()):
            writer.writerow([day.isoformat(), name, source])
    print(f"wrote {len(days)} bank holidays {args.first}-{args.last} to {SEED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
