"""Which reads of a record version a raw append stores (rule 1 of docs/design.md).

A raw table declares its unique key (`UNIQUE_KEY_PROPERTY`: `id,systemmodstamp`). An append
drops a read of a stored version when its field values are the same, or when it is not later than
the stored read; a later read with other values is stored, and rule 1 keeps it. Columns starting
with `_` describe the read (`_extracted_at`, `_run_id`), not the version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    LessThanOrEqual,
)
from pyiceberg.table import Table

from sf_lakehouse.lakehouse.arrow import is_one_of

# Comma-separated columns; an append never stores a second row with the same values of them.
UNIQUE_KEY_PROPERTY = "sf-lakehouse.unique-key"


def declared_unique_key(table: Table) -> tuple[str, ...]:
    """The columns the table declares unique (`UNIQUE_KEY_PROPERTY`); empty when none."""
    value = table.properties.get(UNIQUE_KEY_PROPERTY, "")
    return tuple(c.strip() for c in value.split(",") if c.strip())


def _key_window(data: pa.Table, key: Sequence[str]) -> BooleanExpression:
    """A filter that reads only the part of the table where `data`'s keys can be: the range of
    each timestamp key column (the raw tables' systemmodstamp)."""
    condition: BooleanExpression = AlwaysTrue()
    for name in key:
        column = data.column(name)
        if not pa.types.is_timestamp(column.type) or column.null_count == len(column):
            continue
        low, high = pc.min(column).as_py(), pc.max(column).as_py()
        for bound, op in ((low, GreaterThanOrEqual), (high, LessThanOrEqual)):
            if isinstance(bound, dt.datetime):
                condition = And(condition, op(name, bound.replace(tzinfo=None).isoformat()))
    return condition


def is_read_column(name: str) -> bool:
    """Columns about a read (`_extracted_at`, `_run_id`), not about the record version:
    Salesforce API names start with a letter, so a leading underscore is never a field."""
    return name.startswith("_")


def only_unstored_rows(
    table: Table, data: pa.Table, key: Sequence[str], read_time: str = "_extracted_at"
) -> pa.Table:
    """`data` without the reads that add nothing to the table: a row is dropped when a row with
    its key (stored, or elsewhere in `data`) has the same field values, or other values read no
    earlier (rule 1 keeps a version's latest read, so this one could never show). A later read
    with other values is kept: rule 1 lets it win. Rows with a NULL in the key are always kept."""
    if data.num_rows == 0:
        return data
    key = tuple(key)
    content = [c for c in data.column_names if not is_read_column(c)]
    reads: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], Any]]] = {}
    if table.current_snapshot() is not None and all(k in table.schema().column_names for k in key):
        reads = _stored_reads(table, data, key, content, read_time)
    keys = list(zip(*(data.column(k).to_pylist() for k in key), strict=True))
    values = list(zip(*(data.column(c).to_pylist() for c in content), strict=True))
    times = (
        data.column(read_time).to_pylist() if read_time in data.column_names else [None] * len(keys)
    )
    keep = [False] * len(keys)
    # Latest reads first, so an earlier read of the same version in this batch is dropped.
    order = sorted(range(len(keys)), key=lambda i: (times[i] is not None, times[i]), reverse=True)
    for index in order:
        row_key, row_values, row_time = keys[index], values[index], times[index]
        if any(v is None for v in row_key):
            keep[index] = True
            continue
        known = reads.setdefault(row_key, [])
        if any(
            stored_values == row_values
            or (stored_time is not None and (row_time is None or stored_time >= row_time))
            for stored_values, stored_time in known
        ):
            continue
        keep[index] = True
        known.append((row_values, row_time))
    return data.filter(pa.array(keep, pa.bool_()))


def _stored_reads(
    table: Table, data: pa.Table, key: tuple[str, ...], content: list[str], read_time: str
) -> dict[tuple[Any, ...], list[tuple[tuple[Any, ...], Any]]]:
    """Key -> (field values, read time) of the stored rows that share a key with `data`. Reads
    only the key columns of the key window first, so a run that re-reads nothing stays cheap."""
    window = _key_window(data, key)
    stored_keys = table.scan(row_filter=window, selected_fields=key).to_arrow()
    wanted = set(zip(*(data.column(k).to_pylist() for k in key), strict=True))
    matched = wanted & set(zip(*(stored_keys.column(k).to_pylist() for k in key), strict=True))
    matched = {k for k in matched if None not in k}
    if not matched:
        return {}
    columns = table.schema().column_names
    selected = [c for c in (*content, read_time) if c in columns]
    stored = table.scan(row_filter=window, selected_fields=tuple(selected)).to_arrow()
    stored = stored.filter(is_one_of(stored.column(key[0]), {k[0] for k in matched}))
    stored_times = (
        stored.column(read_time).to_pylist() if read_time in columns else [None] * len(stored)
    )
    # A field the table does not have yet reads as NULL in the stored rows.
    stored_values = zip(
        *(
            stored.column(c).to_pylist() if c in columns else [None] * stored.num_rows
            for c in content
        ),
        strict=True,
    )
    reads: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], Any]]] = {}
    stored_key_values = zip(*(stored.column(k).to_pylist() for k in key), strict=True)
    for row_key, row_values, row_time in zip(
        stored_key_values, stored_values, stored_times, strict=True
    ):
        if row_key in matched:
            reads.setdefault(row_key, []).append((row_values, row_time))
    return reads
