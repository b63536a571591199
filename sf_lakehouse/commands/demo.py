"""`sf-lakehouse demo`: the whole pipeline on a synthetic org served by the emulator, no cloud."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from collections import Counter
from pathlib import Path

from sf_lakehouse.commands.run import publish_metrics, report_failure
from sf_lakehouse.commands.summaries import print_summaries
from sf_lakehouse.owner_only import private_dir

DEMO_START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
# Emulator clock at each demo run: the org's history unfolds over six days.
DEMO_RUN_CLOCKS = (
    DEMO_START + dt.timedelta(hours=4),
    DEMO_START + dt.timedelta(days=2, hours=4),
    DEMO_START + dt.timedelta(days=6),
)


def cmd_demo(args: argparse.Namespace) -> int:
    import os

    from sf_lakehouse.config import HOME_VAR
    from sf_lakehouse.run_lock import LakehouseLock

    started = time.monotonic()
    base = Path(args.home or os.environ.get(HOME_VAR) or ".lakehouse").resolve()
    # One demo per base directory at a time: it deletes and refills <base>/demo.
    lock = LakehouseLock(base, "demo", name="demo.lock").acquire(wait_seconds=args.wait)
    try:
        return _demo(args, base / "demo", started)
    finally:
        lock.release()


def _demo(args: argparse.Namespace, home: Path, started: float) -> int:
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.definitions import build_definitions
    from sf_lakehouse.emulator import SalesforceEmulator, generate_org
    from sf_lakehouse.pipeline import (
        apply_environment,
        dagster_instance,
        extraction_counts,
        output_to,
        run_pipeline,
        run_problems,
        run_tags,
    )

    if home.exists():
        shutil.rmtree(home)  # the demo always starts from an empty lakehouse
    private_dir(home)
    settings = resolve_settings("local", home=home)
    history = generate_org(users=args.users, seed=args.seed, start=DEMO_START, days=6)
    kinds = Counter(r.get("attributes", {}).get("type", "User") for r in history)
    print(
        f"Synthetic org: {', '.join(f'{n} {k} versions' for k, n in sorted(kinds.items()))} "
        "over 6 days"
    )
    print(f"Lakehouse: {home}")
    with SalesforceEmulator(history, workdir=home / "emulator", now=DEMO_RUN_CLOCKS[0]) as emulator:
        apply_environment(emulator.env_vars())
        instance = dagster_instance(settings)
        definitions = build_definitions(settings)  # once for the three runs
        for number, clock in enumerate(DEMO_RUN_CLOCKS, start=1):
            emulator.set_clock(clock)
            log_path = settings.logs_dir / f"run-{number}.log"
            # dagster-dbt echoes dbt's output to stdout; the demo keeps it in a file instead.
            with output_to(log_path):
                result = run_pipeline(
                    settings,
                    instance,
                    log_level="DEBUG",
                    tags=run_tags(settings, log_path),
                    definitions=definitions,
                )
            publish_metrics(settings, instance, result.run_id)
            status = "ok" if result.success and not run_problems(result) else "FAILED"
            counts = "; ".join(f"{k} {v}" for k, v in extraction_counts(result, settings).items())
            print(f"Run {number}: org clock {clock:%Y-%m-%d %H:%M} UTC, {counts}: {status}")
            if status != "ok":
                report_failure(result, settings, instance, log_path)
                return 1
    print_summaries(settings)
    shown = next((s for s in settings.objects if s.api_name == "User"), settings.objects[0])
    dimension = settings.table_identifier(shown.dimension_asset_key)
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s. Query it yourself:")
    print(f'  SF_LAKEHOUSE_HOME={home} sf-lakehouse query "select * from {dimension} limit 5"')
    print(f"  SF_LAKEHOUSE_HOME={home} sf-lakehouse status")
    return 0
