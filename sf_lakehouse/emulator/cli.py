"""Command-line pieces for ``sf-lakehouse emulator`` and ``sf-lakehouse generate-org``; the
main CLI (``sf_lakehouse.cli``) mounts them with ``add_*_arguments`` / ``run_*_command``."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from .faults import FaultPlanError, Plan, parse_plan
from .history import HistoryError, parse_sf_datetime

__all__ = [
    "add_emulator_arguments",
    "add_generate_arguments",
    "run_emulator_command",
    "run_generate_command",
]


def _datetime_arg(value: str) -> datetime:
    try:
        return parse_sf_datetime(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 datetime: {value!r} (e.g. 2026-03-01T08:00:00Z)"
        ) from exc


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sf-lakehouse emulator``."""
    parser.add_argument(
        "--history",
        type=Path,
        required=True,
        help="JSON Lines history of record versions (User, Account, Opportunity, ...)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: a free port)"
    )
    parser.add_argument(
        "--now",
        type=_datetime_arg,
        default=None,
        help="start the emulator clock here (default: the wall clock)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="write KEY=VALUE settings (URL, credentials, CA bundle) here",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to write the TLS files (default: a temporary directory)",
    )
    parser.add_argument(
        "--faults",
        type=Path,
        default=None,
        metavar="PLAN.json",
        help="start with this fault plan on (JSON, as PUT /_emulator/faults takes)",
    )


def _read_plan(path: Path) -> Plan:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FaultPlanError(f"{path}: cannot read the fault plan ({exc.strerror}).") from exc
    except ValueError as exc:
        raise FaultPlanError(f"{path}: not valid JSON ({exc}).") from exc
    try:
        return parse_plan(payload)
    except FaultPlanError as exc:
        raise FaultPlanError(f"{path}: {exc}") from exc


def run_emulator_command(args: argparse.Namespace) -> int:
    from .server import SalesforceEmulator  # not imported by `sf-lakehouse run`'s parser

    """Serve until SIGINT/SIGTERM. Returns the process exit code."""
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="sf-emulator-")) if temporary else args.workdir
    try:
        plan = _read_plan(args.faults) if args.faults is not None else None
        emulator = SalesforceEmulator(
            args.history, workdir=workdir, port=args.port, now=args.now, faults=plan
        )
    except (HistoryError, FaultPlanError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            emulator.start()
        except OSError as exc:
            print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
            return 1
        if args.env_file is not None:
            emulator.write_env_file(args.env_file)
        counts = ", ".join(f"{n} {name}" for name, n in emulator.org.record_counts().items())
        print(
            f"Salesforce emulator serving {emulator.org.version_count} record versions "
            f"({counts or 'no records'}) at {emulator.base_url}",
            flush=True,
        )
        if plan is not None:
            kinds = ", ".join(f.kind for f in plan.faults) or "none"
            print(f"Fault plan on (seed {plan.seed}): {kinds}", flush=True)
        print(f"Clock: {emulator.now().isoformat()}" + ("" if args.now else " (wall clock)"))
        print(f"CA bundle: {emulator.ca_bundle}")
        if args.env_file is not None:
            # The file holds the credentials; say where it is, never what is in it.
            print(f"Settings written to {args.env_file.resolve()} (mode 0600)")
        print("Stop with Ctrl+C or SIGTERM.", flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        emulator.stop()
        if emulator.faults.active:
            injected = emulator.fault_report()["injected"]
            text = ", ".join(f"{kind} {count}" for kind, count in injected.items()) or "none"
            print(f"Faults injected: {text}", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sf-lakehouse generate-org``."""
    parser.add_argument("--users", type=int, default=300, help="number of users (default 300)")
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        help="number of accounts (default: users // 3, at least 3; 0 for none)",
    )
    parser.add_argument(
        "--opportunities",
        type=int,
        default=None,
        help="number of opportunities (default: users // 2, at least 4; 0 for none)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--days", type=int, default=6, help="days of history (default 6)")
    parser.add_argument(
        "--start",
        type=_datetime_arg,
        default=datetime(2026, 3, 1, 8, tzinfo=UTC),
        help="first instant of the history (default 2026-03-01T08:00:00Z)",
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON Lines file to write")


def run_generate_command(args: argparse.Namespace) -> int:
    from .synthetic import write_org

    """Write a synthetic org's history. Returns the process exit code."""
    if args.users < 1 or args.days < 1:
        print("error: --users and --days must be at least 1", file=sys.stderr)
        return 2
    if (args.accounts or 0) < 0 or (args.opportunities or 0) < 0:
        print("error: --accounts and --opportunities cannot be negative", file=sys.stderr)
        return 2
    started = time.monotonic()
    s = write_org(
        args.output,
        users=args.users,
        seed=args.seed,
        start=args.start,
        days=args.days,
        accounts=args.accounts,
        opportunities=args.opportunities,
    )
    print(
        f"Wrote {s['versions']} versions of {s['users']} users, {s['accounts']} accounts and "
        f"{s['opportunities']} opportunities to {args.output} "
        f"in {time.monotonic() - started:.1f} s"
    )
    print(
        f"Deletes/undeletes: accounts {s['account_deletions']}/{s['account_undeletes']}, "
        f"opportunities {s['opportunity_deletions']}/{s['opportunity_undeletes']}"
    )
    return 0
