"""The dbt models as assets downstream of the raw table; dbt tests become asset checks."""

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Output
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtCliResource,
    DbtProject,
    DbtProjectPreparer,
    dbt_assets,
)

from sf_lakehouse.assets import CURATED_GROUP, DIMENSION_KEY, OWNERS
from sf_lakehouse.assets.dimension_changes import change_metadata
from sf_lakehouse.resources import LakehouseResource, dbt_executable, dbt_vars_arg
from sf_lakehouse.settings import DBT_PROJECT_DIR

# Model folder -> asset key prefix; the raw source keeps dagster-dbt's [source, table] key,
# which is the raw asset's key (sf_raw/sf_user).
_KEY_PREFIX = {"staging": "sf_staging", "marts": "sf_curated"}


class LakehouseDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            folder = dbt_resource_props["fqn"][1]
            return AssetKey([_KEY_PREFIX.get(folder, folder), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return CURATED_GROUP

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return list(OWNERS)


def dbt_command(*args: str, target: str = "local") -> list[str]:
    """A dbt command line for this project, with the dbt of this environment (dagster-dbt's
    own preparer needs dbt on PATH, which an unactivated venv does not give)."""
    project = str(DBT_PROJECT_DIR)
    return [
        dbt_executable(),
        *args,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        target,
    ]


def parse_dbt_project() -> None:
    subprocess.run(dbt_command("parse", "--quiet"), check=True)


def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target="local")
    # Under `dagster dev` re-parse so model edits show up; elsewhere use the manifest that
    # `make` built (dbt parse), and say so clearly when it is missing.
    if DbtProjectPreparer().using_dagster_dev():
        parse_dbt_project()
    if not Path(project.manifest_path).is_file():
        raise FileNotFoundError(
            f"dbt manifest {project.manifest_path} is missing; run `make install` (it runs "
            "`dbt parse` in dbt_project/)"
        )
    return project


def dbt_build_args(lakehouse: LakehouseResource) -> list[str]:
    """`dbt build` for a pipeline run: unit tests belong to CI (pytest runs them), not to runs."""
    return ["build", "--vars", dbt_vars_arg(lakehouse), "--exclude-resource-type", "unit_test"]


def build_dbt_assets() -> AssetsDefinition:
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=LakehouseDbtTranslator(),
        name="sf_lakehouse_dbt",
    )
    def sf_lakehouse_dbt_models(
        context: AssetExecutionContext, dbt: DbtCliResource, lakehouse: LakehouseResource
    ) -> Iterator[Any]:
        dimension_key = AssetKey(list(DIMENSION_KEY))
        for event in dbt.cli(dbt_build_args(lakehouse), context=context).stream():
            if (
                isinstance(event, Output)
                and context.asset_key_for_output(event.output_name) == dimension_key
            ):
                table = lakehouse.load_table(
                    f"{lakehouse.curated_database}.{dimension_key.path[-1]}"
                )
                if table is not None:
                    event = event.with_metadata({**event.metadata, **change_metadata(table)})
            yield event

    return sf_lakehouse_dbt_models
