"""dbt-duckdb plugin: dbt reads the raw Iceberg table and writes the dimension back to Iceberg.

Profile (`dbt_project/profiles.yml`, target `local`):
    plugins: [{module: sf_lakehouse.lakehouse.dbt_plugin, alias: lakehouse,
               config: {environment: local, lakehouse_home: ...}}]
Sources with `meta: {plugin: lakehouse}` are read from the catalog; models with
`materialized='external', plugin='lakehouse'` are written to `<schema>.<identifier>` in it, laid
out from the same model config that dbt-athena uses (`partitioned_by`, `write_compression`,
`table_properties`), so the layout is declared once for both engines.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import SourceConfig, TargetConfig

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.lakehouse.tables import (
    PartitionField,
    TableLayout,
    ensure_table,
    open_catalog,
    replace_rows,
)

# dbt-athena table_properties -> Iceberg table properties
_ATHENA_PROPERTY_NAMES = {"write_target_data_file_size_bytes": "write.target-file-size-bytes"}


# dbt-athena writes Iceberg partitioning as Athena's CTAS does: `column`, `day(column)`,
# `bucket(column, 16)`, `truncate(column, 16)`.
_ATHENA_PARTITION = re.compile(
    r"^\s*(?:(?P<transform>[a-z]+)\s*\(\s*)?(?P<column>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?(transform)\s*(?:,\s*(?P<width>[0-9]+)\s*)?\))\s*$"
)
# Partition field names as Athena (Trino) gives them, so both engines agree on the spec.
_FIELD_SUFFIX = {
    "bucket": "_bucket",
    "truncate": "_trunc",
    "year": "_year",
    "month": "_month",
    "day": "_day",
    "hour": "_hour",
}
_WIDTH_TRANSFORMS = {"bucket", "truncate"}


def partition_field_from_athena(expression: str) -> PartitionField:
    """One `partitioned_by` entry of a dbt-athena Iceberg model as an Iceberg partition field:
    `is_current` -> identity, `bucket(user_id, 16)` -> bucket[16] named `user_id_bucket`."""
    match = _ATHENA_PARTITION.match(expression)
    transform = match["transform"] if match else None
    width = match["width"] if match else None
    if (
        match is None
        or (transform is not None and transform not in _FIELD_SUFFIX)
        or (transform in _WIDTH_TRANSFORMS) != (width is not None)
    ):
        raise ValueError(
            f"partitioned_by entry {expression!r} is not a column or one of "
            "year|month|day|hour(column), bucket(column, N), truncate(column, N)"
        )
    column = match["column"]
    if transform is None:
        return PartitionField(column, "identity", column)
    spelled = f"{transform}[{width}]" if width is not None else transform
    return PartitionField(column, spelled, column + _FIELD_SUFFIX[transform])


def layout_from_model_config(config: Any) -> TableLayout:
    """The Iceberg layout a dbt model declares for dbt-athena, applied to the local catalog."""
    properties = {"format-version": "2", "write.format.default": "parquet"}
    if compression := config.get("write_compression"):
        properties["write.parquet.compression-codec"] = str(compression).lower()
    for name, value in (config.get("table_properties") or {}).items():
        properties[_ATHENA_PROPERTY_NAMES.get(name, name)] = str(value)
    return TableLayout(
        partition_fields=tuple(
            partition_field_from_athena(entry) for entry in config.get("partitioned_by") or []
        ),
        properties=properties,
    )


def drop_placeholder_row(data: pa.Table) -> pa.Table:
    """dbt-duckdb's external materialization writes one all-NULL row for an empty model."""
    if data.num_rows != 1:
        return data
    if all(data.column(i).null_count == 1 for i in range(data.num_columns)):
        return data.slice(0, 0)
    return data


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        settings = resolve_settings(
            plugin_config["environment"], home=plugin_config["lakehouse_home"]
        )
        self._catalog = open_catalog(settings.catalog_properties())
        # dbt-duckdb writes external models here before store() copies them into Iceberg.
        (settings.home / "dbt_external").mkdir(parents=True, exist_ok=True)

    def load(self, source_config: SourceConfig) -> pa.Table:
        identifier = f"{source_config.schema}.{source_config.identifier}"
        return self._catalog.load_table(identifier).scan().to_arrow()

    def store(self, target_config: TargetConfig) -> None:
        if target_config.location is None:
            raise ValueError("the lakehouse plugin stores external models only")
        data = drop_placeholder_row(pq.read_table(target_config.location.path))
        relation = target_config.relation
        identifier = f"{relation.schema}.{relation.identifier}"
        layout = layout_from_model_config(target_config.config)
        table = ensure_table(self._catalog, identifier, data.schema, layout)
        replace_rows(table, data)

    def default_materialization(self) -> str:
        return "table"
