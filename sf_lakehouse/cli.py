"""`sf-lakehouse`: demo, run, emulator, generate-org, query."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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


def print_summaries(settings: Settings, user_id: str | None = None) -> None:
    from sf_lakehouse.lakehouse.query import (
        RAW_SUMMARY_SQL,
        SCD_SUMMARY_SQL,
        lakehouse_connection,
        run_query,
    )

    con = lakehouse_connection(settings)
    raw = f'"{settings.raw_database}"."{settings.raw_table}"'
    dim = f'"{settings.curated_database}"."{settings.dimension_table}"'
    _print_table(
        "Raw table " + settings.raw_table_identifier,
        *run_query(con, RAW_SUMMARY_SQL.format(raw=raw)),
    )
    _print_table(
        "SCD2 dimension " + settings.dimension_identifier,
        *run_query(con, SCD_SUMMARY_SQL.format(dimension=dim)),
    )
    if user_id is None:
        busiest = con.execute(
            f"select user_id from {dim} group by user_id order by count(*) desc, user_id limit 1"
        ).fetchone()
        user_id = busiest[0] if busiest else None
    if user_id is not None:
        _print_table(
            f"History of user {user_id}",
            *run_query(
                con,
                f"select name, division, audit_phase, effective_from, effective_to, is_current "
                f"from {dim} where user_id = '{user_id}' order by effective_from",
            ),
        )


def cmd_run(args: argparse.Namespace) -> int:
    from sf_lakehouse.pipeline import (
        apply_environment,
        dagster_instance,
        load_env_file,
        run_pipeline,
        run_problems,
    )
    from sf_lakehouse.config import resolve_settings

    if args.env_file:
        apply_environment(load_env_file(Path(args.env_file)))
    settings = resolve_settings()
    result = run_pipeline(settings, dagster_instance(settings))
    problems = run_problems(result)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not result.success:
        print(f"run {result.run_id} failed", file=sys.stderr)
        return 1
    if problems:
        print(f"run {result.run_id} finished, but checks failed", file=sys.stderr)
        return 1
    print(f"run {result.run_id} succeeded ({settings.environment})")
    if settings.is_local and not args.quiet:
        print_summaries(settings)
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from sf_lakehouse.lakehouse.query import format_rows, lakehouse_connection, run_query
    from sf_lakehouse.config import resolve_settings

    settings = resolve_settings()
    if not settings.is_local:
        print("query serves the local lakehouse; use Athena for AWS environments", file=sys.stderr)
        return 2
    import duckdb

    try:
        columns, rows = run_query(lakehouse_connection(settings), args.sql)
    except duckdb.Error as error:
        print(f"query failed: {error}", file=sys.stderr)
        return 1
    print(format_rows(columns, rows, args.format))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import os

    from sf_lakehouse.emulator import SalesforceEmulator, generate_org
    from sf_lakehouse.pipeline import (
        apply_environment,
        dagster_instance,
        run_pipeline,
        run_problems,
    )
    from sf_lakehouse.config import HOME_VAR, resolve_settings

    started = time.monotonic()
    home = Path(args.home or os.environ.get(HOME_VAR) or ".lakehouse").resolve() / "demo"
    if home.exists():
        shutil.rmtree(home)  # the demo always starts from an empty lakehouse
    home.mkdir(parents=True)
    settings = resolve_settings("local", home=home)
    history = generate_org(users=args.users, seed=args.seed, start=DEMO_START, days=6)
    print(f"Synthetic org: {args.users} users, {len(history)} record versions over 6 days")
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
            status = "ok" if result.success else "FAILED"
            raw = result.asset_materializations_for_node("sf_raw__sf_user")
            counts = (
                f"{raw[0].metadata['rows_extracted'].value} records read, "
                f"{raw[0].metadata['rows_appended'].value} new versions"
                if raw
                else "no extraction"
            )
            print(f"Run {number}: org clock {clock:%Y-%m-%d %H:%M} UTC, {counts}: {status}")
            problems = run_problems(result)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            if problems or not result.success:
                print(f"  see {log_path}", file=sys.stderr)
                return 1
    print_summaries(settings)
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s. Query it yourself:")
    print(
        f'  SF_LAKEHOUSE_HOME={home} sf-lakehouse query "select * from '
        f'{settings.dimension_identifier} limit 5"'
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from sf_lakehouse.pipeline import apply_environment, load_env_file
    from sf_lakehouse.config import resolve_settings
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
    query.set_defaults(handler=cmd_query)
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
    from sf_lakehouse.salesforce import SalesforceConfigError
    from sf_lakehouse.config import ConfigError

    try:
        return int(args.handler(args))
    except (ConfigError, SalesforceConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
