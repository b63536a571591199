"""Iceberg tables written and read back through the real pyiceberg SQL catalog."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from sf_lakehouse.config import Settings
from sf_lakehouse.lakehouse.tables import (
    RAW_LAYOUT,
    PartitionField,
    TableLayout,
    append_rows,
    ensure_table,
    open_catalog,
    replace_rows,
)

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
    catalog = open_catalog(settings.catalog_properties())
    good = batch(["a"])
    table = ensure_table(catalog, "sf_raw_local.sf_user", good.schema, RAW_LAYOUT)
    append_rows(table, good)
    snapshot = catalog.load_table("sf_raw_local.sf_user").current_snapshot().snapshot_id
    # A value that cannot be cast to the column's type fails the write inside the transaction.
    bad = pa.table({"id": pa.array([{"nested": 1}]), "new_column": pa.array(["x"])})
    with pytest.raises(Exception):  # noqa: B017 - any failure will do; the table is what matters
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
