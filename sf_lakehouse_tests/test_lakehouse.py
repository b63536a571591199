"""Iceberg tables written and read back through the real pyiceberg SQL catalog."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sf_lakehouse.config import Settings
from sf_lakehouse.lakehouse import catalog as catalog_module
from sf_lakehouse.lakehouse import file_rewrite, increments, tables
from sf_lakehouse.lakehouse.tables import (
    OWNER_PID_VAR,
    RAW_LAYOUT,
    ColumnTypeChangedError,
    OrphanedWriteError,
    PartitionField,
    TableLayout,
    append_rows,
    ensure_table,
    open_catalog,
    replace_rows,
)
from sf_lakehouse.lakehouse.versions import declared_unique_key

STAMP = dt.datetime(2026, 3, 1, 8)


def batch(ids: list[str], **extra: pa.Array) -> pa.Table:
    columns = {
        "id": pa.array(ids, pa.string()),
        "systemmodstamp": pa.array([STAMP] * len(ids), pa.timestamp("us")),
        "_extracted_at": pa.array([STAMP] * len(ids), pa.timestamp("us")),
        **extra,
    }
    return pa.table(columns)


def test_raw_layout_creates_namespace_partition_spec_and_properties(settings: Settings) -> None:
    catalog = open_catalog(settings.catalog_properties())
    table = ensure_table(catalog, "sf_raw_local.sf_user", batch(["a"]).schema, RAW_LAYOUT)
    assert ("sf_raw_local",) in catalog.list_namespaces()
    [field] = table.spec().fields
    assert (field.name, str(field.transform)) == ("_extracted_date", "day")
    assert table.schema().find_field(field.source_id).name == "_extracted_at"
    assert table.properties["write.parquet.compression-codec"] == "snappy"
    assert table.properties["write.target-file-size-bytes"] == str(128 * 1024 * 1024)
    assert str(table.schema().find_field("systemmodstamp").field_type) == "timestamp"
    assert all(not f.required for f in table.schema().fields)


def test_append_evolves_the_schema_and_keeps_old_columns(settings: Settings) -> None:
    catalog = open_catalog(settings.catalog_properties())
    first = batch(["a"], division=pa.array(["EMEA"]))
    table = ensure_table(catalog, "sf_raw_local.sf_user", first.schema, RAW_LAYOUT)
    append_rows(table, first)
    # A custom field appears in the org; division is missing from this batch.
    second = batch(["b"], region__c=pa.array(["North"]))
    append_rows(catalog.load_table("sf_raw_local.sf_user"), second)
    rows = catalog.load_table("sf_raw_local.sf_user").scan().to_arrow().sort_by("id").to_pylist()
    assert [(r["id"], r["division"], r["region__c"]) for r in rows] == [
        ("a", "EMEA", None),
        ("b", None, "North"),
    ]


def test_a_failed_append_leaves_the_table_as_it_was(settings: Settings) -> None:
    """Schema evolution and rows commit together or not at all: the batch brings a new column
    (added inside the append's transaction) and a value that fails the cast to its column's
    type (raised inside that same transaction, after the new column was added to it)."""
    catalog = open_catalog(settings.catalog_properties())
    good = batch(["a"], division=pa.array(["EMEA"]))
    table = ensure_table(catalog, "sf_raw_local.sf_user", good.schema, RAW_LAYOUT)
    append_rows(table, good)
    snapshot = catalog.load_table("sf_raw_local.sf_user").current_snapshot().snapshot_id
    bad = batch(
        ["b"],
        division=pa.array([{"nested": 1}]),  # a struct where the column is a string
        new_column=pa.array(["x"]),
    )
    with pytest.raises(ColumnTypeChangedError, match=r"column division of sf_raw_local\.sf_user"):
        append_rows(catalog.load_table("sf_raw_local.sf_user"), bad)
    after = catalog.load_table("sf_raw_local.sf_user")
    assert after.current_snapshot().snapshot_id == snapshot
    assert "new_column" not in after.schema().column_names
    assert after.scan().to_arrow().num_rows == 1


def test_replace_rows_swaps_content_in_one_snapshot(settings: Settings) -> None:
    catalog = open_catalog(settings.catalog_properties())
    layout = TableLayout(partition_fields=(PartitionField("division", "identity", "division"),))
    first = pa.table({"id": ["a", "b"], "division": ["EMEA", None]})
    table = ensure_table(catalog, "sf_curated_local.dim", first.schema, layout)
    replace_rows(table, first)
    replace_rows(
        catalog.load_table("sf_curated_local.dim"), pa.table({"id": ["c"], "division": ["APAC"]})
    )
    table = catalog.load_table("sf_curated_local.dim")
    assert table.scan().to_arrow().to_pylist() == [{"id": "c", "division": "APAC"}]
    assert [f.name for f in table.spec().fields] == ["division"]


def raw_batch(keys: list[tuple[str, int]], division: str = "EMEA") -> pa.Table:
    """Raw versions (id, minute of systemmodstamp)."""
    return pa.table(
        {
            "id": pa.array([k for k, _ in keys], pa.string()),
            "systemmodstamp": pa.array(
                [STAMP + dt.timedelta(minutes=m) for _, m in keys], pa.timestamp("us")
            ),
            "division": pa.array([division] * len(keys), pa.string()),
            "_extracted_at": pa.array([STAMP] * len(keys), pa.timestamp("us")),
        }
    )


def stored_keys(table) -> list[tuple[str, dt.datetime]]:
    rows = table.refresh().scan(selected_fields=("id", "systemmodstamp")).to_arrow()
    return sorted(
        zip(rows.column("id").to_pylist(), rows.column("systemmodstamp").to_pylist(), strict=True)
    )


def test_raw_appends_never_store_a_version_twice(settings: Settings) -> None:
    catalog = open_catalog(settings.catalog_properties())
    first = raw_batch([("a", 0), ("b", 0)])
    table = ensure_table(catalog, "sf_raw_local.sf_user", first.schema, RAW_LAYOUT)
    assert declared_unique_key(table) == ("id", "systemmodstamp")
    assert append_rows(table, first) == 2
    # A stale extraction appends the same versions again, plus one new one twice in its batch.
    again = raw_batch([("a", 0), ("b", 0), ("c", 5), ("c", 5)], division="APAC")
    assert append_rows(catalog.load_table("sf_raw_local.sf_user"), again) == 1
    assert [k for k, _ in stored_keys(table)] == ["a", "b", "c"]
    assert append_rows(catalog.load_table("sf_raw_local.sf_user"), again) == 0


def test_a_later_read_of_a_version_with_other_values_is_stored(settings: Settings) -> None:
    """Rule 1 keeps a version's latest read: a re-read with other values must reach the raw
    table (the first uniqueness guard dropped it, and the dimension kept the stale values); an
    earlier read, or an identical one, adds nothing and is not stored."""
    catalog = open_catalog(settings.catalog_properties())
    first = raw_batch([("a", 0)])
    table = ensure_table(catalog, "sf_raw_local.sf_user", first.schema, RAW_LAYOUT)
    append_rows(table, first)

    def read_at(minutes: int, division: str) -> pa.Table:
        batch = raw_batch([("a", 0)], division=division)
        extracted = pa.array([STAMP + dt.timedelta(minutes=minutes)], pa.timestamp("us"))
        return batch.set_column(
            batch.schema.get_field_index("_extracted_at"), "_extracted_at", extracted
        )

    load = lambda: catalog.load_table("sf_raw_local.sf_user")  # noqa: E731
    assert append_rows(load(), read_at(10, "APAC")) == 1  # later, other values
    assert append_rows(load(), read_at(20, "APAC")) == 0  # later, same values
    assert append_rows(load(), read_at(5, "AMER")) == 0  # earlier than a stored read
    # In one batch only the latest read of a version counts.
    assert append_rows(load(), pa.concat_tables([read_at(30, "X"), read_at(40, "Y")])) == 1
    stored = load().scan(selected_fields=("division",)).to_arrow().column(0).to_pylist()
    assert sorted(stored) == ["APAC", "EMEA", "Y"]


def test_a_lost_commit_race_is_retried_with_the_duplicates_checked_again(
    settings: Settings,
) -> None:
    """Two writers loaded the table at the same snapshot and extracted the same versions: the
    second one's commit fails (the first committed), and its retry finds the versions stored."""
    catalog = open_catalog(settings.catalog_properties())
    seed = raw_batch([("a", 0)])
    ensure_table(catalog, "sf_raw_local.sf_user", seed.schema, RAW_LAYOUT)
    append_rows(catalog.load_table("sf_raw_local.sf_user"), seed)
    writer_one = catalog.load_table("sf_raw_local.sf_user")
    writer_two = catalog.load_table("sf_raw_local.sf_user")
    increment = raw_batch([("b", 1), ("c", 2)])
    assert append_rows(writer_one, increment) == 2
    both = raw_batch([("b", 1), ("c", 2), ("d", 3)])
    assert append_rows(writer_two, both) == 1  # only d: b and c were committed by writer one
    assert [k for k, _ in stored_keys(writer_one)] == ["a", "b", "c", "d"]
    snapshots = catalog.load_table("sf_raw_local.sf_user").snapshots()
    assert len(snapshots) == 3


def test_concurrent_first_writes_create_the_table_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers that both found no namespace and no table: the second one's creations fail
    (the first made them in the meantime) and it loads the table instead."""
    catalog = open_catalog(settings.catalog_properties())
    data = raw_batch([("a", 0)])
    first = ensure_table(catalog, "sf_raw_local.sf_user", data.schema, RAW_LAYOUT)
    late = open_catalog(settings.catalog_properties())

    def stale_at_first(real, stale_answer):
        """`real`, except that its first answer is the one it gave before `first` ran."""
        calls = []

        def answer(*args):
            calls.append(args)
            return stale_answer if len(calls) == 1 else real(*args)

        return answer

    monkeypatch.setattr(late, "namespace_exists", stale_at_first(late.namespace_exists, False))
    monkeypatch.setattr(
        catalog_module,
        "load_table_or_none",
        stale_at_first(catalog_module.load_table_or_none, None),
    )
    second = ensure_table(late, "sf_raw_local.sf_user", data.schema, RAW_LAYOUT)
    assert first.metadata.table_uuid == second.metadata.table_uuid


def test_a_changed_field_type_names_the_column_and_the_fix(settings: Settings) -> None:
    catalog = open_catalog(settings.catalog_properties())
    first = batch(["a"], amount=pa.array([1.5], pa.float64()))
    table = ensure_table(catalog, "sf_raw_local.sf_opportunity", first.schema, RAW_LAYOUT)
    append_rows(table, first)
    changed = batch(["b"], amount=pa.array(["one million"], pa.string()))
    with pytest.raises(ColumnTypeChangedError) as error:
        append_rows(catalog.load_table("sf_raw_local.sf_opportunity"), changed)
    message = str(error.value)
    assert "column amount of sf_raw_local.sf_opportunity is double" in message
    assert "type changed" in message and "\n" not in message


def test_a_process_whose_run_has_died_does_not_commit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt started by `sf-lakehouse run` inherits the run's pid; once that process is gone
    (this process's parent is another one), its writes are refused."""
    catalog = open_catalog(settings.catalog_properties())
    data = batch(["a"])
    table = ensure_table(catalog, "sf_curated_local.dim", data.schema, TableLayout())
    gone = max(os.getpid(), os.getppid()) + 1_000_000
    monkeypatch.setenv(OWNER_PID_VAR, str(gone))
    with pytest.raises(OrphanedWriteError):
        replace_rows(table, data)
    assert catalog.load_table("sf_curated_local.dim").current_snapshot() is None
    monkeypatch.setenv(OWNER_PID_VAR, str(os.getppid()))  # the run is alive: it commits
    assert replace_rows(table, data) == 1


def test_incremental_replaces_compact_the_table_past_the_file_limit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each partial overwrite leaves more small files; the dimension once reached 100 files for
    800 rows after four runs, and every run got slower. Past the limit the replace writes the
    table whole: the same rows as partial replaces would give, in one file per partition."""
    monkeypatch.setattr(tables, "COMPACT_ABOVE_FILES", 6)
    monkeypatch.setattr(tables, "COMPACT_FILES_PER_PARTITION", 1)
    # Every replace starts a file per partition (no file takes the new rows).
    monkeypatch.setattr(file_rewrite, "ABSORB_RATIO", 10**9)
    catalog = open_catalog(settings.catalog_properties())
    layout = TableLayout(partition_fields=(PartitionField("part", "identity", "part"),))
    rows = {f"r{n}": n % 4 for n in range(12)}  # record -> partition

    def version(ids: list[str], value: int) -> pa.Table:
        return pa.table({"id": ids, "part": [rows[i] for i in ids], "v": [value] * len(ids)})

    table = ensure_table(catalog, "sf_curated_local.dim", version(list(rows), 0).schema, layout)
    replace_rows(table, version(list(rows), 0))
    expected = {i: 0 for i in rows}
    counts = []
    for run in range(1, 6):
        touched = [i for n, i in enumerate(rows) if (n + run) % 3 == 0]
        replace_rows(
            catalog.load_table("sf_curated_local.dim"),
            version(touched, run),
            records=("id", touched),
        )
        expected |= {i: run for i in touched}
        table = catalog.load_table("sf_curated_local.dim")
        stored = table.scan().to_arrow()
        assert dict(zip(stored["id"].to_pylist(), stored["v"].to_pylist(), strict=True)) == expected
        assert stored.num_rows == len(rows)
        counts.append(tables.data_file_count(table))
    assert max(counts) <= 6 + 4  # never far past the limit
    assert min(counts[1:]) <= 4  # a compaction happened: one file per partition


def _files(table) -> set[str]:
    return {task.file.file_path for task in table.scan().plan_files()}


def test_an_incremental_replace_rewrites_only_the_files_holding_a_changed_row(
    settings: Settings,
) -> None:
    """A rebuilt record keeps most of its rows (its closed versions); rewriting every file that
    holds one of its rows made each run rewrite the whole dimension at 1M records. Only the
    files with a row that goes are rewritten, unchanged rows are not written again, and new
    rows join a rewritten file of their partition: one snapshot, the same rows as a rebuild."""
    catalog = open_catalog(settings.catalog_properties())
    layout = TableLayout(partition_fields=(PartitionField("current", "identity", "current"),))

    def rows(versions: list[tuple[str, int, bool]]) -> pa.Table:
        return pa.table(
            {
                "id": [v[0] for v in versions],
                "version": pa.array([v[1] for v in versions], pa.int64()),
                "current": [v[2] for v in versions],
                "note": [None if v[1] == 0 else f"v{v[1]}" for v in versions],
            }
        )

    first = rows([("a", 0, False), ("a", 1, True), ("b", 0, True), ("c", 0, True)])
    table = ensure_table(catalog, "sf_curated_local.dim", first.schema, layout)
    replace_rows(table, first)
    table = catalog.load_table("sf_curated_local.dim")
    closed_files = {t.file.file_path for t in table.scan().plan_files() if not t.file.partition[0]}
    snapshots_before = len(table.snapshots())
    # Record a closes version 1 and opens 2; its version 0 is unchanged. b is rebuilt the same.
    rebuilt = rows([("a", 0, False), ("a", 1, False), ("a", 2, True), ("b", 0, True)])
    replace_rows(table, rebuilt, records=("id", ["a", "b"]))
    table = catalog.load_table("sf_curated_local.dim")
    expected = rows(
        [("a", 0, False), ("a", 1, False), ("a", 2, True), ("b", 0, True), ("c", 0, True)]
    )
    stored = table.scan().to_arrow().sort_by([("id", "ascending"), ("version", "ascending")])
    assert stored.to_pylist() == expected.to_pylist()
    assert len(table.snapshots()) == snapshots_before + 1
    summary = table.current_snapshot().summary
    # The closed file stays (it is the partition's only file: a rebuild's, not rewritten for
    # new rows); a's new closed row is in a new file, the current file is rewritten with a's
    # new current row (b and c kept).
    assert closed_files <= _files(table) and len(_files(table)) == 3
    assert summary["deleted-data-files"] == "1" and summary["deleted-records"] == "3"
    assert summary["added-records"] == "4"


def test_new_rows_join_the_small_file_an_earlier_increment_started(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file per partition and run made a dimension slower with every run: once a partition
    holds a small file beside its large one, new rows are written into it."""
    monkeypatch.setattr(file_rewrite, "ABSORB_RATIO", 1)
    catalog = open_catalog(settings.catalog_properties())
    data = pa.table({"id": [f"r{n}" for n in range(20)], "v": list(range(20))})
    table = ensure_table(catalog, "sf_curated_local.dim", data.schema, TableLayout())
    replace_rows(table, data)
    expected = data.to_pylist()
    counts = []
    for run in range(3):
        new = pa.table({"id": [f"n{run}"], "v": [100 + run]})
        replace_rows(catalog.load_table("sf_curated_local.dim"), new, records=("id", [f"n{run}"]))
        expected += new.to_pylist()
        table = catalog.load_table("sf_curated_local.dim")
        counts.append(len(_files(table)))
        assert sorted(table.scan().to_arrow().to_pylist(), key=repr) == sorted(expected, key=repr)
    assert counts == [2, 2, 2]


def test_an_incremental_replace_that_changes_nothing_writes_no_file(settings: Settings) -> None:
    catalog = open_catalog(settings.catalog_properties())
    data = pa.table({"id": ["a", "b"], "v": [1, None]})
    table = ensure_table(catalog, "sf_curated_local.dim", data.schema, TableLayout())
    replace_rows(table, data)
    table = catalog.load_table("sf_curated_local.dim")
    files = _files(table)
    replace_rows(table, data.slice(1), {"p": "1"}, records=("id", ["b"]))
    table = catalog.load_table("sf_curated_local.dim")
    assert _files(table) == files and table.properties["p"] == "1"
    assert table.scan().to_arrow().sort_by("id").to_pylist() == data.to_pylist()


_RECORDS = [f"r{n}" for n in range(8)]
# Few values, so that identical rows (in the table and in a replace) occur too.
_ROWS = st.lists(
    st.tuples(
        st.sampled_from(_RECORDS),
        st.integers(0, 2),
        st.booleans(),
        st.none() | st.sampled_from(["x", "xy"]),
    ),
    max_size=14,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=_ROWS,
    replaces=st.lists(st.tuples(st.sets(st.sampled_from(_RECORDS), max_size=5), _ROWS), max_size=3),
    in_filter_max=st.sampled_from([0, increments.IN_FILTER_MAX_VALUES]),
    absorb_ratio=st.sampled_from([1, file_rewrite.ABSORB_RATIO, 10**9]),
)
@example(  # a row stored twice, replaced by one copy of it
    first=[("r0", 0, True, None)] * 2,
    replaces=[({"r0"}, [("r0", 0, True, None)])],
    in_filter_max=increments.IN_FILTER_MAX_VALUES,
    absorb_ratio=file_rewrite.ABSORB_RATIO,
)
def test_per_file_replaces_give_the_rows_of_a_rebuild(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    first: list,
    replaces: list,
    in_filter_max: int,
    absorb_ratio: int,
) -> None:
    """Whatever the rows, replacing some records' rows file by file leaves the table holding
    exactly the other records' rows plus the new ones (the rows a rebuild writes), in one
    snapshot per replace, with files planned through `In` or through Arrow."""
    monkeypatch.setattr(increments, "IN_FILTER_MAX_VALUES", in_filter_max)
    monkeypatch.setattr(file_rewrite, "ABSORB_RATIO", absorb_ratio)
    catalog = open_catalog(settings.catalog_properties())
    identifier = f"sf_curated_local.dim_{uuid.uuid4().hex[:8]}"
    layout = TableLayout(
        partition_fields=(
            PartitionField("current", "identity", "current"),
            PartitionField("id", "bucket[4]", "id_bucket"),
        )
    )

    def table_of(rows: list) -> pa.Table:
        return pa.table(
            {
                "id": pa.array([r[0] for r in rows], pa.string()),
                "version": pa.array([r[1] for r in rows], pa.int64()),
                "current": pa.array([r[2] for r in rows], pa.bool_()),
                "note": pa.array([r[3] for r in rows], pa.string()),
            }
        )

    table = ensure_table(catalog, identifier, table_of([]).schema, layout)
    replace_rows(table, table_of(first))
    expected = list(first)
    for records, rows in replaces:
        new = [r for r in rows if r[0] in records]
        table = catalog.load_table(identifier)
        before = len(table.snapshots())
        replace_rows(table, table_of(new), records=("id", sorted(records)))
        expected = [r for r in expected if r[0] not in records] + new
        table = catalog.load_table(identifier)
        assert len(table.snapshots()) - before <= 1
        stored = table.scan().to_arrow()
        got = sorted(
            zip(*(stored.column(c).to_pylist() for c in stored.column_names), strict=True), key=repr
        )
        assert got == sorted(expected, key=repr)


def test_a_replace_of_rows_with_no_text_form_replaces_the_records_whole(
    settings: Settings,
) -> None:
    """Rows are matched by their values as text; a list column has none: the records' rows
    are then all replaced (not matched), and the table still holds exactly the new rows."""
    catalog = open_catalog(settings.catalog_properties())
    data = pa.table({"id": ["a", "b"], "tags": [["x"], ["y", "z"]]})
    table = ensure_table(catalog, "sf_curated_local.dim", data.schema, TableLayout())
    replace_rows(table, data)
    new = pa.table({"id": ["b"], "tags": [["w"]]})
    replace_rows(catalog.load_table("sf_curated_local.dim"), new, records=("id", ["b"]))
    stored = catalog.load_table("sf_curated_local.dim").scan().to_arrow().sort_by("id")
    assert stored.to_pylist() == [{"id": "a", "tags": ["x"]}, {"id": "b", "tags": ["w"]}]
