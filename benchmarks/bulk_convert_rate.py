"""Bulk API 2.0 CSV parse + convert throughput (records/s) for a User-like page: the floor that
was asserted in `test_client_bulk.py` (a wall-clock figure, so it lives here, not in the tests).

    .venv/bin/python -m benchmarks.bulk_convert_rate [--records N] [--floor RATE]

Prints the rate; exits 1 below the floor (200k records/s; about 0.6-0.8M on 2 idle cores).
Runs with the project's .venv (it imports the package); `make bench-micro` runs it.
"""

from __future__ import annotations

import argparse
import time

from sf_lakehouse.salesforce.convert import csv_to_arrow
from sf_lakehouse_tests.test_client_bulk import FIELDS

FLOOR = 200_000


def page(records: int) -> bytes:
    header = '"Id","Name","IsActive","SystemModstamp","Hire_Date__c","Score__c","Seats__c"'
    row = (
        '"005{i:015d}","Name {i}","true","2026-03-01T08:{m:02d}:00.000Z","2026-02-01","{i}.5","{i}"'
    )
    lines = [header] + [row.format(i=i, m=i % 60) for i in range(records)]
    return ("\n".join(lines) + "\n").encode()


def rate(records: int = 50_000, repeats: int = 4) -> float:
    data = page(records)
    csv_to_arrow(data, FIELDS)  # warm up
    started = time.perf_counter()
    converted = sum(csv_to_arrow(data, FIELDS).records for _ in range(repeats))
    return converted / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--floor", type=float, default=FLOOR)
    args = parser.parse_args()
    measured = rate(args.records)
    verdict = "met" if measured >= args.floor else "MISSED"
    print(f"Bulk CSV parse+convert: {measured:,.0f} records/s (floor {args.floor:,.0f}: {verdict})")
    return 0 if measured >= args.floor else 1


if __name__ == "__main__":
    raise SystemExit(main())
