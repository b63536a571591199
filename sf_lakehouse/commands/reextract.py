"""`sf-lakehouse re-extract` (read a window again after a fix) and `sf-lakehouse
acknowledge-type-change` (the operator has seen a field's type change)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from sf_lakehouse.config import ConfigError


def since_arg(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {value!r} is not an ISO-8601 timestamp (e.g. 2026-03-02T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def cmd_re_extract(args: argparse.Namespace) -> int:
    """Read one object again from `--since`: versions not stored yet are appended, and stored
    versions whose values were set aside are stored again once every value converts (rule 1
    keeps the latest read); nothing is stored twice. The watermark never moves back."""
    from sf_lakehouse.commands.run import _lock
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.env_file import apply_environment, load_env_file
    from sf_lakehouse.extraction import extract_increment, rejects_identifier, store_increment
    from sf_lakehouse.extraction.reextract import pending_corrections
    from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog
    from sf_lakehouse.salesforce.client import connect
    from sf_lakehouse.salesforce.connection import connection_from_environment
    from sf_lakehouse.salesforce.deadline import extraction_deadline

    if args.env_file:
        apply_environment(load_env_file(Path(args.env_file)))
    settings = resolve_settings()
    spec = settings.object(args.object)
    now = dt.datetime.now(dt.UTC)
    if args.since > now:
        raise ConfigError(f"--since {args.since.isoformat()} is in the future; nothing to read")
    lock = _lock(settings, "re-extract", args.wait)
    try:
        catalog = open_catalog(settings.catalog_properties())
        identifier = settings.table_identifier(spec.raw_asset_key)
        rejects = rejects_identifier(settings.raw_database, spec)
        table = load_table_or_none(catalog, identifier)
        reread = pending_corrections(catalog, table, rejects, args.since)
        client = connect(
            connection_from_environment(settings, os.environ), deadline=extraction_deadline(spec)
        )
        increment = extract_increment(
            client,
            table,
            spec,
            run_id=f"re-extract-{now:%Y%m%dT%H%M%S}",
            extracted_at=now,
            since=args.since,
            reread=reread,
        )
        store_increment(catalog, identifier, settings.raw_database, spec, increment)
    finally:
        lock.release()
    print(
        f"re-extracted {spec.api_name} since {args.since.isoformat()}: {increment.fetched} read, "
        f"{increment.appended - increment.corrections} new versions, {increment.corrections} "
        f"versions stored again with values that were set aside, {increment.rejected} values "
        "set aside; `sf-lakehouse run` rebuilds the dimension"
    )
    return 0


def cmd_acknowledge_type_change(args: argparse.Namespace) -> int:
    """Mark a recorded type change as seen: the check raw_column_types_unchanged passes again."""
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.extraction.type_changes import acknowledged, recorded_changes
    from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog, set_properties

    settings = resolve_settings()
    spec = settings.object(args.object)
    catalog = open_catalog(settings.catalog_properties())
    identifier = settings.table_identifier(spec.raw_asset_key)
    table = load_table_or_none(catalog, identifier)
    changes = [c for c in recorded_changes(table) if c.field.lower() == args.field.lower()]
    if table is None or not changes:
        raise ConfigError(
            f"{identifier} records no type change of {args.field}; the check "
            "raw_column_types_unchanged names the fields to acknowledge"
        )
    pending = [c for c in changes if c.acknowledged_at is None]
    for change in pending:
        done = acknowledged(change, dt.datetime.now(dt.UTC))
        set_properties(table, {done.property_name: done.to_property()})
        print(f"acknowledged: {change.describe().split('; acknowledge')[0]}")
    if not pending:
        print(f"{spec.api_name}.{args.field}: already acknowledged ({changes[0].acknowledged_at})")
    return 0


def add_parsers(commands: argparse._SubParsersAction, add_wait: object) -> None:
    """The two commands' argument parsers."""
    again = commands.add_parser(
        "re-extract",
        help="read one object again from a moment (after a fix of a set-aside value or a type "
        "change); stores nothing twice",
    )
    again.add_argument("--object", required=True, help="API name, e.g. User")
    again.add_argument(
        "--since", required=True, type=since_arg, help="ISO-8601 (UTC unless an offset is given)"
    )
    again.add_argument("--env-file", help="KEY=VALUE file with SF_* connection settings")
    add_wait(again)  # type: ignore[operator]
    again.set_defaults(handler=cmd_re_extract)
    ack = commands.add_parser(
        "acknowledge-type-change",
        help="mark a field's recorded type change as seen (the check passes again)",
    )
    ack.add_argument("--object", required=True, help="API name, e.g. User")
    ack.add_argument("--field", required=True, help="the field's API name, e.g. Score__c")
    ack.set_defaults(handler=cmd_acknowledge_type_change)
