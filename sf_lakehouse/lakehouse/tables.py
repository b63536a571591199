"""Iceberg tables: the catalog, table layouts declared as data, and safe writes.

Every write here is one Iceberg commit (schema evolution included), so a failed run leaves a table
exactly as it was. A killed writer leaves at most unreferenced files, which no reader sees (the
maintenance job's orphan sweep deletes them). A table may declare a unique key (the table property
`sf-lakehouse.unique-key`; the raw tables declare `id,systemmodstamp`): an append then skips rows
whose key is already stored, checked against the table as it is at the commit, so two writers
of the same versions never store them twice. A commit that loses a race with another writer
(`CommitFailedException`) is retried on the reloaded table, the key check redone.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
)
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

from sf_lakehouse.lakehouse.arrow import changed_types, empty_with_types, is_one_of
from sf_lakehouse.lakehouse.home import check_home_location
from sf_lakehouse.lakehouse.versions import (
    UNIQUE_KEY_PROPERTY,
    declared_unique_key,
    only_unstored_rows,
)
from sf_lakehouse.owner_only import private_dir

CATALOG_NAME = "sf_lakehouse"
WRITE_ID_PROPERTY = "sf-lakehouse-write-id"
# Attempts of one write when other writers commit first (optimistic concurrency).
COMMIT_ATTEMPTS = 6
# An incremental replace rewrites the table whole once it has more data files than this (a
# dimension spreads over up to 32 partitions: is_current x 16 buckets).
COMPACT_ABOVE_FILES = 64
# Above this many records an incremental replace writes the table whole (pyiceberg's delete
# filter costs per value; a whole scan, Arrow filter and write is faster).
PARTIAL_REPLACE_MAX_RECORDS = 64
# Set by `sf-lakehouse run` to its pid: a child process (dbt) whose parent has died refuses to
# commit, so a killed run never rewrites a table after the fact.
OWNER_PID_VAR = "SF_LAKEHOUSE_OWNER_PID"
# Test-only hook (see `_test_pause`): tests that kill a run at a commit set these.
TEST_PAUSE_VAR = "SF_LAKEHOUSE_TEST_PAUSE_AT"
TEST_BARRIER_VAR = "SF_LAKEHOUSE_TEST_BARRIER"

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
        UNIQUE_KEY_PROPERTY: "id,systemmodstamp",
    },
)


class OrphanedWriteError(RuntimeError):
    """This process's run has ended (its parent died): committing now would change a table
    behind the back of the next run."""


class ColumnTypeChangedError(ValueError):
    """New data has a column whose type differs from the table's and cannot be cast to it."""


def open_catalog(properties: Mapping[str, str]) -> Catalog:
    """Load the pyiceberg catalog; for the local SQL catalog, create its directories first."""
    props = dict(properties)
    if props.get("type") == "sql":
        database = Path(props["uri"].removeprefix("sqlite:///"))
        private_dir(database.parent)
        warehouse = props.get("warehouse", "")
        if warehouse.startswith("file://"):
            local = Path(warehouse.removeprefix("file://"))
            # A moved or copied home is refused before anything is read or written.
            check_home_location(local.parent, database, local)
            private_dir(local)
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
        try:
            catalog.create_namespace(namespace)
        except Exception:
            # Another writer created it in the meantime (the SQL catalog then fails on its
            # unique constraint rather than with NamespaceAlreadyExistsError).
            if not catalog.namespace_exists(namespace):
                raise
    table = load_table_or_none(catalog, identifier)
    if table is None:
        try:
            table = catalog.create_table(
                identifier,
                schema=nullable_schema(schema),
                partition_spec=PartitionSpec(),
                properties=dict(layout.properties),
            )
        except Exception:
            table = load_table_or_none(catalog, identifier)  # another writer created it first
            if table is None:
                raise
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
        _with_commit_retries(table, lambda t: _set_properties(t, stale))
        table = catalog.load_table(identifier)
    return table


def _set_properties(table: Table, properties: Mapping[str, str]) -> None:
    with table.transaction() as tx:
        tx.set_properties(dict(properties))


def set_properties(table: Table, properties: Mapping[str, str]) -> None:
    """Set table properties in one commit (retried when another writer commits first)."""
    _with_commit_retries(table, lambda t: _set_properties(t, properties))


def _table_name(table: Table) -> str:
    return ".".join(table.name())


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


def _retryable(error: BaseException) -> bool:
    """Another writer committed first (or held the SQLite catalog a moment too long)."""
    if isinstance(error, CommitFailedException):
        return True
    return type(error).__name__ == "OperationalError" and "database is locked" in str(error)


def _with_commit_retries(table: Table, write: Callable[[Table], Any]) -> Any:
    """Run `write` (one commit) until it wins: after a lost race, reload the table and redo the
    write from the start, so every check inside `write` sees the other writer's commit."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return write(table)
        except Exception as error:
            if not _retryable(error) or attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(min(0.1 * 2**attempt, 2.0))
            table = table.refresh()
    raise AssertionError("unreachable")


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
    name = _table_name(table)

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
            _before_commit(name)
        return rows.num_rows

    return _with_commit_retries(table, write)


WIDEN_OPERATION = "widen-columns"


def widen_columns(
    table: Table, widened: Mapping[str, pa.DataType], properties: Mapping[str, str]
) -> Table:
    """Give columns wider types (a number column made text) in one commit, with `properties`.
    Iceberg promotes no number to text, so each column is replaced under its name and every
    row rewritten with its value cast: no stored value is lost. Returns the reloaded table."""
    name = _table_name(table)

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
            _before_commit(name)
        return current.refresh()

    return _with_commit_retries(table, write)


def replace_rows(
    table: Table,
    data: pa.Table,
    properties: Mapping[str, str] | None = None,
    *,
    records: tuple[str, Collection[str]] | None = None,
) -> int:
    """Replace the whole content in one commit (a rebuild), or with `records` = (key column,
    keys) only the rows of those records (an incremental build). `properties` go into the
    table's properties and the snapshot summary of the same commit.

    Not retried on a lost race: the other writer's content may be newer than this one."""
    data = pa.Table.from_arrays(data.columns, schema=nullable_schema(data.schema))
    name = _table_name(table)
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
        if records is not None and _cheaper_whole(table, len(records[1])):
            aligned = pa.concat_tables([_rows_of_other_records(table, records, aligned), aligned])
            records = None
        if records is None:
            tx.overwrite(aligned, snapshot_properties=summary)
        else:
            key_column, keys = records
            tx.overwrite(
                aligned,
                overwrite_filter=In(key_column, sorted(keys)),
                snapshot_properties=summary,
            )
        _before_commit(name)
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


def _cheaper_whole(table: Table, records: int) -> bool:
    """Whether replacing `records` records had better write the table whole. A partial
    replace rewrites the files that hold the records and adds files for their new rows: past
    COMPACT_ABOVE_FILES every write and read opens too many small files (a dimension once
    reached 100 files for 800 rows after four runs, and each run was slower than the last);
    and its delete filter is evaluated value by value, slow past PARTIAL_REPLACE_MAX_RECORDS."""
    return data_file_count(table) > COMPACT_ABOVE_FILES or records > PARTIAL_REPLACE_MAX_RECORDS


def _rows_of_other_records(
    table: Table, records: tuple[str, Collection[str]], like: pa.Table
) -> pa.Table:
    """Every stored row except those of `records`, in the schema of `like`."""
    key_column, keys = records
    stored = table.scan().to_arrow()
    kept = stored.filter(pc.invert(is_one_of(stored.column(key_column), keys)))
    return align_to_table(kept, like.schema, _table_name(table))


def rewrite_rows(table: Table, data: pa.Table, operation: str) -> int:
    """Replace the content with `data` (same schema) in one commit, failing if another writer
    committed since `table` was loaded (a repair must not lose a concurrent append)."""
    data = pa.Table.from_arrays(data.columns, schema=nullable_schema(data.schema))
    name = _table_name(table)
    with table.transaction() as tx:
        tx.overwrite(
            align_to_table(data, tx.table_metadata.schema().as_arrow(), name),
            snapshot_properties={
                WRITE_ID_PROPERTY: uuid.uuid4().hex,
                "sf-lakehouse-operation": operation,
            },
        )
        _before_commit(name)
    return data.num_rows


def _before_commit(table_name: str) -> None:
    """Checks just before a commit: the run that started this process is still alive."""
    _test_pause("commit", table_name)
    # Unset: not started by an sf-lakehouse run (dbt by hand, a test), nothing to check.
    owner = os.environ.get(OWNER_PID_VAR)
    if owner and owner.isdigit() and int(owner) not in (os.getpid(), os.getppid()):
        raise OrphanedWriteError(
            f"not committing to {table_name}: the sf-lakehouse run (pid {owner}) that started "
            "this process has ended"
        )


def _test_pause(point: str, detail: str) -> None:
    """Test-only barrier, off unless `SF_LAKEHOUSE_TEST_PAUSE_AT` is set (tests that kill a run
    in the middle of an Iceberg commit set it). `SF_LAKEHOUSE_TEST_PAUSE_AT=commit` pauses before
    every commit, `commit:<database>.<table>` before that table's: the process writes
    `<point>.reached` (its pid and the table) into the directory `SF_LAKEHOUSE_TEST_BARRIER` and
    waits until `<point>.release` appears there."""
    wanted = os.environ.get(TEST_PAUSE_VAR)
    if not wanted or wanted not in (point, f"{point}:{detail}"):
        return
    barrier = Path(os.environ.get(TEST_BARRIER_VAR) or ".")
    barrier.mkdir(parents=True, exist_ok=True)
    (barrier / f"{point}.reached").write_text(f"{os.getpid()} {detail}\n", encoding="utf-8")
    while not (barrier / f"{point}.release").exists():
        time.sleep(0.05)


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
