"""Copy-on-write per data file: an incremental replace rewrites only the files that hold rows it
removes, in one Iceberg snapshot.

A dimension's rebuilt records mostly keep their stored rows (a record that changed closes its
current version and opens one; its closed versions stay as they are). So the replace compares
rows, not records: a stored row of a rebuilt record that the new rows hold unchanged stays in its
file; a file is rewritten only when it holds a row that goes, and only the rows that are new are
written. The closed versions (`is_current = false` partitions) are then appended to, never
rewritten, and the current ones are rewritten only in the files that hold a changed record.
New rows are written with the kept rows of their partition's rewritten files, or into the
partition's smallest file while it is small, so the table does not gather a small file per
partition and run.

Rows are matched on all their values (NULL equal to NULL) as text, in Arrow and one Python set:
pyiceberg's `In` expression costs per data file times per value (2,000 keys over 32 files:
3.3 s). pyiceberg's `_dataframe_to_data_files` writes the files (what its own copy-on-write
delete uses; 0.11.1 has no public writer of data files to add to an overwrite).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table

from sf_lakehouse.lakehouse.increments import key_filter

# New rows of a partition go into its smallest file (rewritten with them) while that file is
# at most 1/ABSORB_RATIO of the partition's largest: the file a rebuild wrote is never rewritten
# for them, the small file the increments started is (a file per partition and run otherwise).
ABSORB_RATIO = 8
# The files to rewrite that the first pass read are kept for the second up to this many bytes
# (read again past it): memory bounded, most increments read each file once.
HELD_BYTES = 256 * 1024 * 1024
# Files read at once by the first pass.
READ_AHEAD = 4
# Values of a row joined into one text: a byte no Salesforce value holds separates them, another
# stands for NULL.
_SEPARATOR = "\x1f"
_NULL = "\x00"


def row_keys(data: pa.Table, columns: Iterable[str]) -> pa.ChunkedArray | pa.Array:
    """One text per row standing for all of its values in `columns` (NULL differs from any
    value): rows with the same text hold the same values."""
    texts = [data.column(name).cast(pa.string()) for name in columns]
    if not texts:
        return pa.repeat("", data.num_rows)
    return pc.binary_join_element_wise(
        *texts, _SEPARATOR, null_handling="replace", null_replacement=_NULL
    )


def _has_repeats(keys: pa.Array | pa.ChunkedArray) -> bool:
    return len(pc.unique(keys)) != len(keys)


def _partition_of(task: FileScanTask) -> tuple[int, tuple[Any, ...]]:
    record = task.file.partition
    return task.file.spec_id, tuple(record[i] for i in range(len(record)))


@dataclass
class _Pass:
    """What reading the candidate files found."""

    rewrite: list[FileScanTask] = field(default_factory=list)
    holding: list[FileScanTask] = field(default_factory=list)  # files with a row of the records
    smallest: dict[tuple[int, tuple[Any, ...]], FileScanTask] = field(default_factory=dict)
    largest: dict[tuple[int, tuple[Any, ...]], int] = field(default_factory=dict)
    stored_keys: list[pa.Array] = field(default_factory=list)


@dataclass(frozen=True)
class RecordsRewrite:
    """The files one replace deletes and adds, and its row counts."""

    deleted: list[DataFile]
    added: list[DataFile]
    rows_removed: int
    rows_added: int


class FileRewriter:
    """Replaces the rows of some records with `data` (aligned to the table's current schema in
    the transaction `tx`), touching only the files that hold a row that goes."""

    def __init__(
        self, tx: Any, table: Table, data: pa.Table, key_column: str, keys: Collection[Any]
    ) -> None:
        self._tx = tx
        # The transaction's metadata is rebuilt (deep-copied) on every access: read it once.
        self._metadata = tx.table_metadata
        self._table = table
        self._data = data
        self._key_column = key_column
        self._keys = pa.array(sorted(keys), data.schema.field(key_column).type)
        self._expression = key_filter(key_column, keys)
        self._columns = data.column_names
        # Identical rows (never in a dimension: scd_id is unique) would make matching rows by
        # value ambiguous, and a column with no text form (a list) cannot be matched: then every
        # row of the records goes and every new row is written.
        try:
            self._new_keys = row_keys(data, self._columns)
            self._repeated = _has_repeats(self._new_keys)
            self._new_key_set = set(self._new_keys.to_pylist())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            self._new_keys = pa.array([], pa.string())
            self._new_key_set = set()
            self._repeated = True
        self._write_uuid = uuid.uuid4()
        # Files the first pass found to rewrite, kept (up to HELD_BYTES) for the second.
        self._held: dict[str, pa.Table] = {}
        self._held_bytes = 0
        self._counter = itertools.count(0)

    def _read(self, task: FileScanTask) -> pa.Table:
        held = self._held.pop(task.file.file_path, None)
        if held is not None:
            return held
        metadata = self._metadata
        scan = ArrowScan(
            table_metadata=metadata,
            io=self._table.io,
            projected_schema=metadata.schema(),
            row_filter=AlwaysTrue(),
        )
        return scan.to_table(tasks=[task]).select(self._columns)

    def _read_each(self, tasks: list[FileScanTask]) -> Iterator[tuple[FileScanTask, pa.Table]]:
        """Each file's rows, READ_AHEAD files read at once (Arrow decodes without the GIL),
        never more held."""
        with ThreadPoolExecutor(max_workers=READ_AHEAD) as pool:
            for start in range(0, len(tasks), READ_AHEAD):
                window = tasks[start : start + READ_AHEAD]
                yield from zip(window, pool.map(self._read, window), strict=True)

    def _going(self, rows: pa.Table) -> tuple[pa.Array, pa.Array]:
        """(mask of the rows of the records, mask of those that go: not among the new rows, or
        all of them when rows repeat). Only the records' rows are compared."""
        keys = rows.column(self._key_column)
        of_records = pc.fill_null(
            pc.is_in(keys, value_set=self._keys.cast(keys.type)), False
        ).combine_chunks()
        if self._repeated or not pc.any(of_records).as_py():
            return of_records, of_records
        stored = row_keys(rows.filter(of_records), self._columns).to_pylist()
        # A Python set built once: Arrow's is_in would hash all new rows again for every file.
        differs = pa.array([key not in self._new_key_set for key in stored], pa.bool_())
        return of_records, pc.replace_with_mask(of_records, of_records, differs)

    def _first_pass(
        self, every: Iterable[FileScanTask], candidates: Iterable[FileScanTask]
    ) -> _Pass:
        """Sizes of every file (from the manifests), rows of the files that may hold a record."""
        found = _Pass()
        for task in every:
            partition = _partition_of(task)
            smallest = found.smallest.get(partition)
            size = task.file.file_size_in_bytes
            if smallest is None or size < smallest.file.file_size_in_bytes:
                found.smallest[partition] = task
            found.largest[partition] = max(found.largest.get(partition, 0), size)
        for task, rows in self._read_each(list(candidates)):
            of_records, going = self._going(rows)
            if pc.any(of_records).as_py():
                found.holding.append(task)
                if not self._repeated:
                    found.stored_keys.append(row_keys(rows.filter(of_records), self._columns))
            if pc.any(going).as_py():
                found.rewrite.append(task)
                if self._held_bytes + rows.nbytes <= HELD_BYTES:
                    self._held[task.file.file_path] = rows
                    self._held_bytes += rows.nbytes
        return found

    def _write(self, rows: pa.Table) -> Iterator[DataFile]:
        if rows.num_rows == 0:
            return iter(())
        return iter(
            _dataframe_to_data_files(
                table_metadata=self._metadata,
                df=rows,
                io=self._table.io,
                write_uuid=self._write_uuid,
                counter=self._counter,
            )
        )

    def _write_partitions(self, pending: Mapping[Any, list[pa.Table]]) -> Iterator[DataFile]:
        for parts in pending.values():
            yield from self._write(pa.concat_tables(parts))

    def _new_rows_by_partition(self, stored: list[pa.Array]) -> dict[Any, pa.Table]:
        """The rows of `data` not stored already, grouped like the files they go into."""
        new = self._data
        if not self._repeated and stored:
            known = pa.chunked_array(stored, pa.string()).combine_chunks()
            new = new.filter(pc.invert(pc.is_in(self._new_keys, value_set=known)))
        spec = self._metadata.spec()
        schema = self._metadata.schema()
        if new.num_rows == 0:
            return {}
        if spec.is_unpartitioned():
            return {(spec.spec_id, ()): new}
        columns = {}
        for index, partition_field in enumerate(spec.fields):
            source = schema.find_field(partition_field.source_id)
            transform = partition_field.transform.pyarrow_transform(source.field_type)
            columns[f"p{index}"] = transform(new.column(source.name))
        names = list(columns)
        columns["row"] = pa.array(range(new.num_rows), pa.int64())
        groups = pa.table(columns).group_by(names, use_threads=False).aggregate([("row", "list")])
        return {
            (spec.spec_id, tuple(group[name] for name in names)): new.take(group["row_list"])
            for group in groups.to_pylist()
        }

    def rewrite(self) -> RecordsRewrite:
        every = list(self._table.scan().plan_files())
        if isinstance(self._expression, AlwaysTrue):
            candidates = every
        else:  # pruned by partition and column bounds
            candidates = list(self._table.scan(row_filter=self._expression).plan_files())
        found = self._first_pass(every, candidates)
        if not self._repeated and found.stored_keys:
            self._repeated = _has_repeats(pa.chunked_array(found.stored_keys, pa.string()))
        if self._repeated:
            found.rewrite, found.stored_keys = list(found.holding), []
        new_rows = self._new_rows_by_partition(found.stored_keys)
        rows_added = sum(rows.num_rows for rows in new_rows.values())
        rewrite = list(found.rewrite)
        chosen = {task.file.file_path for task in rewrite}
        for partition in new_rows:
            small = found.smallest.get(partition)
            if small is None or small.file.file_path in chosen:
                continue
            size = small.file.file_size_in_bytes
            if not any(_partition_of(task) == partition for task in rewrite) and (
                size < found.largest[partition] and size * ABSORB_RATIO <= found.largest[partition]
            ):
                rewrite.append(small)
                chosen.add(small.file.file_path)
        deleted: list[DataFile] = []
        added: list[DataFile] = []
        removed = 0
        # Kept and new rows are written a partition at a time (pyiceberg's writer filters its
        # input once per partition it holds), flushed once HELD_BYTES are pending.
        pending: dict[Any, list[pa.Table]] = {}
        pending_bytes = 0
        for task, rows in self._read_each(rewrite):
            _, going = self._going(rows)
            kept = rows.filter(pc.invert(going))
            removed += rows.num_rows - kept.num_rows
            partition = _partition_of(task)
            extra = new_rows.pop(partition, None)
            deleted.append(task.file)
            for part in (kept, extra):
                if part is not None and part.num_rows:
                    pending.setdefault(partition, []).append(part)
                    pending_bytes += part.nbytes
            if pending_bytes > HELD_BYTES:
                added.extend(self._write_partitions(pending))
                pending, pending_bytes = {}, 0
        for partition, rows in new_rows.items():
            pending.setdefault(partition, []).append(rows)
        added.extend(self._write_partitions(pending))
        return RecordsRewrite(deleted, added, removed, rows_added)


def replace_records(
    tx: Any,
    table: Table,
    data: pa.Table,
    records: tuple[str, Collection[Any]],
    snapshot_properties: Mapping[str, str],
) -> RecordsRewrite:
    """Within the transaction `tx`: the rows of `records` (key column, keys) become `data`,
    as one overwrite snapshot that deletes the rewritten files and adds their replacements."""
    key_column, keys = records
    result = FileRewriter(tx, table, data, key_column, keys).rewrite()
    if result.deleted or result.added:
        with tx.update_snapshot(snapshot_properties=dict(snapshot_properties)).overwrite() as snap:
            for data_file in result.deleted:
                snap.delete_data_file(data_file)
            for data_file in result.added:
                snap.append_data_file(data_file)
    return result
