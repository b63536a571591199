"""`sf-lakehouse run` and `sf-lakehouse repair`: each holds the lakehouse home's lock, and a run
reports its outcome in a few lines (the full log goes to a file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_lakehouse.commands.summaries import print_summaries

if TYPE_CHECKING:
    from sf_lakehouse.config import Settings


def warn_rejects(result: Any, settings: Settings, indent: str = "") -> None:
    """One warning line per object whose run set records aside (the rejects table)."""
    from sf_lakehouse.pipeline import rejects_warnings

    for line in rejects_warnings(result, settings):
        print(f"{indent}warning: {line}", file=sys.stderr)


def report_failure(
    result: Any,
    settings: Settings,
    instance: Any,
    log_path: Path | None = None,
    follow_up: Any = None,
) -> None:
    from sf_lakehouse.commands.run_steps import follow_up_lines, not_run_lines
    from sf_lakehouse.pipeline import run_problems

    for problem in run_problems(result, settings):
        print(f"  {problem}", file=sys.stderr)
    for line in [*not_run_lines(instance, result), *follow_up_lines(follow_up, settings)]:
        print(f"  {line}", file=sys.stderr)
    if follow_up is not None:
        for problem in run_problems(follow_up, settings):
            print(f"  {problem}", file=sys.stderr)
    warn_rejects(result, settings, indent="  ")
    if log_path is not None:
        print(f"  full log: {log_path}", file=sys.stderr)


def publish_metrics(settings: Settings, instance: Any, run_id: str) -> None:
    """The run's metrics (CloudWatch or `metrics/`); a failure to publish only warns."""
    from sf_lakehouse.monitoring.run_facts import publish_run_metrics

    publish_run_metrics(
        settings, instance, run_id, warn=lambda line: print(f"warning: {line}", file=sys.stderr)
    )


def _lock(settings: Settings, command: str, wait: float, name: str | None = None) -> Any:
    """Take the lakehouse home's lock (sf_lakehouse.run_lock), telling the user if it waits."""
    from sf_lakehouse.run_lock import LOCK_FILE_NAME, LakehouseLock

    lock = LakehouseLock(settings.home, command, name=name or LOCK_FILE_NAME)

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder else "another sf-lakehouse command"
        print(f"waiting up to {wait:.0f} s for the lakehouse lock: {who} holds it", file=sys.stderr)

    return lock.acquire(wait_seconds=wait, on_wait=waiting)


def _note_abandoned(instance: Any, settings: Settings, previous: Any) -> None:
    """`previous`: the lock's last holder when it did not release it (it was killed)."""
    from sf_lakehouse.pipeline import PID_TAG, mark_abandoned_runs

    for run in mark_abandoned_runs(instance, settings):
        pid = run.tags.get(PID_TAG, "?")
        how = (
            "a killed sf-lakehouse process"
            if previous is not None and str(previous.pid) == pid
            # It ended, but could not record the run's end (a full disk, a read-only home).
            else "an sf-lakehouse process that could not record its end"
        )
        print(
            f"note: run {run.run_id} ({run.job_name}) was left unfinished by {how} "
            f"(pid {pid}); marked failed",
            file=sys.stderr,
        )


def cmd_run(args: argparse.Namespace) -> int:
    import os

    from sf_lakehouse.commands.preflight import preflight
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.env_file import apply_environment, load_env_file

    if args.env_file:
        apply_environment(load_env_file(Path(args.env_file)))
    settings = resolve_settings()
    spec = settings.object(args.object) if args.object else None
    # One line and exit 2 for what is wrong before any run is recorded.
    preflight(settings, os.environ)
    lock = _lock(settings, "run", args.wait)
    try:
        return _run_holding_lock(args, settings, lock, spec.job_name if spec else None)
    except Exception as error:
        # The home filled up or became read-only after the checks: one line, not a traceback.
        from sf_lakehouse.lakehouse.writable import HomeNotWritableError, storage_fix

        fix = storage_fix(str(error), settings)
        if fix is None:
            raise
        first = (str(error).strip().splitlines() or [""])[0]
        raise HomeNotWritableError(
            f"lakehouse home {settings.home} cannot be written ({type(error).__name__}: "
            f"{first[:300]}); fix: {fix}",
            during_run=True,
        ) from None
    finally:
        lock.release()


def _run_holding_lock(
    args: argparse.Namespace, settings: Settings, lock: Any, job_name: str | None
) -> int:
    import os
    import traceback

    from dagster import DagsterExecutionInterruptedError

    from sf_lakehouse.commands.run_steps import build_held_back_dimensions
    from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions
    from sf_lakehouse.defs.dbt import FULL_REFRESH_TAG
    from sf_lakehouse.lakehouse.tables import OWNER_PID_VAR
    from sf_lakehouse.pipeline import (
        RunSummary,
        close_run,
        dagster_instance,
        extraction_counts,
        new_run_id,
        output_to,
        run_log_path,
        run_pipeline,
        run_tags,
    )
    from sf_lakehouse.processes import SignalLog, received_signals, terminate_descendants

    job_name = job_name or PIPELINE_JOB_NAME
    instance = dagster_instance(settings)
    _note_abandoned(instance, settings, lock.previous)
    run_id = new_run_id()
    lock.note_run(run_id)
    log_path = run_log_path(settings, run_id)
    where = f"({settings.environment}, {job_name})"
    print(f"run {run_id} started {where}; log: {log_path}", file=sys.stderr)
    # dbt (a child process) refuses to commit once this process is gone.
    os.environ[OWNER_PID_VAR] = str(os.getpid())
    result = follow_up = None
    crash: str | None = None
    tags = {
        **run_tags(settings, log_path),
        **({FULL_REFRESH_TAG: "true"} if args.full_refresh else {}),
    }
    try:
        with output_to(log_path):
            try:
                definitions = build_definitions(settings)  # once: the follow-up run reuses them
                result = run_pipeline(
                    settings,
                    instance,
                    log_level="DEBUG",
                    job_name=job_name,
                    run_id=run_id,
                    tags=tags,
                    definitions=definitions,
                )
                # One failed extraction must not hold back the other objects' dimensions.
                follow_up = build_held_back_dimensions(
                    settings,
                    instance,
                    result,
                    log_level="DEBUG",
                    tags=tags,
                    definitions=definitions,
                )
            except Exception as error:  # not a step's failure: Dagster itself gave up
                traceback.print_exc()  # into the log
                first = (str(error).strip().splitlines() or [""])[0]
                crash = f"{type(error).__name__}: {first}"
    except (KeyboardInterrupt, DagsterExecutionInterruptedError):
        pass  # stopped by a signal; reported below
    finally:
        terminate_descendants()
        received = received_signals()
        stopped_by = SignalLog.name(received[0]) if received else None
        close_run(
            instance,
            run_id,
            f"sf-lakehouse (pid {os.getpid()}) stopped by {stopped_by or 'an error'}; "
            "marked failed",
        )
    publish_metrics(settings, instance, run_id)
    if crash is not None and stopped_by is None:
        from sf_lakehouse.lakehouse.writable import storage_fix

        fix = storage_fix(crash, settings)
        crash += f"; fix: {fix}" if fix else ""
        print(f"run {run_id} failed {where}: {crash}", file=sys.stderr)
        print(f"  full log: {log_path}", file=sys.stderr)
        return 1
    summary = RunSummary.of(result, settings) if result is not None else None
    if stopped_by is not None or summary is None or summary.interrupted:
        signal_name = stopped_by or "a signal"
        print(f"run {run_id} stopped by {signal_name} {where}; marked failed", file=sys.stderr)
        if result is not None:
            report_failure(result, settings, instance)
        print(f"  full log: {log_path}", file=sys.stderr)
        return 128 + received[0] if received else 130
    if not summary.succeeded:
        print(f"run {run_id} failed {where}", file=sys.stderr)
        report_failure(result, settings, instance, log_path, follow_up)
        return 1
    if summary.problems:
        print(f"run {run_id} finished, but checks failed {where}", file=sys.stderr)
        report_failure(result, settings, instance, log_path)
        return 1
    counts = "; ".join(f"{k} {v}" for k, v in extraction_counts(result, settings).items())
    print(f"run {run_id} succeeded {where}" + (f": {counts}" if counts else ""))
    warn_rejects(result, settings)
    if settings.is_local and not args.quiet:
        print_summaries(settings)
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.lakehouse.query import LakehouseNotCreatedError

    settings = resolve_settings()
    specs = (
        tuple(settings.object(name) for name in args.object) if args.object else settings.objects
    )
    if settings.is_local and not settings.catalog_db_path.is_file():
        raise LakehouseNotCreatedError(
            f"no lakehouse at {settings.home} yet (no {settings.catalog_db_path.name}); nothing "
            "to repair"
        )
    lock = _lock(settings, "repair", args.wait)
    try:
        from pyiceberg.exceptions import CommitFailedException

        from sf_lakehouse.repair import repair_raw_tables

        try:
            reports = repair_raw_tables(settings, specs, dry_run=args.dry_run)
        except CommitFailedException as error:
            print(
                f"error: a table changed while it was repaired ({error}); run the repair again",
                file=sys.stderr,
            )
            return 1
    finally:
        lock.release()
    for report in reports:
        print(report.line(dry_run=args.dry_run))
    return 0
