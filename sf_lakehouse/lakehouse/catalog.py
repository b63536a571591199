"""The pyiceberg catalog and table creation: namespaces, tables brought to their declared
layout (partition spec and properties), and property updates, each in one commit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table

from sf_lakehouse.lakehouse.commits import with_commit_retries
from sf_lakehouse.lakehouse.home import check_home_location
from sf_lakehouse.lakehouse.layout import TableLayout
from sf_lakehouse.owner_only import private_dir

CATALOG_NAME = "sf_lakehouse"


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


def spec_matches(table: Table, layout: TableLayout) -> bool:
    """Whether the table's partition spec is the layout's (sources, transforms, names)."""
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
    if not spec_matches(table, layout):
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
        with_commit_retries(table, lambda t: _set_properties(t, stale))
        table = catalog.load_table(identifier)
    return table


def _set_properties(table: Table, properties: Mapping[str, str]) -> None:
    with table.transaction() as tx:
        tx.set_properties(dict(properties))


def set_properties(table: Table, properties: Mapping[str, str]) -> None:
    """Set table properties in one commit (retried when another writer commits first)."""
    with_commit_retries(table, lambda t: _set_properties(t, properties))
