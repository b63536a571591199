"""`sf-lakehouse`: demo, run, repair, emulator, generate-org, query, add-object, verify, deploy,
re-extract, acknowledge-type-change, status.

Exit codes: 0 done; 1 a run (or one of its checks) failed; 2 bad configuration or arguments;
3 the lakehouse is busy (another command held its lock longer than --wait); 128+N stopped by
signal N (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


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
        image_uri=args.image_uri,
        wheelhouse_dir=Path(args.wheelhouse) if args.wheelhouse else None,
    )


def _image_arg(value: str) -> str:
    import re

    from sf_lakehouse.config.runtime import IMAGE_PATTERN

    if not re.match(IMAGE_PATTERN, value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an image URI with a tag, e.g. "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sf-lakehouse:2026-12-03"
        )
    return value


def cmd_instance_config(args: argparse.Namespace) -> int:
    from sf_lakehouse.runtime.deployed import print_instance_config

    return print_instance_config(args.environment, offline=args.offline)


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
    from sf_lakehouse.commands.demo import cmd_demo
    from sf_lakehouse.commands.reextract import add_parsers as add_reextract_parsers
    from sf_lakehouse.commands.run import cmd_repair, cmd_run
    from sf_lakehouse.commands.status import cmd_status
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
    deploy.add_argument(
        "--image-uri",
        type=_image_arg,
        help="the image of the ECS services and runs (<registry>/sf-lakehouse:<tag>); "
        "default: runtime.image",
    )
    deploy.add_argument(
        "--wheelhouse",
        help="a folder with a wheel of each pin the Glue job needs (default: downloaded once "
        "with pip into ~/.cache/sf-lakehouse/wheelhouse)",
    )
    # Refused with the alternatives: a secret on the command line shows in `ps` and the history.
    deploy.add_argument("--sf-password", help=argparse.SUPPRESS)
    deploy.add_argument("--sf-token", help=argparse.SUPPRESS)
    deploy.set_defaults(handler=cmd_deploy)

    instance = commands.add_parser(
        "instance-config",
        help="print the dagster.yaml of a deployed environment (Postgres, ECS run launcher, ...)",
    )
    instance.add_argument("--environment", required=True, help="an AWS environment of the config")
    instance.add_argument(
        "--offline",
        action="store_true",
        help="do not ask AWS for what deploy created (shown as <known after deploy>)",
    )
    instance.set_defaults(handler=cmd_instance_config)
    status = commands.add_parser(
        "status",
        help="per object: last run, freshness against its windows, rejects, API usage, last "
        "failure; exit 0 when all is well, 1 otherwise",
    )
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.add_argument(
        "--environment", help="default: SF_LAKEHOUSE_ENV, else local (AWS: read CloudWatch)"
    )
    status.set_defaults(handler=cmd_status)
    add_reextract_parsers(commands, _add_wait)
    return parser


EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    from sf_lakehouse.processes import SignalLog, handle_termination_signals, received_signals

    handle_termination_signals()
    args = build_parser().parse_args(argv)
    from sf_lakehouse.config import ConfigError
    from sf_lakehouse.lakehouse.query import LakehouseNotCreatedError
    from sf_lakehouse.lakehouse.writable import HomeNotWritableError
    from sf_lakehouse.run_lock import BUSY_EXIT_CODE, LakehouseBusyError
    from sf_lakehouse.salesforce.types import SalesforceConfigError

    try:
        return int(args.handler(args))
    except LakehouseBusyError as error:
        print(f"error: {error}", file=sys.stderr)
        return BUSY_EXIT_CODE
    except (ConfigError, SalesforceConfigError, LakehouseNotCreatedError) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, HomeNotWritableError) and error.during_run:
            # The disk filled up under a running pipeline: DuckDB's threads may abort the
            # interpreter's shutdown against it (SIGABRT after the line). The run is closed
            # and the lock released; end with the documented exit code now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_CONFIG)
        return EXIT_CONFIG
    except FileNotFoundError as error:
        name = f" {error.filename}" if error.filename else ""
        print(f"error: no such file{name}: {error.strerror or error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        received = received_signals()
        name = SignalLog.name(received[0]) if received else "SIGINT"
        print(f"sf-lakehouse {args.command}: stopped by {name}", file=sys.stderr)
        return 128 + (received[0] if received else 2)


if __name__ == "__main__":
    sys.exit(main())
