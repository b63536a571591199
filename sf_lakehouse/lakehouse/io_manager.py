"""The Iceberg IO manager: Arrow tables in and out, laid out as the asset's metadata declares."""

from __future__ import annotations

import pyarrow as pa
from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from pyiceberg.table import Table

from sf_lakehouse.lakehouse.resource import LakehouseResource
from sf_lakehouse.lakehouse.tables import TableLayout, append_rows, ensure_table, replace_rows, scan


def column_schema(table: Table, descriptions: dict[str, str] | None = None) -> TableSchema:
    """The table's columns with their Iceberg types (and descriptions when known), for the UI."""
    descriptions = descriptions or {}
    return TableSchema(
        columns=[
            TableColumn(name=f.name, type=str(f.field_type), description=descriptions.get(f.name))
            for f in table.schema().fields
        ]
    )


class IcebergIOManager(ConfigurableIOManager):
    """Writes Arrow tables to Iceberg as the asset's metadata declares.

    Asset metadata: `partition_spec` and `table_properties` (see `TableLayout`), and
    `write_mode`: `append` (schema evolves by adding columns, never dropping them) or `replace`.
    The table is the asset key's (`sf_raw/sf_user` -> `<raw database>.sf_user`). Written instead
    of dagster-iceberg's PyArrowIcebergIOManager because that one derives the partition spec only
    from Dagster partitions (it removes a `day(_extracted_at)` spec from an unpartitioned asset)
    and its schema update drops columns missing from a batch, which would lose history in an
    append-only table.
    """

    lakehouse: LakehouseResource

    def handle_output(self, context: OutputContext, obj: pa.Table) -> None:
        metadata = context.definition_metadata or {}
        key = list(context.asset_key.path)
        identifier = self.lakehouse.identifier(key)
        layout = TableLayout.from_metadata(metadata)
        write_mode = metadata.get("write_mode", "append")
        catalog = self.lakehouse.catalog()
        table = ensure_table(catalog, identifier, obj.schema, layout)
        if write_mode == "append":
            written = append_rows(table, obj)
        elif write_mode == "replace":
            written = replace_rows(table, obj)
        else:
            raise ValueError(f"write_mode {write_mode!r} of {identifier}: use append or replace")
        table = catalog.load_table(identifier)
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        context.add_output_metadata(
            {
                "dagster/column_schema": column_schema(table),
                "iceberg_table": identifier,
                "rows_written": written,
                "table_rows": int(summary.get("total-records", 0)),
                "snapshot_id": str(snapshot.snapshot_id) if snapshot else "none",
                "metadata_location": MetadataValue.path(table.metadata_location),
            }
        )

    def load_input(self, context: InputContext) -> pa.Table:
        return scan(self.lakehouse.require_table(list(context.asset_key.path)))
