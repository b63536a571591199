"""Seeded chaos replay of a multi-object org, compared with a fault-free replay.

    .venv/bin/python benchmarks/chaos_replay.py [--users 40] [--days 4] [--seed 7]
        [--runs-per-day 2] [--kill-probability 0.5] [--no-faults] [--workdir DIR]

Replays a synthetic org (`sf_lakehouse.emulator.generate_org`: Users, Accounts, Opportunities,
with deletions and undeletes) through the emulator, one clock step at a time, twice:

1. chaos: `sf-lakehouse run` processes killed with SIGKILL (the whole process group) at seeded
   points (extraction, raw commit, dbt, dimension commit, checks, any moment) and, when the
   emulator supports fault injection (`PUT /_emulator/faults`), a seeded fault plan; every
   clock step is run again until a run succeeds;
2. fault-free: one run per clock step into another lakehouse, no kills, no faults.

It prints the faults injected, the client's retries, the kills, the runs and the rows, and
exits 1 unless every raw table holds the same versions in both lakehouses (each once) and every
dimension is identical (every column, scd_id included) and equals the SCD2 rules.
Never run by the test suite; `sf_lakehouse_tests/test_chaos.py` is its short version.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sf_lakehouse.emulator import generate_org  # noqa: E402
from sf_lakehouse_tests.chaos import (  # noqa: E402
    ChaosReplay,
    quick_retries_config,
    transient_faults,
)
from sf_lakehouse_tests.cli_runs import (  # noqa: E402
    assert_tables_equal_a_clean_replay,
    faulty_emulator,
    home_settings,
    raw_keys,
    rows,
)

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def clock_steps(days: int, runs_per_day: int, seed: int) -> list[dt.datetime]:
    rng = random.Random(f"clocks:{seed}")
    steps = []
    for day in range(days):
        for n in range(runs_per_day):
            hours = 24 * (n + 1) / runs_per_day - rng.uniform(0, 3)
            steps.append(START + dt.timedelta(days=day, hours=hours))
    return steps


def fault_free_replay(emulator: object, home: Path, workdir: Path, clocks: list) -> None:
    replay = ChaosReplay(emulator, home, workdir, seed=0, kill_probability=0.0)  # type: ignore[arg-type]
    report = replay.replay(clocks)
    if report.succeeded != len(clocks) or report.failed:
        raise SystemExit(f"the fault-free replay failed: {report.lines()}")


def compare(chaos_home: Path, clean_home: Path, history: list, clocks: list) -> list[str]:
    problems = []
    chaos, clean = home_settings(chaos_home), home_settings(clean_home)
    try:
        assert_tables_equal_a_clean_replay(chaos, history, clocks)
    except AssertionError as error:
        problems.append(f"chaos lakehouse against the SCD2 rules: {error}")
    for spec in chaos.objects:
        if raw_keys(chaos, spec) != raw_keys(clean, spec):
            problems.append(f"{spec.api_name}: raw versions differ")

        def ordered(settings: object, key: tuple = spec.dimension_asset_key) -> list[dict]:
            found = rows(settings, key) or []  # type: ignore[arg-type]
            return sorted(found, key=lambda r: (r["scd_id"],))

        if ordered(chaos) != ordered(clean):
            problems.append(f"{spec.api_name}: dimensions differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs-per-day", type=int, default=2)
    parser.add_argument("--kill-probability", type=float, default=0.5)
    parser.add_argument("--no-faults", action="store_true", help="kills only")
    parser.add_argument(
        "--fault-rate", type=float, default=1.0, help="scale the faults' probabilities"
    )
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sf-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    history = generate_org(users=args.users, seed=args.seed, start=START, days=args.days)
    clocks = clock_steps(args.days, args.runs_per_day, args.seed)
    print(f"org: {len(history)} versions ({args.users} users, {args.days} days), seed {args.seed}")
    print(f"clock steps: {', '.join(f'{c:%m-%d %H:%M}' for c in clocks)}")
    print(f"work directory: {workdir}")
    started = time.monotonic()
    plan = None if args.no_faults else transient_faults(args.seed, rate=args.fault_rate)
    if plan is not None:
        print(f"fault plan: {json.dumps(plan)}")
    with faulty_emulator(history, workdir / "emulator", clocks[0], plan) as emulator:
        chaos = ChaosReplay(
            emulator,
            workdir / "chaos",
            workdir / "chaos-runs",
            seed=args.seed,
            kill_probability=args.kill_probability,
            env={"SF_LAKEHOUSE_CONFIG": str(quick_retries_config(workdir))},
            log=lambda line: print(f"  {line}", flush=True),
        )
        (workdir / "chaos-runs").mkdir(exist_ok=True)
        print("chaos replay:")
        report = chaos.replay(clocks)
        emulator.plan = None  # the fault-free replay: no faults, no kills
        emulator.clear_faults()
        (workdir / "clean-runs").mkdir(exist_ok=True)
        print("fault-free replay ...", flush=True)
        fault_free_replay(emulator, workdir / "clean", workdir / "clean-runs", clocks)
    print("\n".join(report.lines()))
    problems = compare(workdir / "chaos", workdir / "clean", history, clocks)
    print(f"total time: {time.monotonic() - started:.0f} s")
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print("final dimensions equal the fault-free replay's: yes (every column, scd_id included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
