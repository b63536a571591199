"""dbt-duckdb plugin: dbt reads the raw Iceberg table and writes the dimension back to Iceberg.

Profile (`dbt_project/profiles.yml`, target `local`):
    plugins: [{module: sf_lakehouse.lakehouse.dbt_plugin, alias: lakehouse,
               config: {environment: local, lakehouse_home: ...}}]
Sources with `meta: {plugin: lakehouse}` are read from the catalog; models with
`materialized='external', plugin='lakehouse'` are written to `<schema>.<identifier>` in it, laid
out from the same model config that dbt-athena uses (`partitioned_by`, `write_compression`,
`table_properties`), so the layout is declared once for both engines.

The dimensions are maintained incrementally (rule 8): reading an object's raw source gives only
the raw rows of the records that have rows appended since the dimension's last build (all of each
such record's rows, so late and replayed rows are right), and storing the dimension replaces just
those records' rows, in one Iceberg commit that also records the raw snapshot it was built from.
A full rebuild happens on `dbt build --full-refresh`, on the first build, when the model or its
macros changed (their hash is stored with the table), and when the raw snapshot it was built
from is gone (expired); the result is the same table either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import SourceConfig, TargetConfig

from sf_lakehouse.config import ObjectSpec, Settings, resolve_settings
from sf_lakehouse.dbt_models import code_version
from sf_lakehouse.lakehouse.increments import (
    BUILD_PROPERTY,
    CODE_VERSION_PROPERTY,
    PREVIOUS_RAW_SNAPSHOT_PROPERTY,
    RAW_SNAPSHOT_PROPERTY,
    BuildPlan,
    batches_of,
    plan_build,
)
from sf_lakehouse.lakehouse.tables import (
    PartitionField,
    TableLayout,
    ensure_table,
    load_table_or_none,
    open_catalog,
    replace_rows,
)
from sf_lakehouse.owner_only import private_dir
from sf_lakehouse.scd2_rule import raw_columns_read

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


@dataclass
class DimensionBuild:
    """What one run's read of a raw source decided for its dimension."""

    spec: ObjectSpec
    code_version: str
    plan: BuildPlan


def _full_refresh_requested() -> bool:
    from dbt.flags import get_flags

    return bool(getattr(get_flags(), "FULL_REFRESH", False))


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._settings: Settings = resolve_settings(
            plugin_config["environment"], home=plugin_config["lakehouse_home"]
        )
        self._catalog = open_catalog(self._settings.catalog_properties())
        self._builds: dict[str, DimensionBuild] = {}
        # dbt-duckdb writes external models here before store() copies them into Iceberg.
        private_dir(self._settings.home / "dbt_external")

    def _spec_of_raw(self, table_name: str) -> ObjectSpec | None:
        for spec in self._settings.objects:
            if spec.raw_asset_key[-1] == table_name:
                return spec
        return None

    def load(self, source_config: SourceConfig) -> pa.RecordBatchReader:
        """The raw rows dbt builds from, streamed batch by batch into DuckDB's table (the
        source materializes as a table): for an object's raw table only the columns its staging
        model selects, and in an incremental build only the touched records' rows."""
        identifier = f"{source_config.schema}.{source_config.identifier}"
        raw = self._catalog.load_table(identifier)
        spec = self._spec_of_raw(source_config.identifier)
        if spec is None:
            return raw.scan().to_arrow_batch_reader()
        build = self._plan_build(spec, raw)
        self._builds[self._settings.table_identifier(spec.dimension_asset_key)] = build
        columns = raw_columns_read(spec, raw.schema().column_names)
        if build.plan.touched is None:
            return raw.scan(selected_fields=columns).to_arrow_batch_reader()
        return batches_of(raw, "id", build.plan.touched, columns=columns)

    def _plan_build(self, spec: ObjectSpec, raw: Any) -> DimensionBuild:
        version = code_version(spec)
        dimension = load_table_or_none(
            self._catalog, self._settings.table_identifier(spec.dimension_asset_key)
        )
        plan = plan_build(dimension, raw, version, full_refresh=_full_refresh_requested())
        return DimensionBuild(spec, version, plan)

    def store(self, target_config: TargetConfig) -> None:
        if target_config.location is None:
            raise ValueError("the lakehouse plugin stores external models only")
        data = drop_placeholder_row(pq.read_table(target_config.location.path))
        relation = target_config.relation
        identifier = f"{relation.schema}.{relation.identifier}"
        layout = layout_from_model_config(target_config.config)
        table = ensure_table(self._catalog, identifier, data.schema, layout)
        build = self._builds.pop(identifier, None)
        if build is None:
            if any(
                self._settings.table_identifier(s.dimension_asset_key) == identifier
                for s in self._settings.objects
            ):
                # Its staging view would read whatever the last run loaded: never store that.
                raise ValueError(
                    f"{identifier} was built without reading its raw source in this run; "
                    "build it with its staging model (dbt build --select +"
                    + relation.identifier
                    + ")"
                )
            replace_rows(table, data)
            return
        plan = build.plan
        properties = {
            RAW_SNAPSHOT_PROPERTY: str(plan.raw_snapshot_id or "none"),
            PREVIOUS_RAW_SNAPSHOT_PROPERTY: str(plan.previous_raw_snapshot_id or "none"),
            CODE_VERSION_PROPERTY: build.code_version,
            BUILD_PROPERTY: "full" if plan.is_full else "incremental",
        }
        if plan.touched is None:
            replace_rows(table, data, properties)
        elif plan.touched:
            replace_rows(table, data, properties, records=(build.spec.key_column, plan.touched))
        # No record changed: the table, and the raw snapshot it stands for, stay as they are
        # (the next run reads what was appended since that snapshot).

    def default_materialization(self) -> str:
        return "table"
