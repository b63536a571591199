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

from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse.config import Settings

RAW_SUMMARY_SQL = """
select
    count(*) as raw_total_records,
    count(distinct id) as distinct_users,
    max(_extracted_at) as latest_extraction,
    count(distinct division) as distinct_divisions
from {raw}
"""

SCD_SUMMARY_SQL = """
select
    count(*) as scd_total_rows,
    count(*) filter (where is_current) as current_rows,
    count(*) filter (where not is_current) as historical_rows,
    count(distinct user_id) as users
from {dimension}
"""


def _extension_file(module: Any) -> Path:
    # The PyPI packages ship the extension binaries; loading them by path needs no download.
    return next(Path(module.__file__).parent.glob("extensions/*/*.duckdb_extension"))


def lakehouse_connection(settings: Settings) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB whose schemas and views mirror the catalog's namespaces and tables."""
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
            con.execute(
                f'CREATE VIEW "{database}"."{identifier[-1]}" AS '
                f"SELECT * FROM iceberg_scan('{location}')"
            )
    return con


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
    result = con.execute(sql)
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
