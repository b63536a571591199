"""SQL over the local lakehouse: DuckDB with a view `<database>.<table>` per Iceberg table."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.lakehouse.tables import open_catalog


class LakehouseNotCreatedError(FileNotFoundError):
    """The local lakehouse has no catalog yet (no run has written a table)."""


def quoted(identifier: str) -> str:
    """`db.table` -> `"db"."table"` for DuckDB."""
    return ".".join(f'"{part}"' for part in identifier.split("."))


def object_summary_sql(settings: Settings, spec: ObjectSpec) -> str:
    """One row for one object: raw versions and records, dimension rows (current, historical,
    deleted now)."""
    raw = quoted(settings.table_identifier(spec.raw_asset_key))
    dim = quoted(settings.table_identifier(spec.dimension_asset_key))
    deleted = (
        "count(*) filter (where is_current and is_deleted)"
        if spec.deletions
        else "cast(null as bigint)"
    )
    return f"""
select
    '{spec.api_name}' as object,
    (select count(*) from {raw}) as raw_versions,
    (select count(distinct id) from {raw}) as records,
    count(*) as scd_rows,
    count(*) filter (where is_current) as current_rows,
    count(*) filter (where not is_current) as historical_rows,
    {deleted} as deleted_now
from {dim}
"""


def as_of_filter(moment: dt.datetime) -> str:
    """The versions effective at `moment` (half-open intervals), as a SQL condition."""
    literal = moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    return (
        f"effective_from <= timestamp '{literal}' "
        f"and (effective_to > timestamp '{literal}' or effective_to is null)"
    )


def _extension_file(module: Any) -> Path:
    # The PyPI packages ship the extension binaries; loading them by path needs no download.
    return next(Path(module.__file__).parent.glob("extensions/*/*.duckdb_extension"))


def lakehouse_connection(
    settings: Settings, as_of: dt.datetime | None = None
) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB whose schemas and views mirror the catalog's namespaces and tables.
    With `as_of`, each dimension's view holds only the versions effective at that instant."""
    if settings.is_local and not settings.catalog_db_path.is_file():
        raise LakehouseNotCreatedError(
            f"no lakehouse at {settings.home} yet (no {settings.catalog_db_path.name}); run "
            "`sf-lakehouse run` (or `sf-lakehouse demo`) first, or set SF_LAKEHOUSE_HOME"
        )
    dimensions = {settings.table_identifier(s.dimension_asset_key) for s in settings.objects}
    con = duckdb.connect()
    # avro first: the iceberg extension reads manifest files with it.
    for module in (duckdb_extension_avro, duckdb_extension_iceberg):
        con.execute(f"LOAD '{_extension_file(module)}'")
    catalog = open_catalog(settings.catalog_properties())
    for namespace in catalog.list_namespaces():
        database = ".".join(namespace)
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            location = table.metadata_location.removeprefix("file://").replace("'", "''")
            name = f"{database}.{identifier[-1]}"
            condition = f" WHERE {as_of_filter(as_of)}" if as_of and name in dimensions else ""
            con.execute(
                f"CREATE VIEW {quoted(name)} AS SELECT * FROM iceberg_scan('{location}'){condition}"
            )
    return con


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[Any] | None = None
) -> tuple[list[str], list[tuple]]:
    result = con.execute(sql, parameters or [])
    columns = [d[0] for d in result.description or []]
    return columns, result.fetchall()


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def format_rows(columns: Sequence[str], rows: Sequence[tuple], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in r] for r in rows])
        return buffer.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use table, csv or json")
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"])
