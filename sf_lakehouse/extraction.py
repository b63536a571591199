"""Incremental extraction of Salesforce records into the append-only raw table.

The cursor rule of the design: ask for records with `cursor >= watermark - lookback`, where the
watermark is the highest cursor value durably in the raw table. Re-reading the lookback window
means same-second ties and late commits are never lost; versions already in the table
(same `id` and `systemmodstamp`) are not appended again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import GreaterThanOrEqual
from pyiceberg.table import Table

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.salesforce.client import SalesforceClient
from sf_lakehouse.salesforce.types import (
    FieldSpec,
    arrow_schema,
    format_soql_datetime,
    records_to_arrow,
    select_fields,
)

EXTRACTED_AT = "_extracted_at"
RUN_ID = "_run_id"
VERSION_KEY = ("id", "systemmodstamp")


@dataclass(frozen=True)
class Increment:
    """What one extraction run read and what it will append."""

    object_name: str
    api: str
    rows: pa.Table
    soql: str
    fetched: int
    since: dt.datetime | None
    watermark_before: dt.datetime | None
    watermark_after: dt.datetime | None
    fields: tuple[FieldSpec, ...]
    api_calls: int

    @property
    def appended(self) -> int:
        return self.rows.num_rows

    def summary(self) -> str:
        return (
            f"Fetched {self.fetched} {self.object_name} records ({self.api}) since "
            f"{self.since or 'the beginning'}; {self.appended} are new versions."
        )

    def metadata(self, api_usage: dict[str, int]) -> dict[str, object]:
        """Per-run facts, as plain values (the in-process asset and the Glue job both report
        these; datetimes are naive UTC or None)."""
        return {
            "object": self.object_name,
            "api": self.api,
            "rows_extracted": self.fetched,
            "rows_appended": self.appended,
            "watermark": self.watermark_after,
            "previous_watermark": self.watermark_before,
            "query_start": self.since,
            "api_calls": self.api_calls,
            "org_api_usage": api_usage.get("used", 0),
            "org_api_limit": api_usage.get("limit", 0),
            "fields": [f.name for f in self.fields],
            "soql": self.soql,
        }


def extraction_start(watermark: dt.datetime | None, lookback_seconds: int) -> dt.datetime | None:
    """Where the next query starts: the lookback window behind the watermark (None: everything)."""
    if watermark is None:
        return None
    return watermark - dt.timedelta(seconds=lookback_seconds)


def raw_table_schema(fields: Sequence[FieldSpec]) -> pa.Schema:
    """The raw table's columns: the extracted fields as typed by describe(), then the run's."""
    return (
        arrow_schema(fields)
        .append(pa.field(EXTRACTED_AT, pa.timestamp("us")))
        .append(pa.field(RUN_ID, pa.string()))
    )


def build_extraction_soql(
    object_name: str, fields: Sequence[FieldSpec], cursor_field: str, since: dt.datetime | None
) -> str:
    """`SELECT ... FROM <object> [WHERE cursor >= since] ORDER BY cursor, Id`."""
    soql = f"SELECT {', '.join(f.name for f in fields)} FROM {object_name}"
    if since is not None:
        soql += f" WHERE {cursor_field} >= {format_soql_datetime(since)}"
    return soql + f" ORDER BY {cursor_field} ASC, Id ASC"


def read_watermark(table: Table | None, cursor_column: str) -> dt.datetime | None:
    """Highest cursor value committed to the raw table."""
    if table is None or table.current_snapshot() is None:
        return None
    column = table.scan(selected_fields=(cursor_column,)).to_arrow().column(cursor_column)
    return pc.max(column).as_py() if len(column) else None


def existing_versions(table: Table | None, since: dt.datetime | None) -> set[tuple[str, object]]:
    """(id, systemmodstamp) of the versions already stored at or after `since`."""
    if table is None or table.current_snapshot() is None:
        return set()
    scan = table.scan(selected_fields=VERSION_KEY)
    if since is not None:
        # SystemModstamp >= LastModifiedDate always, so this window covers either cursor.
        scan = table.scan(
            row_filter=GreaterThanOrEqual("systemmodstamp", since.replace(tzinfo=None).isoformat()),
            selected_fields=VERSION_KEY,
        )
    keys = scan.to_arrow()
    return set(
        zip(keys.column("id").to_pylist(), keys.column("systemmodstamp").to_pylist(), strict=True)
    )


def only_new_versions(batch: pa.Table, stored: set[tuple[str, object]]) -> pa.Table:
    """Drop versions already stored, and repeats inside the batch (pages can overlap)."""
    seen = set(stored)
    keep = []
    for key in zip(
        batch.column("id").to_pylist(), batch.column("systemmodstamp").to_pylist(), strict=True
    ):
        keep.append(key not in seen)
        seen.add(key)
    return batch.filter(pa.array(keep, pa.bool_()))


def extract_increment(
    client: SalesforceClient,
    raw_table: Table | None,
    spec: ObjectSpec,
    *,
    run_id: str,
    extracted_at: dt.datetime,
) -> Increment:
    """Read the next increment of one object from Salesforce; nothing is written here. Objects
    with deletions are read with queryAll, so deleted records arrive with `IsDeleted` true."""
    calls_before = client.api_calls
    fields = tuple(
        select_fields(client.describe(spec.api_name), spec.extracted_fields, spec.api_name)
    )
    cursor_column = spec.cursor.lower()
    watermark = read_watermark(raw_table, cursor_column)
    since = extraction_start(watermark, spec.lookback_seconds)
    soql = build_extraction_soql(spec.api_name, fields, spec.cursor, since)
    records = list(
        client.query(soql, page_size=spec.extraction.page_size, include_deleted=spec.deletions)
    )
    batch = records_to_arrow(records, fields)
    new_rows = only_new_versions(batch, existing_versions(raw_table, since))
    stamp = extracted_at.astimezone(dt.UTC).replace(tzinfo=None)
    new_rows = new_rows.append_column(
        pa.field(EXTRACTED_AT, pa.timestamp("us")),
        pa.array([stamp] * new_rows.num_rows, pa.timestamp("us")),
    ).append_column(
        pa.field(RUN_ID, pa.string()), pa.array([run_id] * new_rows.num_rows, pa.string())
    )
    fetched_max = pc.max(batch.column(cursor_column)).as_py() if batch.num_rows else None
    candidates = [w for w in (watermark, fetched_max) if w is not None]
    return Increment(
        object_name=spec.api_name,
        api="queryAll" if spec.deletions else "query",
        rows=new_rows,
        soql=soql,
        fetched=batch.num_rows,
        since=since,
        watermark_before=watermark,
        watermark_after=max(candidates) if candidates else None,
        fields=fields,
        api_calls=client.api_calls - calls_before,
    )
