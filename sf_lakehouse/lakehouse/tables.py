"""Iceberg table writes: appends, rebuilds, incremental replaces, widened columns, repairs.

Every write here is one Iceberg commit (schema evolution included), so a failed run leaves a table
exactly as it was. A killed writer leaves at most unreferenced files, which no reader sees (the
maintenance job's orphan sweep deletes them). A table may declare a unique key (the table property
`sf-lakehouse.unique-key`; the raw tables declare `id,systemmodstamp`): an append then skips rows
whose key is already stored, checked against the table as it is at the commit, so two writers
of the same versions never store them twice. A commit that loses a race with another writer
(`CommitFailedException`) is retried on the reloaded table, the key check redone.

The catalog and table creation live in `catalog.py`, layouts in `layout.py`, the commit
mechanics in `commits.py`, the per-file rewrite of an incremental replace in `file_rewrite.py`;
their public names are importable from here as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table

from sf_lakehouse.lakehouse.arrow import changed_types, empty_with_types, is_one_of
from sf_lakehouse.lakehouse.catalog import (
    CATALOG_NAME,
    ensure_table,
    load_table_or_none,
    nullable_schema,
    open_catalog,
    set_properties,
)
from sf_lakehouse.lakehouse.commits import (
    COMMIT_ATTEMPTS,
    OWNER_PID_VAR,
    TEST_BARRIER_VAR,
    TEST_PAUSE_VAR,
    WRITE_ID_PROPERTY,
    OrphanedWriteError,
    before_commit,
    state_before_last_write,
    table_name,
    with_commit_retries,
)
from sf_lakehouse.lakehouse.file_rewrite import replace_records
from sf_lakehouse.lakehouse.layout import (
    RAW_LAYOUT,
    PartitionField,
    TableLayout,
    iceberg_transform,
)
from sf_lakehouse.lakehouse.versions import declared_unique_key, only_unstored_rows

__all__ = [
    "CATALOG_NAME",
    "COMMIT_ATTEMPTS",
    "OWNER_PID_VAR",
    "RAW_LAYOUT",
    "TEST_BARRIER_VAR",
    "TEST_PAUSE_VAR",
    "WIDEN_OPERATION",
    "WRITE_ID_PROPERTY",
    "ColumnTypeChangedError",
    "OrphanedWriteError",
    "PartitionField",
    "TableLayout",
    "align_to_table",
    "append_rows",
    "data_file_count",
    "ensure_table",
    "iceberg_transform",
    "load_table_or_none",
    "nullable_schema",
    "open_catalog",
    "replace_rows",
    "rewrite_rows",
    "scan",
    "set_properties",
    "state_before_last_write",
    "widen_columns",
]

# An incremental replace compacts the table (writes it whole) once it has more data files than
# this and than COMPACT_FILES_PER_PARTITION per partition: the per-file rewrite keeps new rows in
# few files, this bounds what is left (a dimension once reached 100 files for 800 rows after four
# runs, and each run was slower than the last).
COMPACT_ABOVE_FILES = 64
COMPACT_FILES_PER_PARTITION = 4


class ColumnTypeChangedError(ValueError):
    """New data has a column whose type differs from the table's and cannot be cast to it."""


def align_to_table(
    data: pa.Table, table_schema: pa.Schema, table_name: str = "the table"
) -> pa.Table:
    """Order and cast `data` like the table; table columns absent from `data` become NULL."""
    columns = []
    for target in table_schema:
        if target.name in data.column_names:
            column = data.column(target.name)
            try:
                columns.append(column.cast(target.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise ColumnTypeChangedError(
                    f"column {target.name} of {table_name} is {target.type} but the new data has "
                    f"{column.type} values that do not convert ({str(error).splitlines()[0]}): "
                    "the field's type changed at the source; keep the old column by renaming it "
                    "in the table (ALTER TABLE ... RENAME COLUMN) or stop extracting the field, "
                    "then run again"
                ) from None
        else:
            columns.append(pa.nulls(data.num_rows, target.type))
    return pa.Table.from_arrays(columns, schema=nullable_schema(table_schema))


def _evolve_schema(tx: Any, data: pa.Table) -> None:
    current = tx.table_metadata.schema().column_names
    new_columns = [n for n in data.column_names if n not in current]
    if new_columns:
        with tx.update_schema() as update:
            update.union_by_name(data.select(new_columns).schema)


def append_rows(
    table: Table,
    data: pa.Table,
    unique_key: Sequence[str] | None = None,
    properties: Mapping[str, str] | None = None,
) -> int:
    """Append in one commit, adding new columns first (schema evolution: never drop, never fail).

    With a unique key (`unique_key`, else the table's declared one), rows whose key is stored
    already are skipped, checked again after every lost commit race. `properties` are set on
    the table (and in the snapshot's summary) in the same commit, also when no row is new.
    Returns the rows appended.
    """
    if data.num_rows == 0 and not properties:
        return 0
    data = pa.Table.from_arrays(data.columns, schema=nullable_schema(data.schema))
    name = table_name(table)

    def write(current: Table) -> int:
        key = tuple(unique_key) if unique_key is not None else declared_unique_key(current)
        rows = only_unstored_rows(current, data, key) if key and data.num_rows else data
        stale = {k: v for k, v in (properties or {}).items() if current.properties.get(k) != v}
        if rows.num_rows == 0 and not stale:
            return 0
        with current.transaction() as tx:
            if stale:
                tx.set_properties(dict(stale))
            if rows.num_rows:
                _evolve_schema(tx, rows)
                tx.append(
                    align_to_table(rows, tx.table_metadata.schema().as_arrow(), name),
                    snapshot_properties=dict(properties or {}),
                )
            before_commit(name)
        return rows.num_rows

    return with_commit_retries(table, write)


WIDEN_OPERATION = "widen-columns"


def widen_columns(
    table: Table, widened: Mapping[str, pa.DataType], properties: Mapping[str, str]
) -> Table:
    """Give columns wider types (a number column made text) in one commit, with `properties`.
    Iceberg promotes no number to text, so each column is replaced under its name and every
    row rewritten with its value cast: no stored value is lost. Returns the reloaded table."""
    name = table_name(table)

    def write(current: Table) -> Table:
        data = current.scan().to_arrow()
        for column, target in widened.items():
            index = data.column_names.index(column)
            data = data.set_column(index, column, data.column(column).cast(target))
        with current.transaction() as tx:
            with tx.update_schema() as update:
                for column in widened:
                    update.delete_column(column)
            with tx.update_schema() as update:
                update.union_by_name(pa.schema([data.schema.field(c) for c in widened]))
            tx.set_properties(dict(properties))
            tx.overwrite(
                align_to_table(data, tx.table_metadata.schema().as_arrow(), name),
                snapshot_properties={
                    WRITE_ID_PROPERTY: uuid.uuid4().hex,
                    "sf-lakehouse-operation": WIDEN_OPERATION,
                },
            )
            before_commit(name)
        return current.refresh()

    return with_commit_retries(table, write)


def replace_rows(
    table: Table,
    data: pa.Table,
    properties: Mapping[str, str] | None = None,
    *,
    records: tuple[str, Collection[str]] | None = None,
) -> int:
    """Replace the whole content in one commit (a rebuild), or with `records` = (key column,
    keys) only the rows of those records (an incremental build: only the data files holding a
    row that changes are rewritten, see `file_rewrite.py`). `properties` go into the table's
    properties and the snapshot summary of the same commit.

    Not retried on a lost race: the other writer's content may be newer than this one."""
    data = pa.Table.from_arrays(data.columns, schema=nullable_schema(data.schema))
    name = table_name(table)
    changed = changed_types(table.schema().as_arrow(), data)
    if changed and records is not None:
        # A column's type changed upstream (a widened raw column): the table is written whole
        # with the column replaced; the other records' values are cast along.
        like = empty_with_types(table.schema().as_arrow(), changed)
        aligned_others = _rows_of_other_records(table, records, like)
        data = pa.concat_tables([aligned_others, align_to_table(data, aligned_others.schema)])
        records = None
    with table.transaction() as tx:
        if changed:
            with tx.update_schema() as update:
                for column in changed:
                    update.delete_column(column)
            with tx.update_schema() as update:
                update.union_by_name(pa.schema([data.schema.field(c) for c in changed]))
        _evolve_schema(tx, data)
        if properties:
            tx.set_properties(dict(properties))
        # An overwrite commits a delete and an append snapshot; a shared id marks them as one
        # write, so readers can find the state before it.
        summary = {**(properties or {}), WRITE_ID_PROPERTY: uuid.uuid4().hex}
        aligned = align_to_table(data, tx.table_metadata.schema().as_arrow(), name)
        if records is not None and needs_compaction(table):
            aligned = pa.concat_tables([_rows_of_other_records(table, records, aligned), aligned])
            records = None
        if records is None:
            tx.overwrite(aligned, snapshot_properties=summary)
        else:
            replace_records(tx, table, aligned, records, summary)
        before_commit(name)
    return data.num_rows


def _snapshot_total(table: Table, name: str) -> int:
    """A total of the current snapshot's summary (`total-data-files`, `total-records`)."""
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.get(name) or 0)


def data_file_count(table: Table) -> int:
    """The data files of the table's current snapshot (from its summary: no file is read)."""
    return _snapshot_total(table, "total-data-files")


def needs_compaction(table: Table) -> bool:
    """Whether the table has gathered too many files for its partitions (see
    COMPACT_ABOVE_FILES): read from the snapshot summary, the manifests only past the limit."""
    files = data_file_count(table)
    if files <= COMPACT_ABOVE_FILES:
        return False
    partitions = {
        (task.file.spec_id, tuple(task.file.partition[i] for i in range(len(task.file.partition))))
        for task in table.scan().plan_files()
    }
    return files > COMPACT_FILES_PER_PARTITION * max(len(partitions), 1)


def _rows_of_other_records(
    table: Table, records: tuple[str, Collection[str]], like: pa.Table
) -> pa.Table:
    """Every stored row except those of `records`, in the schema of `like`."""
    key_column, keys = records
    kept = []
    for batch in table.scan().to_arrow_batch_reader():
        kept.append(batch.filter(pc.invert(is_one_of(batch.column(key_column), keys))))
    stored = (
        pa.Table.from_batches(kept, schema=table.schema().as_arrow())
        if kept
        else (table.schema().as_arrow().empty_table())
    )
    return align_to_table(stored, like.schema, table_name(table))


def rewrite_rows(table: Table, data: pa.Table, operation: str) -> int:
    """Replace the content with `data` (same schema) in one commit, failing if another writer
    committed since `table` was loaded (a repair must not lose a concurrent append)."""
    data = pa.Table.from_arrays(data.columns, schema=nullable_schema(data.schema))
    name = table_name(table)
    with table.transaction() as tx:
        tx.overwrite(
            align_to_table(data, tx.table_metadata.schema().as_arrow(), name),
            snapshot_properties={
                WRITE_ID_PROPERTY: uuid.uuid4().hex,
                "sf-lakehouse-operation": operation,
            },
        )
        before_commit(name)
    return data.num_rows


def scan(table: Table, columns: Sequence[str] | None = None) -> pa.Table:
    if columns is None:
        return table.scan().to_arrow()
    return table.scan(selected_fields=tuple(columns)).to_arrow()
