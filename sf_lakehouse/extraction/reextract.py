"""Which stored versions a re-extract reads again: those with a value set aside (a row of the
rejects table) whose latest read in the raw table is not newer than that reject. Once a re-read
stores them with every value converted, they are no longer pending, so running the same
re-extract twice stores nothing twice."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import GreaterThanOrEqual
from pyiceberg.table import Table

from sf_lakehouse.extraction.cursor import EXTRACTED_AT, version_keys
from sf_lakehouse.lakehouse.tables import load_table_or_none


def _latest_read(rows: pa.Table) -> dict[str, object]:
    """Version key -> its latest `_extracted_at`."""
    if rows.num_rows == 0:
        return {}
    keys = version_keys(rows.column("id"), rows.column("systemmodstamp"))
    grouped = pa.table({"key": keys, "at": rows.column(EXTRACTED_AT)}).group_by("key")
    latest = grouped.aggregate([("at", "max")])
    return dict(
        zip(latest.column("key").to_pylist(), latest.column("at_max").to_pylist(), strict=True)
    )


def pending_corrections(
    catalog: Catalog, raw_table: Table | None, rejects_identifier: str, since: dt.datetime
) -> frozenset[str]:
    """Version keys (`version_keys`) from `since` on with a set-aside value not read since."""
    rejects_table = load_table_or_none(catalog, rejects_identifier)
    if raw_table is None or rejects_table is None or rejects_table.current_snapshot() is None:
        return frozenset()
    start = since.astimezone(dt.UTC).replace(tzinfo=None) if since.tzinfo else since
    window = GreaterThanOrEqual("systemmodstamp", start.isoformat())
    columns = ("id", "systemmodstamp", EXTRACTED_AT)
    rejected = rejects_table.scan(row_filter=window, selected_fields=columns).to_arrow()
    rejected = rejected.filter(pc.is_valid(rejected.column("systemmodstamp")))
    rejected_at = _latest_read(rejected)
    if not rejected_at:
        return frozenset()
    stored_at = _latest_read(raw_table.scan(row_filter=window, selected_fields=columns).to_arrow())
    return frozenset(
        key for key, at in rejected_at.items() if key in stored_at and stored_at[key] <= at
    )
