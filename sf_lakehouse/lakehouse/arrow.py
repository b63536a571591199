"""Arrow helpers shared by the lakehouse modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def is_one_of(column: pa.ChunkedArray | pa.Array, values: Iterable[Any]) -> pa.ChunkedArray:
    """A mask: True where `column` holds one of `values`, False elsewhere (NULL included)."""
    value_set = pa.array(list(values), column.type)
    return pc.fill_null(pc.is_in(column, value_set=value_set), False)


def changed_types(table_schema: pa.Schema, data: pa.Table) -> dict[str, pa.DataType]:
    """Columns of `data` whose values the table's column cannot take as they are: text where
    the table has another type (or the reverse), or values that do not cast (a source column
    that was widened). Other differences (int32 and int64) are cast on write as before."""
    changed = {}
    for column in data.schema:
        if column.name not in table_schema.names:
            continue
        stored = table_schema.field(column.name).type
        if _is_textual(stored) != _is_textual(column.type):
            changed[column.name] = column.type
            continue
        try:
            data.column(column.name).cast(stored)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            changed[column.name] = column.type
    return changed


def _is_textual(arrow: pa.DataType) -> bool:
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    return any(kind(arrow) for kind in kinds)


def empty_with_types(schema: pa.Schema, changed: dict[str, pa.DataType]) -> pa.Table:
    """An empty table of `schema` with the `changed` columns' types."""
    return pa.schema([pa.field(f.name, changed.get(f.name, f.type)) for f in schema]).empty_table()
