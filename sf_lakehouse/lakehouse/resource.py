"""The Dagster resource over the Iceberg catalog of one environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from dagster import ConfigurableResource
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from sf_lakehouse.config import table_identifier
from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog
from sf_lakehouse.launch_lock import LaunchLocked


class LakehouseResource(LaunchLocked, ConfigurableResource):
    """The Iceberg catalog and the names of this environment's databases. A run's launch
    configuration may change none of them (another catalog would receive the data and the
    run's AWS session token)."""

    launch_label: ClassVar[str] = "lakehouse"

    environment: str
    catalog_properties: dict[str, str]
    raw_database: str
    curated_database: str
    lakehouse_home: str
    dbt_variables: dict[str, str]

    def catalog(self) -> Catalog:
        return open_catalog(self.catalog_properties)

    def identifier(self, asset_key: Sequence[str]) -> str:
        """`<database>.<table>` of an asset key (`sf_raw/sf_user` -> `sf_raw_local.sf_user`)."""
        return table_identifier(asset_key, self.raw_database, self.curated_database)

    def load_table(self, asset_key: Sequence[str]) -> Table | None:
        return load_table_or_none(self.catalog(), self.identifier(asset_key))

    def require_table(self, asset_key: Sequence[str]) -> Table:
        table = self.load_table(asset_key)
        if table is None:
            raise ValueError(
                f"Iceberg table {self.identifier(asset_key)} does not exist yet; materialize "
                f"{'/'.join(asset_key)} first"
            )
        return table
