"""`sf-lakehouse status [--format table|json] [--environment ENV]`: every object at a glance
(sf_lakehouse.monitoring.status); exit 0 when all is well, 1 otherwise."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

DEMO_DIR_NAME = "demo"


def demo_home(home: Path) -> Path | None:
    """`sf-lakehouse demo` fills `<home>/demo`: status looks there when the home itself has no
    metrics (a new user's `make demo`, then `sf-lakehouse status`)."""
    from sf_lakehouse.monitoring.publish import METRICS_DIR_NAME

    if (home / METRICS_DIR_NAME).is_dir():
        return None
    candidate = home / DEMO_DIR_NAME
    return candidate if (candidate / METRICS_DIR_NAME).is_dir() else None


def cmd_status(args: argparse.Namespace) -> int:
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.monitoring.status import as_json, as_table, collect, load_records

    settings = resolve_settings(args.environment)
    if settings.is_local:
        demo = demo_home(settings.home)
        if demo is not None:
            print(
                f"note: {settings.home} has no runs; showing the demo's lakehouse {demo}",
                file=sys.stderr,
            )
            settings = resolve_settings(args.environment, home=demo)
    now = dt.datetime.now(dt.UTC)
    try:
        records = load_records(settings, now)
    except Exception as error:  # CloudWatch unreachable, no permission: one line, not a trace
        print(
            f"error: cannot read the metrics of {settings.environment} "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]})",
            file=sys.stderr,
        )
        return 1
    statuses = collect(settings, records, now)
    if args.format == "json":
        print(json.dumps(as_json(settings, statuses, now), indent=2))
    else:
        print(as_table(settings, statuses, now))
    return 0 if all(s.healthy for s in statuses) else 1
