"""Iceberg tables: the catalog, table layouts declared as data, and safe writes.

Every write here is one Iceberg commit (schema evolution included), so a failed run leaves a table
exactly as it was.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import In
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    YearTransform,
)

CATALOG_NAME = "sf_lakehouse"
WRITE_ID_PROPERTY = "sf-lakehouse-write-id"

# Transforms are spelled as in Iceberg's own table metadata: `identity`, `day`, `bucket[16]`,
# `truncate[16]`; the parameterised ones take their width (bucket count, truncation length).
_TRANSFORMS: dict[str, Transform[Any, Any]] = {
    "identity": IdentityTransform(),
    "year": YearTransform(),
    "month": MonthTransform(),
    "day": DayTransform(),
    "hour": HourTransform(),
}
_PARAMETERISED_TRANSFORMS: dict[str, Callable[[int], Transform[Any, Any]]] = {
    "bucket": BucketTransform,
    "truncate": TruncateTransform,
}
_PARAMETERISED = re.compile(r"^(?P<name>[a-z]+)\[(?P<width>[1-9][0-9]*)\]$")


def iceberg_transform(transform: str) -> Transform[Any, Any]:
    """The pyiceberg transform of a spelling like `identity` or `bucket[16]`; a clear error for
    anything else, so a bad layout fails before a table is touched."""
    if transform in _TRANSFORMS:
        return _TRANSFORMS[transform]
    match = _PARAMETERISED.match(transform)
    if match and match["name"] in _PARAMETERISED_TRANSFORMS:
        return _PARAMETERISED_TRANSFORMS[match["name"]](int(match["width"]))
    known = [*_TRANSFORMS, *(f"{name}[N]" for name in _PARAMETERISED_TRANSFORMS)]
    raise ValueError(f"unknown partition transform {transform!r}; use one of {', '.join(known)}")


@dataclass(frozen=True)
class PartitionField:
    """One partition field: source column, transform (`identity`, `day`, `bucket[16]`,
    `truncate[16]`, ...) and the partition field's name."""

    source: str
    transform: str
    name: str

    def __post_init__(self) -> None:
        iceberg_transform(self.transform)  # fail on construction, not at the first write

    @property
    def iceberg_transform(self) -> Transform[Any, Any]:
        return iceberg_transform(self.transform)

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "transform": self.transform, "name": self.name}


@dataclass(frozen=True)
class TableLayout:
    """How a table is laid out in Iceberg; declared once, used by the IO manager and dbt."""

    partition_fields: tuple[PartitionField, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "partition_spec": [p.as_dict() for p in self.partition_fields],
            "table_properties": dict(self.properties),
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TableLayout:
        spec = metadata.get("partition_spec") or []
        return cls(
            partition_fields=tuple(PartitionField(**dict(p)) for p in spec),
            properties=dict(metadata.get("table_properties") or {}),
        )


RAW_LAYOUT = TableLayout(
    partition_fields=(PartitionField("_extracted_at", "day", "_extracted_date"),),
    properties={
        "format-version": "2",
        "write.format.default": "parquet",
        "write.parquet.compression-codec": "snappy",
        "write.target-file-size-bytes": str(128 * 1024 * 1024),
    },
)


def open_catalog(properties: Mapping[str, str]) -> Catalog:
    """Load the pyiceberg catalog; for the local SQL catalog, create its directories first."""
    props = dict(properties)
    if props.get("type") == "sql":
        uri = props["uri"]
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        warehouse = props.get("warehouse", "")
        if warehouse.startswith("file://"):
            Path(warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return load_catalog(CATALOG_NAME, **props)


def load_table_or_none(catalog: Catalog, identifier: str) -> Table | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def nullable_schema(schema: pa.Schema) -> pa.Schema:
    """Every column optional: Iceberg columns written by DuckDB or Arrow are otherwise required,
    and a required column can never be evolved to accept NULL from Salesforce."""
    return pa.schema([f.with_nullable(True) for f in schema])


def _spec_matches(table: Table, layout: TableLayout) -> bool:
    current = []
    for pf in table.spec().fields:
        source = table.schema().find_field(pf.source_id).name
        current.append((source, str(pf.transform), pf.name))
    declared = [(p.source, str(p.iceberg_transform), p.name) for p in layout.partition_fields]
    return current == declared


def ensure_table(
    catalog: Catalog, identifier: str, schema: pa.Schema, layout: TableLayout
) -> Table:
    """Create the namespace and table when missing and bring spec and properties to the layout."""
    namespace = identifier.rsplit(".", 1)[0]
    # AWS checks the permission before the existence: a role that may not create databases
    # gets AccessDenied from create_namespace_if_not_exists even when the database exists.
    if not catalog.namespace_exists(namespace):
        catalog.create_namespace(namespace)
    table = load_table_or_none(catalog, identifier)
    if table is None:
        table = catalog.create_table(
            identifier,
            schema=nullable_schema(schema),
            partition_spec=PartitionSpec(),
            properties=dict(layout.properties),
        )
    missing_sources = [
        p.source for p in layout.partition_fields if p.source not in table.schema().column_names
    ]
    if missing_sources:
        raise ValueError(
            f"table {identifier} has no column {missing_sources} for its partition spec; "
            "the data written must contain the partition source columns"
        )
    if not _spec_matches(table, layout):
        with table.update_spec() as update:
            for existing in table.spec().fields:
                update.remove_field(existing.name)
            for pf in layout.partition_fields:
                update.add_field(pf.source, pf.iceberg_transform, pf.name)
        table = catalog.load_table(identifier)
    stale = {
        k: v
        for k, v in layout.properties.items()
        if k != "format-version" and table.properties.get(k) != v
    }
    if stale:
        with table.transaction() as tx:
            tx.set_properties(stale)
        table = catalog.load_table(identifier)
    return table


def align_to_table(data: pa.Table, table_schema: pa.Schema) -> pa.Table:
    """Order and cast `data` like the table; table columns absent from `data` become NULL."""
    columns = []
    for target in table_schema:
        if target.name in data.column_names:
            columns.append(data.column(target.name).cast(target.type))
        else:
            columns.append(pa.nulls(data.num_rows, target.type))
    return pa.Table.from_arrays(columns, schema=nullable_schema(table_schema))


def append_rows(table: Table, data: pa.Table) -> int:
    """Append in one commit, adding new columns first (schema evolution: never drop, never fail)."""
    if data.num_rows == 0:
        return 0
    data = pa.Table.from_arrays(data.columns, schema=nullable_schema(data.schema))
    with table.transaction() as tx:
        new_columns = [n for n in data.column_names if n not in table.schema().column_names]
        if new_columns:
            with tx.update_schema() as update:
                update.union_by_name(data.select(new_columns).schema)
        tx.append(align_to_table(data, tx.table_metadata.schema().as_arrow()))
    return data.num_rows


def replace_rows(
    table: Table,
    data: pa.Table,
    properties: Mapping[str, str] | None = None,
    *,
    records: tuple[str, Collection[str]] | None = None,
) -> int:
    """Replace the whole content in one commit (a rebuild), or with `records` = (key column,
    keys) only the rows of those records (an incremental build). `properties` go into the
    table's properties and the snapshot summary of the same commit."""
    data = pa.Table.from_arrays(data.columns, schema=nullable_schema(data.schema))
    with table.transaction() as tx:
        current = tx.table_metadata.schema().column_names
        new_columns = [n for n in data.column_names if n not in current]
        if new_columns:
            with tx.update_schema() as update:
                update.union_by_name(data.select(new_columns).schema)
        if properties:
            tx.set_properties(dict(properties))
        # An overwrite commits a delete and an append snapshot; a shared id marks them as one
        # write, so readers can find the state before it.
        summary = {**(properties or {}), WRITE_ID_PROPERTY: uuid.uuid4().hex}
        aligned = align_to_table(data, tx.table_metadata.schema().as_arrow())
        if records is None:
            tx.overwrite(aligned, snapshot_properties=summary)
        else:
            key_column, keys = records
            tx.overwrite(
                aligned,
                overwrite_filter=In(key_column, sorted(keys)),
                snapshot_properties=summary,
            )
    return data.num_rows


def state_before_last_write(table: Table) -> int | None:
    """Snapshot id of the table as it was before its latest write (None: there was none)."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return None
    write_id = _write_id(snapshot)
    parent_id = snapshot.parent_snapshot_id
    while parent_id is not None:
        parent = table.snapshot_by_id(parent_id)
        if parent is None:  # expired by maintenance
            return None
        if write_id is None or _write_id(parent) != write_id:
            return parent.snapshot_id
        parent_id = parent.parent_snapshot_id
    return None


def _write_id(snapshot: Any) -> str | None:
    summary = snapshot.summary.additional_properties if snapshot.summary else {}
    return summary.get(WRITE_ID_PROPERTY)


def scan(table: Table, columns: Sequence[str] | None = None) -> pa.Table:
    if columns is None:
        return table.scan().to_arrow()
    return table.scan(selected_fields=tuple(columns)).to_arrow()
