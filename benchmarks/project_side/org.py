"""A synthetic org of N records for the benchmark, and the clocks of its runs.

The org is `generate_org` (Users, Accounts, Opportunities in generate_org's own 6:2:3 shares,
six days of history), plus one change wave after its history ends: `change_percent` % of its
live records get one more version that changes their first tracked field. The runs:

* `series` runs 1..R: the emulator clock moves evenly through the six days (run 1 is the
  initial load, run R sees the end of the history);
* `quiet`: an hour later, nothing changed (what any run costs);
* `change`: after the wave, `change_percent` % of the records changed.

    python -m benchmarks.project_side.org --records N --seed S --runs R --change-percent P \
        --output DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Json, emit, log, org_shape, read_json

HISTORY_DAYS = 6
START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
QUIET_AFTER = dt.timedelta(hours=1)
WAVE_AFTER = dt.timedelta(hours=1, minutes=30)
CHANGE_AFTER = dt.timedelta(hours=2)
Record = dict[str, Any]


def stamp(moment: dt.datetime) -> str:
    from sf_lakehouse.emulator.history import format_sf_datetime

    return format_sf_datetime(moment)


def parse(value: str) -> dt.datetime:
    from sf_lakehouse.emulator.history import parse_sf_datetime

    return parse_sf_datetime(value)


def latest_versions(history: Iterable[Record]) -> dict[str, Record]:
    """Id -> its latest version (the history is ordered by SystemModstamp)."""
    latest: dict[str, Record] = {}
    for record in history:
        latest[record["Id"]] = record
    return latest


def _object(record: Record) -> str:
    from sf_lakehouse.emulator.history import object_of

    return object_of(record)


def _values_by_field(history: Iterable[Record], fields: dict[str, str]) -> dict[str, list[Any]]:
    """Object -> the distinct non-null values its first tracked field takes in the history."""
    seen: dict[str, set[Any]] = {name: set() for name in fields}
    for record in history:
        name = _object(record)
        if name in fields and record.get(fields[name]) is not None:
            seen[name].add(record[fields[name]])
    return {name: sorted(values, key=str) for name, values in seen.items()}


def _changed_value(current: Any, candidates: Sequence[Any], rng: random.Random) -> Any:
    others = [value for value in candidates if value != current]
    if others:
        return rng.choice(others)
    return "Changed" if current is None else None


def change_wave(
    history: Sequence[Record],
    first_tracked: dict[str, str],
    percent: float,
    at: dt.datetime,
    seed: int,
) -> list[Record]:
    """New versions for `percent` % of the records (live ones, of the benchmarked objects),
    each changing the object's first tracked field, stamped from `at` on (1 ms apart)."""
    rng = random.Random(f"sf-lakehouse-bench-wave:{seed}")
    latest = latest_versions(history)
    wanted = round(len(latest) * percent / 100)
    eligible = sorted(
        record_id
        for record_id, record in latest.items()
        if _object(record) in first_tracked and record.get("IsDeleted") is not True
    )
    chosen = sorted(rng.sample(eligible, min(wanted, len(eligible))))
    values = _values_by_field(history, first_tracked)
    wave = []
    for offset, record_id in enumerate(chosen):
        record = dict(latest[record_id])
        field = first_tracked[_object(record)]
        record[field] = _changed_value(record.get(field), values[_object(record)], rng)
        moment = stamp(at + dt.timedelta(milliseconds=offset))
        record["LastModifiedDate"] = moment
        record["SystemModstamp"] = moment
        wave.append(record)
    return wave


def run_clocks(start: dt.datetime, end: dt.datetime, runs: int) -> list[dt.datetime]:
    """Run 1..R spread evenly over the history; the last one sees all of it."""
    step = (end - start) / runs
    return [start + step * number for number in range(1, runs + 1)]


def first_tracked_fields() -> dict[str, str]:
    from sf_lakehouse.config import resolve_settings

    return {spec.api_name: spec.track[0] for spec in resolve_settings("local").objects}


def write_jsonl(records: Iterable[Record], path: Path) -> None:
    from sf_lakehouse.emulator import write_history

    write_history(records, path)


def build_org(records: int, seed: int, runs: int, change_percent: float, output: Path) -> Json:
    from sf_lakehouse.emulator import generate_org

    users, accounts, opportunities = org_shape(records)
    started = time.perf_counter()
    history = generate_org(
        users=users,
        seed=seed,
        start=START,
        days=HISTORY_DAYS,
        accounts=accounts,
        opportunities=opportunities,
    )
    generated = time.perf_counter() - started
    end = max(parse(r["SystemModstamp"]) for r in history).replace(microsecond=0)
    end += dt.timedelta(seconds=1)
    wave = change_wave(history, first_tracked_fields(), change_percent, end + WAVE_AFTER, seed)
    output.mkdir(parents=True, exist_ok=True)
    write_jsonl([*history, *wave], output / "org.jsonl")
    latest = latest_versions(history)
    clocks = run_clocks(START, end, runs)
    plan = [
        *({"number": n, "kind": "series", "clock": stamp(c)} for n, c in enumerate(clocks, 1)),
        {"number": runs + 1, "kind": "quiet", "clock": stamp(end + QUIET_AFTER)},
        {"number": runs + 2, "kind": "change", "clock": stamp(end + CHANGE_AFTER)},
    ]
    return {
        "records": len(latest),
        "versions": len(history) + len(wave),
        "per_object": dict(sorted(Counter(_object(r) for r in latest.values()).items())),
        "users": users,
        "accounts": accounts,
        "opportunities": opportunities,
        "changed_records": len(wave),
        "change_percent": change_percent,
        "history_start": stamp(START),
        "history_end": stamp(end),
        "runs": plan,
        "generate_seconds": round(generated, 2),
        "history_file": str(output / "org.jsonl"),
    }


def cached_org(output: Path, key: Json) -> Json | None:
    """The org already written with the same arguments (generating 1M records takes minutes)."""
    meta = output / "org.json"
    if not meta.is_file() or not (output / "org.jsonl").is_file():
        return None
    info = read_json(meta)
    return info if info.get("key") == key else None


def generator_digest() -> str:
    """A digest of the code that writes the org, so a cached org is regenerated when it changes."""
    import sf_lakehouse.emulator.synthetic as synthetic

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(Path(synthetic.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--change-percent", type=float, default=1.0)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    key = {
        "records": args.records,
        "seed": args.seed,
        "runs": args.runs,
        "change_percent": args.change_percent,
        "generator": generator_digest(),
    }
    info = cached_org(args.output, key)
    if info is None:
        log(f"generating an org of {args.records} records")
        info = build_org(args.records, args.seed, args.runs, args.change_percent, args.output)
        info["key"] = key
        (args.output / "org.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    emit(info)


if __name__ == "__main__":
    main()
