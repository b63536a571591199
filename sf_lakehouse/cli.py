"""`sf-lakehouse`: demo, run, repair, emulator, generate-org, query, add-object, verify, deploy.

Exit codes: 0 done; 1 a run (or one of its checks) failed; 2 bad configuration or arguments;
3 the lakehouse is busy (another command held its lock longer than --wait); 128+N stopped by
signal N (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_lakehouse.config import Settings

DEMO_START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
# Emulator clock at each demo run: the org's history unfolds over six days.
DEMO_RUN_CLOCKS = (
    DEMO_START + dt.timedelta(hours=4),
    DEMO_START + dt.timedelta(days=2, hours=4),
    DEMO_START + dt.timedelta(days=6),
)


def _print_table(title: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    from sf_lakehouse.lakehouse.query import format_rows

    print(f"\n{title}")
    print(format_rows(columns, rows))


def print_summaries(settings: Settings, record_id: str | None = None) -> None:
    """Raw and SCD counts per object, then the history of the busiest User."""
    from sf_lakehouse.lakehouse.query import (
        lakehouse_connection,
        object_summary_sql,
        quoted,
        run_query,
    )

    con = lakehouse_connection(settings)
    union = " union all ".join(object_summary_sql(settings, spec) for spec in settings.objects)
    _print_table(
        f"Objects (raw {settings.raw_database}, SCD2 {settings.curated_database})",
        *run_query(con, union),
    )
    user = next((s for s in settings.objects if s.api_name == "User"), settings.objects[0])
    dim = quoted(settings.table_identifier(user.dimension_asset_key))
    key = user.key_column
    if record_id is None:
        busiest = con.execute(
            f"select {key} from {dim} group by {key} order by count(*) desc, {key} limit 1"
        ).fetchone()
        record_id = busiest[0] if busiest else None
    if record_id is not None:
        columns = ", ".join([*user.tracked_columns, "effective_from", "effective_to", "is_current"])
        _print_table(
            f"History of {user.api_name} {record_id}",
            *run_query(
                con,
                f"select {columns} from {dim} where {key} = $1 order by effective_from",
                [record_id],
            ),
        )


def _warnings(result: Any, settings: Settings, indent: str = "") -> None:
    from sf_lakehouse.pipeline import rejects_warnings

    for line in rejects_warnings(result, settings):
        print(f"{indent}warning: {line}", file=sys.stderr)


def _failure_report(result: Any, settings: Settings, log_path: Path | None = None) -> None:
    from sf_lakehouse.pipeline import run_problems, skipped_steps

    for problem in run_problems(result, settings):
        print(f"  {problem}", file=sys.stderr)
    skipped = skipped_steps(result)
    if skipped:
        print(f"  skipped (upstream failed): {', '.join(skipped)}", file=sys.stderr)
    _warnings(result, settings, indent="  ")
    if log_path is not None:
        print(f"  full log: {log_path}", file=sys.stderr)


def _lock(settings: Settings, command: str, wait: float, name: str | None = None) -> Any:
    """Take the lakehouse home's lock (sf_lakehouse.run_lock), telling the user if it waits."""
    from sf_lakehouse.run_lock import LOCK_FILE_NAME, LakehouseLock

    lock = LakehouseLock(settings.home, command, name=name or LOCK_FILE_NAME)

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder else "another sf-lakehouse command"
        print(f"waiting up to {wait:.0f} s for the lakehouse lock: {who} holds it", file=sys.stderr)

    return lock.acquire(wait_seconds=wait, on_wait=waiting)


def _note_abandoned(instance: Any, settings: Settings) -> None:
    from sf_lakehouse.pipeline import PID_TAG, mark_abandoned_runs

    for run in mark_abandoned_runs(instance, settings):
        print(
            f"note: run {run.run_id} ({run.job_name}) was left unfinished by a killed "
            f"sf-lakehouse process (pid {run.tags.get(PID_TAG, '?')}); marked failed",
            file=sys.stderr,
        )


def cmd_run(args: argparse.Namespace) -> int:
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.env_file import apply_environment, load_env_file

    if args.env_file:
        apply_environment(load_env_file(Path(args.env_file)))
    settings = resolve_settings()
    spec = settings.object(args.object) if args.object else None
    lock = _lock(settings, "run", args.wait)
    try:
        return _run_holding_lock(args, settings, lock, spec.job_name if spec else None)
    finally:
        lock.release()


def _run_holding_lock(
    args: argparse.Namespace, settings: Settings, lock: Any, job_name: str | None
) -> int:
    import os
    import traceback

    from dagster import DagsterExecutionInterruptedError

    from sf_lakehouse.definitions import PIPELINE_JOB_NAME
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
    from sf_lakehouse.processes import SignalLog, terminate_descendants

    job_name = job_name or PIPELINE_JOB_NAME
    instance = dagster_instance(settings)
    _note_abandoned(instance, settings)
    run_id = new_run_id()
    lock.note_run(run_id)
    log_path = run_log_path(settings, run_id)
    where = f"({settings.environment}, {job_name})"
    print(f"run {run_id} started {where}; log: {log_path}", file=sys.stderr)
    # dbt (a child process) refuses to commit once this process is gone.
    os.environ[OWNER_PID_VAR] = str(os.getpid())
    result = None
    crash: str | None = None
    try:
        with output_to(log_path):
            try:
                result = run_pipeline(
                    settings,
                    instance,
                    log_level="DEBUG",
                    job_name=job_name,
                    run_id=run_id,
                    tags={
                        **run_tags(settings, log_path),
                        **({FULL_REFRESH_TAG: "true"} if args.full_refresh else {}),
                    },
                )
            except Exception as error:  # not a step's failure: Dagster itself gave up
                traceback.print_exc()  # into the log
                first = (str(error).strip().splitlines() or [""])[0]
                crash = f"{type(error).__name__}: {first}"
    except (KeyboardInterrupt, DagsterExecutionInterruptedError):
        pass  # stopped by a signal; reported below
    finally:
        terminate_descendants()
        received = SIGNALS.received() if SIGNALS is not None else []
        stopped_by = SignalLog.name(received[0]) if received else None
        close_run(
            instance,
            run_id,
            f"sf-lakehouse (pid {os.getpid()}) stopped by {stopped_by or 'an error'}; "
            "marked failed",
        )
    if crash is not None and stopped_by is None:
        print(f"run {run_id} failed {where}: {crash}", file=sys.stderr)
        print(f"  full log: {log_path}", file=sys.stderr)
        return 1
    summary = RunSummary.of(result, settings) if result is not None else None
    if stopped_by is not None or summary is None or summary.interrupted:
        signal_name = stopped_by or "a signal"
        print(f"run {run_id} stopped by {signal_name} {where}; marked failed", file=sys.stderr)
        if result is not None:
            _failure_report(result, settings)
        print(f"  full log: {log_path}", file=sys.stderr)
        return 128 + received[0] if received else 130
    if not summary.succeeded:
        print(f"run {run_id} failed {where}", file=sys.stderr)
        _failure_report(result, settings, log_path)
        return 1
    if summary.problems:
        print(f"run {run_id} finished, but checks failed {where}", file=sys.stderr)
        _failure_report(result, settings, log_path)
        return 1
    counts = "; ".join(f"{k} {v}" for k, v in extraction_counts(result, settings).items())
    print(f"run {run_id} succeeded {where}" + (f": {counts}" if counts else ""))
    _warnings(result, settings)
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


def _as_of_arg(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--as-of {value!r} is not an ISO-8601 timestamp (e.g. 2026-03-02T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.lakehouse.query import (
        LakehouseNotCreatedError,
        format_rows,
        lakehouse_connection,
        run_query,
    )

    settings = resolve_settings()
    if not settings.is_local:
        print("query serves the local lakehouse; use Athena for AWS environments", file=sys.stderr)
        return 2
    if not args.sql.strip():
        print('query: the SQL is empty; e.g. sf-lakehouse query "select 1"', file=sys.stderr)
        return 2
    try:
        columns, rows = run_query(lakehouse_connection(settings, as_of=args.as_of), args.sql)
    except LakehouseNotCreatedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except duckdb.Error as error:
        first_line = str(error).splitlines()[0]
        print(f"query failed: {first_line}", file=sys.stderr)
        return 1
    print(format_rows(columns, rows, args.format))
    return 0


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
    home.mkdir(parents=True)
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
        for number, clock in enumerate(DEMO_RUN_CLOCKS, start=1):
            emulator.set_clock(clock)
            log_path = home / "logs" / f"run-{number}.log"
            # dagster-dbt echoes dbt's output to stdout; the demo keeps it in a file instead.
            with output_to(log_path):
                result = run_pipeline(
                    settings, instance, log_level="DEBUG", tags=run_tags(settings, log_path)
                )
            status = "ok" if result.success and not run_problems(result) else "FAILED"
            counts = "; ".join(f"{k} {v}" for k, v in extraction_counts(result, settings).items())
            print(f"Run {number}: org clock {clock:%Y-%m-%d %H:%M} UTC, {counts}: {status}")
            if status != "ok":
                _failure_report(result, settings, log_path)
                return 1
    print_summaries(settings)
    shown = next((s for s in settings.objects if s.api_name == "User"), settings.objects[0])
    dimension = settings.table_identifier(shown.dimension_asset_key)
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s. Query it yourself:")
    print(f'  SF_LAKEHOUSE_HOME={home} sf-lakehouse query "select * from {dimension} limit 5"')
    return 0


def cmd_add_object(args: argparse.Namespace) -> int:
    from sf_lakehouse.add_object import add_object

    for line in add_object(
        args.name,
        track=args.track,
        carry=args.carry or [],
        deletions=args.deletes,
        id_prefix=args.id_prefix,
        fields=args.field or [],
    ):
        print(line)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.env_file import apply_environment, load_env_file
    from sf_lakehouse.verify import verify

    if args.env_file:
        apply_environment(load_env_file(Path(args.env_file)))
    return verify(resolve_settings(args.environment))


def cmd_deploy(args: argparse.Namespace) -> int:
    from sf_lakehouse.aws.deploy import refuse_command_line_secret, run_deploy

    for option, value in (("--sf-password", args.sf_password), ("--sf-token", args.sf_token)):
        if value is not None:
            print(f"error: {refuse_command_line_secret(option)}", file=sys.stderr)
            return 2
    return run_deploy(
        args.environment,
        dry_run=args.dry_run,
        assume_yes=args.yes,
        username=args.sf_username,
        domain=args.sf_domain,
        password_stdin=args.sf_password_stdin,
        credentials_file=args.credentials_file,
    )


DEFAULT_WAIT_SECONDS = 300.0


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=_seconds_arg,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="when another sf-lakehouse command holds this lakehouse, wait this long for it "
        f"(default {DEFAULT_WAIT_SECONDS:.0f}), then give up with exit code 3",
    )


def _seconds_arg(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (e.g. 60)")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    from sf_lakehouse.emulator.cli import (
        add_emulator_arguments,
        add_generate_arguments,
        run_emulator_command,
        run_generate_command,
    )

    parser = argparse.ArgumentParser(prog="sf-lakehouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the whole pipeline on a synthetic org, no cloud")
    demo.add_argument("--users", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--home", help="lakehouse directory (default: $SF_LAKEHOUSE_HOME or .lakehouse)"
    )
    demo.add_argument("--wait", type=float, default=0, help=argparse.SUPPRESS)
    demo.set_defaults(handler=cmd_demo)

    run = commands.add_parser("run", help="materialize the asset graph once for SF_LAKEHOUSE_ENV")
    run.add_argument(
        "--env-file", help="KEY=VALUE file, e.g. from `sf-lakehouse emulator --env-file`"
    )
    run.add_argument("--quiet", action="store_true", help="no summaries after the run")
    run.add_argument("--object", help="run one object's job (API name, e.g. Account)")
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the dimensions from the whole raw tables instead of incrementally",
    )
    _add_wait(run)
    run.set_defaults(handler=cmd_run)

    repair = commands.add_parser(
        "repair",
        help="remove duplicate (id, systemmodstamp) versions from raw tables (one commit each)",
        description="Rewrite each raw table without duplicate (id, systemmodstamp) versions, "
        "keeping the row with the latest _extracted_at, in one Iceberg commit. Needed once "
        "for tables written by versions that could store a version twice (two runs at once); "
        "the check raw_versions_are_unique names this command when it finds duplicates.",
    )
    repair.add_argument("--object", action="append", help="only this object (API name; repeatable)")
    repair.add_argument("--dry-run", action="store_true", help="report, change nothing")
    _add_wait(repair)
    repair.set_defaults(handler=cmd_repair)

    emulator = commands.add_parser("emulator", help="serve a Salesforce API emulator on 127.0.0.1")
    add_emulator_arguments(emulator)
    emulator.set_defaults(handler=run_emulator_command)

    generate = commands.add_parser(
        "generate-org", help="write a synthetic org history (JSON Lines)"
    )
    add_generate_arguments(generate)
    generate.set_defaults(handler=run_generate_command)

    query = commands.add_parser("query", help="SQL over the local lakehouse (DuckDB)")
    query.add_argument("sql")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.add_argument(
        "--as-of",
        type=_as_of_arg,
        help="each dimension shows the versions effective at this instant (ISO-8601, UTC "
        "unless an offset is given)",
    )
    query.set_defaults(handler=cmd_query)

    add = commands.add_parser(
        "add-object",
        help="extract one more Salesforce object: writes its spec and dbt models",
    )
    add.add_argument("name", help="Salesforce API name, e.g. Contact or Invoice__c")
    add.add_argument(
        "--track", action="append", required=True, help="a field whose change starts a version"
    )
    add.add_argument("--carry", action="append", help="a field carried along in the dimension")
    add.add_argument("--field", action="append", help="one more field to extract")
    add.add_argument("--deletes", action="store_true", help="extract deletions (queryAll)")
    add.add_argument(
        "--id-prefix", help="the object's 3-character id prefix (known for standard objects)"
    )
    add.set_defaults(handler=cmd_add_object)
    check = commands.add_parser(
        "verify", help="end-to-end integration check of an environment (pass/fail per check)"
    )
    check.add_argument("--environment", help="default: $SF_LAKEHOUSE_ENV or local")
    check.add_argument("--env-file", help="KEY=VALUE file with SF_* connection settings")
    check.set_defaults(handler=cmd_verify)

    deploy = commands.add_parser(
        "deploy", help="provision an AWS environment idempotently (plan, then apply)"
    )
    deploy.add_argument("--environment", required=True, help="an AWS environment of the config")
    deploy.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    deploy.add_argument(
        "--yes", action="store_true", help="apply without asking (required without a terminal)"
    )
    deploy.add_argument("--sf-username", help="Salesforce user for the credentials secret")
    deploy.add_argument(
        "--sf-domain",
        help="login (default), test, a My Domain (acme.my), or its host name or https:// URL",
    )
    deploy.add_argument(
        "--sf-password-stdin",
        action="store_true",
        help="read the password and the security token as two lines of standard input "
        "(on a terminal they are prompted for instead)",
    )
    deploy.add_argument(
        "--credentials-file",
        help="JSON {username, password, security_token, domain} or {client_id, client_secret, "
        "domain}, readable only by you (chmod 600)",
    )
    # Refused with the alternatives: a secret on the command line shows in `ps` and the history.
    deploy.add_argument("--sf-password", help=argparse.SUPPRESS)
    deploy.add_argument("--sf-token", help=argparse.SUPPRESS)
    deploy.set_defaults(handler=cmd_deploy)
    return parser


# Which termination signals arrived (set by main; Dagster swaps the handlers during a run).
SIGNALS: Any = None

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    global SIGNALS
    from sf_lakehouse.processes import handle_termination_signals

    SIGNALS = handle_termination_signals()
    args = build_parser().parse_args(argv)
    from sf_lakehouse.config import ConfigError
    from sf_lakehouse.lakehouse.query import LakehouseNotCreatedError
    from sf_lakehouse.run_lock import BUSY_EXIT_CODE, LakehouseBusyError
    from sf_lakehouse.salesforce.types import SalesforceConfigError

    try:
        return int(args.handler(args))
    except LakehouseBusyError as error:
        print(f"error: {error}", file=sys.stderr)
        return BUSY_EXIT_CODE
    except (ConfigError, SalesforceConfigError, LakehouseNotCreatedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except FileNotFoundError as error:
        name = f" {error.filename}" if error.filename else ""
        print(f"error: no such file{name}: {error.strerror or error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        received = SIGNALS.received() if SIGNALS is not None else []
        name = SIGNALS.name(received[0]) if received else "SIGINT"
        print(f"sf-lakehouse {args.command}: stopped by {name}", file=sys.stderr)
        return 128 + (received[0] if received else 2)


if __name__ == "__main__":
    sys.exit(main())
