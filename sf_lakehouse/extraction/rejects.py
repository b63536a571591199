"""Rejected values: the per-object table `<raw database>.sf_<object>_rejects`.

A value that does not convert to its column's type is set aside (its version is stored with
that column NULL) and never dropped in silence: each such value is one row here, appended in one
commit by the run that read it. Columns: `id`, `field`, `value` (as Salesforce sent it),
`reason` (names the field and the fix), `systemmodstamp` (when parseable), `_extracted_at`,
`_run_id`.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from pyiceberg.catalog import Catalog

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.extraction.cursor import EXTRACTED_AT, RUN_ID
from sf_lakehouse.lakehouse.tables import PartitionField, TableLayout, append_rows, ensure_table
from sf_lakehouse.redact import shorten
from sf_lakehouse.salesforce.convert import REJECT_SCHEMA

REJECTS_SCHEMA = REJECT_SCHEMA.append(pa.field(EXTRACTED_AT, pa.timestamp("us"))).append(
    pa.field(RUN_ID, pa.string())
)
REJECTS_LAYOUT = TableLayout(
    partition_fields=(PartitionField(EXTRACTED_AT, "day", "_extracted_date"),),
    properties={
        "format-version": "2",
        "write.format.default": "parquet",
        "write.parquet.compression-codec": "zstd",
    },
)


def rejects_table_name(spec: ObjectSpec) -> str:
    """`sf_<object>_rejects`, beside the raw table `sf_<object>`."""
    return f"{spec.raw_asset_key[1]}_rejects"


def rejects_identifier(raw_database: str, spec: ObjectSpec) -> str:
    return f"{raw_database}.{rejects_table_name(spec)}"


def with_run_columns(rows: pa.Table, extracted_at: dt.datetime, run_id: str) -> pa.Table:
    """`rows` plus `_extracted_at` (naive UTC) and `_run_id`."""
    stamp = extracted_at.astimezone(dt.UTC).replace(tzinfo=None)
    return rows.append_column(
        pa.field(EXTRACTED_AT, pa.timestamp("us")),
        pa.array([stamp] * rows.num_rows, pa.timestamp("us")),
    ).append_column(pa.field(RUN_ID, pa.string()), pa.array([run_id] * rows.num_rows, pa.string()))


def write_rejects(catalog: Catalog, identifier: str, rejects: pa.Table) -> int:
    """Append a run's rejects in one commit (creating the table on the first); 0 when none."""
    if rejects.num_rows == 0:
        return 0
    table = ensure_table(catalog, identifier, REJECTS_SCHEMA, REJECTS_LAYOUT)
    return append_rows(table, rejects.select(REJECTS_SCHEMA.names).cast(REJECTS_SCHEMA))


def store_rejects(
    catalog: Catalog, raw_database: str, spec: ObjectSpec, rejects: pa.Table
) -> tuple[str, str] | None:
    """Append a run's rejects to the object's rejects table and return the table with the
    warning for the run's log; None when there are none. The in-process raw asset and the Glue
    job both store their rejects through this one function."""
    if rejects.num_rows == 0:
        return None
    identifier = rejects_identifier(raw_database, spec)
    write_rejects(catalog, identifier, rejects)
    first = rejects.slice(0, 1).to_pylist()[0]
    warning = (
        f"{rejects.num_rows} {spec.api_name} value(s) set aside into {identifier} (their "
        f"versions are stored); first: "
        f"record {first['id']}: {shorten(first['reason'], 240)}"
    )
    return identifier, warning
