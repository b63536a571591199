"""`sf-lakehouse`: demo, run, emulator, generate-org, query, add-object, verify, deploy."""

from __future__ import annotations

import argparse
import contextlib
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


def _failure_report(result: Any, settings: Settings, log_path: Path | None = None) -> None:
    from sf_lakehouse.pipeline import run_problems

    for problem in run_problems(result):
        print(f"  {problem}", file=sys.stderr)
    if log_path is not None:
        print(f"  full log: {log_path}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.definitions import PIPELINE_JOB_NAME
    from sf_lakehouse.pipeline import (
        apply_environment,
        dagster_instance,
        load_env_file,
        run_pipeline,
        run_problems,
    )

    if args.env_file:
        apply_environment(load_env_file(Path(args.env_file)))
    settings = resolve_settings()
    job_name = settings.object(args.object).job_name if args.object else PIPELINE_JOB_NAME
    result = run_pipeline(settings, dagster_instance(settings), job_name=job_name)
    problems = run_problems(result)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not result.success:
        print(f"run {result.run_id} failed", file=sys.stderr)
        return 1
    if problems:
        print(f"run {result.run_id} finished, but checks failed", file=sys.stderr)
        return 1
    print(f"run {result.run_id} succeeded ({settings.environment}, {job_name})")
    if settings.is_local and not args.quiet:
        print_summaries(settings)
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

    from sf_lakehouse.config import HOME_VAR, resolve_settings
    from sf_lakehouse.emulator import SalesforceEmulator, generate_org
    from sf_lakehouse.pipeline import (
        apply_environment,
        dagster_instance,
        extraction_counts,
        run_pipeline,
        run_problems,
    )

    started = time.monotonic()
    home = Path(args.home or os.environ.get(HOME_VAR) or ".lakehouse").resolve() / "demo"
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
            log_path.parent.mkdir(exist_ok=True)
            # dagster-dbt echoes dbt's output to stdout; the demo keeps it in a file instead.
            with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
                result = run_pipeline(settings, instance, log_level="ERROR")
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
    from sf_lakehouse.pipeline import apply_environment, load_env_file
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
    demo.set_defaults(handler=cmd_demo)

    run = commands.add_parser("run", help="materialize the asset graph once for SF_LAKEHOUSE_ENV")
    run.add_argument(
        "--env-file", help="KEY=VALUE file, e.g. from `sf-lakehouse emulator --env-file`"
    )
    run.add_argument("--quiet", action="store_true", help="no summaries after the run")
    run.add_argument("--object", help="run one object's job (API name, e.g. Account)")
    run.set_defaults(handler=cmd_run)

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sf_lakehouse.config import ConfigError
    from sf_lakehouse.salesforce.types import SalesforceConfigError

    try:
        return int(args.handler(args))
    except (ConfigError, SalesforceConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
