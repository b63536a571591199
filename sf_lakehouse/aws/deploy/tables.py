"""The raw Iceberg tables, one per object spec, through pyiceberg's Glue catalog.

Columns are typed from the org's describe() by the extraction's own code (`select_fields` with
the spec's fields, then `raw_table_schema`), over the one Salesforce login deploy made. A table
is never dropped: drift of the partition spec or properties is fixed in place, and columns the
org reports but the table lacks are added. The dimension tables are not created here: dbt's
first build on Athena creates each one with the layout of its model config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, DeployError, Step, iceberg_errors
from sf_lakehouse.config import ObjectSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from sf_lakehouse.lakehouse.tables import TableLayout

READ_ACTIONS = ("glue:GetTable", "s3:GetObject")
WRITE_ACTIONS = ("glue:CreateTable", "glue:UpdateTable", "s3:PutObject")


def raw_schema(ctx: DeployContext, spec: ObjectSpec) -> pa.Schema:
    """The raw table's Arrow schema, from describe() as the extraction types it."""
    from sf_lakehouse.extraction import raw_table_schema
    from sf_lakehouse.salesforce.types import SalesforceConfigError, select_fields

    assert ctx.salesforce is not None
    try:
        described = ctx.salesforce.describe(spec.api_name)
        fields = select_fields(described, spec.extracted_fields, spec.api_name)
    except SalesforceConfigError as error:
        raise DeployError(str(error)) from None
    except Exception as error:  # simple-salesforce: the object is unknown or not readable
        raise DeployError(
            f"describe of Salesforce object {spec.api_name} failed ({type(error).__name__}); "
            f"check that the integration user can read {spec.api_name}, or remove its spec "
            f"from {ctx.config_path.parent / 'objects'}"
        ) from None
    return raw_table_schema(fields)


def plan_raw_tables(ctx: DeployContext) -> list[Step]:
    ctx.notes.append(
        "dimension tables ("
        + ", ".join(
            ctx.settings.table_identifier(s.dimension_asset_key) for s in ctx.settings.objects
        )
        + ") are created by dbt's first build on Athena, laid out by each model's config"
    )
    return [_raw_table(ctx, spec) for spec in ctx.settings.objects]


def _raw_table(ctx: DeployContext, spec: ObjectSpec) -> Step:
    from sf_lakehouse.lakehouse.catalog import load_table_or_none, spec_matches
    from sf_lakehouse.lakehouse.layout import RAW_LAYOUT

    identifier = ctx.settings.table_identifier(spec.raw_asset_key)
    resource = f"iceberg table {identifier}"
    partitions = ", ".join(f"{p.transform}({p.source})" for p in RAW_LAYOUT.partition_fields)
    if ctx.salesforce is None:
        reason = ctx.salesforce_problem or "no Salesforce login"
        ctx.warnings.append(
            f"{resource} not checked: its columns come from the org's describe() and {reason}; "
            "the first extraction creates it"
        )
        return Step(Change(resource, "none", f"NOT CHECKED ({reason})"))
    schema = raw_schema(ctx, spec)
    table = None
    if ctx.settings.raw_database not in ctx.new_databases:
        with iceberg_errors(resource, READ_ACTIONS):
            table = load_table_or_none(ctx.catalog(), identifier)
    if table is None:
        detail = (
            f"{len(schema)} columns from describe({spec.api_name}), partitioned by {partitions}"
        )
        detail += f", {_codec(RAW_LAYOUT.properties)}"
        apply = _ensure(ctx, resource, identifier, schema, RAW_LAYOUT, [])
        return Step(Change(resource, "create", detail), apply, WRITE_ACTIONS)
    drift = []
    if not spec_matches(table, RAW_LAYOUT):
        drift.append(f"partition spec {partitions}")
    stale = sorted(
        k
        for k, v in RAW_LAYOUT.properties.items()
        if k != "format-version" and table.properties.get(k) != v
    )
    if stale:
        drift.append("properties " + ", ".join(stale))
    present = set(table.schema().column_names)
    missing = [f.name for f in schema if f.name not in present]
    if missing:
        drift.append("add columns " + ", ".join(missing))
    if not drift:
        return Step(
            Change(resource, "none", f"{len(present)} columns, partitioned by {partitions}")
        )
    apply = _ensure(ctx, resource, identifier, schema, RAW_LAYOUT, missing)
    return Step(Change(resource, "update", "; ".join(drift)), apply, WRITE_ACTIONS)


def _ensure(
    ctx: DeployContext,
    resource: str,
    identifier: str,
    schema: pa.Schema,
    layout: TableLayout,
    missing: list[str],
) -> Callable[[], None]:
    def apply() -> None:
        from sf_lakehouse.lakehouse.tables import ensure_table, nullable_schema

        with iceberg_errors(resource, WRITE_ACTIONS):
            table = ensure_table(ctx.catalog(), identifier, schema, layout)
            if missing:
                with table.update_schema() as update:
                    update.union_by_name(
                        nullable_schema(schema).empty_table().select(missing).schema
                    )

    return apply


def _codec(properties: Mapping[str, str]) -> str:
    codec = properties.get("write.parquet.compression-codec", "default")
    size = int(properties.get("write.target-file-size-bytes", "0")) // (1024 * 1024)
    return f"parquet {codec}, target {size} MB"
