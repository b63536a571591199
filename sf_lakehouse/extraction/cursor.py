"""The cursor rule of the design, and which versions are new.

Each run asks for records with `cursor >= watermark - lookback`. The watermark is the highest
cursor value read that was not later than the org's clock when it was read (the `Date` of the
response that brought it), stored with the rows the run committed (the raw table's property
`sf-lakehouse.watermark.<cursor>`, set in the same commit, and the snapshot's summary); never
`max(cursor)` over the table, so a version stamped in the future (clock skew, an imported
history) is stored and reported but cannot make later runs skip what changes before it.
Re-reading the lookback window means same-second ties and late commits are never lost; versions
already in the table (same `id` and `systemmodstamp`) are not appended again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import GreaterThanOrEqual
from pyiceberg.table import Table

from sf_lakehouse.salesforce.types import FieldSpec, arrow_schema, format_soql_datetime

EXTRACTED_AT = "_extracted_at"
RUN_ID = "_run_id"
VERSION_KEY = ("id", "systemmodstamp")
_KEY_SEPARATOR = "\x1f"


def extraction_start(watermark: dt.datetime | None, lookback_seconds: int) -> dt.datetime | None:
    """Where the next query starts: the lookback window behind the watermark (None: everything)."""
    if watermark is None:
        return None
    return watermark - dt.timedelta(seconds=lookback_seconds)


def capped(moment: dt.datetime | None, server_time: dt.datetime | None) -> dt.datetime | None:
    """`moment`, but never past the org's clock (when the org told it)."""
    if moment is None or server_time is None:
        return moment
    return min(moment, server_time)


def raw_table_schema(fields: Sequence[FieldSpec]) -> pa.Schema:
    """The raw table's columns: the extracted fields as typed by describe(), then the run's."""
    return (
        arrow_schema(fields)
        .append(pa.field(EXTRACTED_AT, pa.timestamp("us")))
        .append(pa.field(RUN_ID, pa.string()))
    )


def _where(cursor_field: str, since: dt.datetime | None) -> str:
    return f" WHERE {cursor_field} >= {format_soql_datetime(since)}" if since is not None else ""


def build_extraction_soql(
    object_name: str, fields: Sequence[FieldSpec], cursor_field: str, since: dt.datetime | None
) -> str:
    """`SELECT ... FROM <object> [WHERE cursor >= since] ORDER BY cursor, Id`."""
    soql = f"SELECT {', '.join(f.name for f in fields)} FROM {object_name}"
    return soql + _where(cursor_field, since) + f" ORDER BY {cursor_field} ASC, Id ASC"


def build_count_soql(object_name: str, cursor_field: str, since: dt.datetime | None) -> str:
    """`SELECT COUNT()` of exactly the records `build_extraction_soql` reads."""
    return f"SELECT COUNT() FROM {object_name}" + _where(cursor_field, since)


WATERMARK_PREFIX = "sf-lakehouse.watermark."
WATERMARK_RUN = "sf-lakehouse.watermark-run"


def watermark_property(cursor_column: str) -> str:
    """The raw table's property holding the watermark of one cursor."""
    return WATERMARK_PREFIX + cursor_column


def read_watermark(table: Table | None, cursor_column: str) -> dt.datetime | None:
    """The watermark the last committing run stored (naive UTC); for a table written before
    watermarks were stored, its highest cursor value not later than this machine's clock."""
    if table is None:
        return None
    stored = table.properties.get(watermark_property(cursor_column))
    if stored is not None:
        return None if stored == "none" else dt.datetime.fromisoformat(stored)
    if table.current_snapshot() is None:
        return None
    column = table.scan(selected_fields=(cursor_column,)).to_arrow().column(cursor_column)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return pc.max(pc.filter(column, pc.less_equal(column, pa.scalar(now, column.type)))).as_py()


def watermark_properties(
    cursor_column: str, watermark: dt.datetime | None, run_id: str
) -> dict[str, str]:
    """What a run stores with its rows: its watermark and its run id."""
    value = "none" if watermark is None else watermark.replace(tzinfo=None).isoformat()
    return {watermark_property(cursor_column): value, WATERMARK_RUN: run_id}


@dataclass
class WatermarkTracker:
    """The run's watermark, page by page: the highest cursor value not later than the org's
    clock when that page was read; the versions stamped later are counted, never followed."""

    watermark: dt.datetime | None
    future: int = 0
    latest_future: dt.datetime | None = None

    def observe(self, cursor: pa.ChunkedArray, org_clock: dt.datetime | None) -> None:
        if len(cursor) == 0:
            return
        if org_clock is None:  # the org told no time: nothing to cap at
            in_time, later = cursor, None
        else:
            limit = pa.scalar(org_clock.replace(tzinfo=None), cursor.type)
            in_time = pc.filter(cursor, pc.less_equal(cursor, limit))
            later = pc.filter(cursor, pc.greater(cursor, limit))
        highest = pc.max(in_time).as_py() if len(in_time) else None
        if highest is not None and (self.watermark is None or highest > self.watermark):
            self.watermark = highest
        if later is not None and len(later):
            self.future += len(later)
            newest = pc.max(later).as_py()
            self.latest_future = max(filter(None, (self.latest_future, newest)))


def existing_versions(table: Table | None, since: dt.datetime | None) -> set[tuple[str, object]]:
    """(id, systemmodstamp) of the versions already stored at or after `since`."""
    keys = _stored_keys(table, since)
    if keys is None:
        return set()
    return set(
        zip(keys.column("id").to_pylist(), keys.column("systemmodstamp").to_pylist(), strict=True)
    )


def _stored_keys(table: Table | None, since: dt.datetime | None) -> pa.Table | None:
    if table is None or table.current_snapshot() is None:
        return None
    if since is None:
        return table.scan(selected_fields=VERSION_KEY).to_arrow()
    # SystemModstamp >= LastModifiedDate always, so this window covers either cursor.
    return table.scan(
        row_filter=GreaterThanOrEqual("systemmodstamp", since.replace(tzinfo=None).isoformat()),
        selected_fields=VERSION_KEY,
    ).to_arrow()


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


def version_keys(ids: pa.Array | pa.ChunkedArray, stamps: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One text key per (id, systemmodstamp), for vectorised membership tests."""
    micros = pc.cast(pc.cast(stamps, pa.timestamp("us")), pa.int64())
    keys = pc.binary_join_element_wise(
        pc.cast(ids, pa.string()), pc.cast(micros, pa.string()), _KEY_SEPARATOR
    )
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


class VersionFilter:
    """Which versions of a stream of batches are new: not stored in the raw table at or after
    the query start, and not already seen in this run.

    The query is ordered by the cursor, so a version can only come twice when a query restarts
    (an invalid locator) from the highest cursor value seen so far; only the keys at that value
    are remembered, so memory stays bounded by a page, not by the run."""

    def __init__(
        self, table: Table | None, since: dt.datetime | None, reread: frozenset[str] = frozenset()
    ) -> None:
        stored = _stored_keys(table, since)
        self._stored = (
            version_keys(stored.column("id"), stored.column("systemmodstamp"))
            if stored is not None and stored.num_rows
            else None
        )
        # Stored versions to let through once more (re-extract: a value set aside now converts).
        self._reread = pa.array(sorted(reread), pa.string()) if reread else None
        self.rereads = 0
        self._boundary: set[str] = set()
        self._boundary_cursor: int | None = None

    def new_versions(self, rows: pa.Table, cursor_column: str) -> pa.Table:
        if rows.num_rows == 0:
            return rows
        keys = version_keys(rows.column("id"), rows.column("systemmodstamp"))
        repeated = pa.array([False] * rows.num_rows, pa.bool_())
        if self._stored is not None:
            repeated = pc.is_in(keys, value_set=self._stored)
            if self._reread is not None:
                again = pc.and_(repeated, pc.is_in(keys, value_set=self._reread))
                repeated = pc.and_(repeated, pc.invert(again))
                self.rereads += int(pc.sum(again).as_py() or 0)
        if self._boundary:
            seen = pa.array(sorted(self._boundary), pa.string())
            repeated = pc.or_(repeated, pc.is_in(keys, value_set=seen))
        if len(pc.unique(keys)) < len(keys):
            repeated = pc.or_(repeated, _later_repeats(keys))
        self._remember_boundary(keys, rows.column(cursor_column))
        return rows.filter(pc.invert(repeated))

    def _remember_boundary(self, keys: pa.Array, cursor: pa.ChunkedArray) -> None:
        micros = pc.cast(cursor, pa.int64())
        highest = pc.max(micros).as_py()
        if highest is None:
            return
        at_highest = set(keys.filter(pc.equal(micros, highest).combine_chunks()).to_pylist())
        if self._boundary_cursor is None or highest > self._boundary_cursor:
            self._boundary, self._boundary_cursor = at_highest, highest
        elif highest == self._boundary_cursor:
            self._boundary |= at_highest


def _later_repeats(keys: pa.Array) -> pa.Array:
    seen: set[str] = set()
    flags = []
    for key in keys.to_pylist():
        flags.append(key in seen)
        seen.add(key)
    return pa.array(flags, pa.bool_())
