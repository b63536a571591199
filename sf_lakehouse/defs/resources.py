"""The resources of one environment: `build_resources(settings)` is the one place where an
environment becomes resources."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from sf_lakehouse.aws.pipes import pipes_glue_client
from sf_lakehouse.config import Settings, dbt_project_dir
from sf_lakehouse.defs.dbt_cli import LakehouseDbtCliResource
from sf_lakehouse.lakehouse.io_manager import IcebergIOManager
from sf_lakehouse.lakehouse.resource import LakehouseResource
from sf_lakehouse.salesforce.resource import salesforce_from_environment


def dbt_executable() -> str:
    """The dbt installed next to this interpreter (the venv need not be activated)."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.is_file():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise FileNotFoundError("dbt is not installed; run `make install`")
    return found


def lakehouse_resource(settings: Settings) -> LakehouseResource:
    return LakehouseResource(
        environment=settings.environment,
        catalog_properties=settings.catalog_properties(),
        raw_database=settings.raw_database,
        curated_database=settings.curated_database,
        lakehouse_home=str(settings.home),
        dbt_variables=settings.dbt_vars(),
    )


def build_resources(settings: Settings) -> dict[str, Any]:
    lakehouse = lakehouse_resource(settings)
    project_dir = str(dbt_project_dir())
    resources: dict[str, Any] = {}
    if settings.extraction_mode == "glue":
        resources["pipes_glue"] = pipes_glue_client(settings)
    return resources | {
        "lakehouse": lakehouse,
        "iceberg_io_manager": IcebergIOManager(lakehouse=lakehouse),
        "salesforce": salesforce_from_environment(settings),
        "dbt": LakehouseDbtCliResource(
            project_dir=project_dir,
            profiles_dir=project_dir,
            target=settings.dbt_target,
            dbt_executable=dbt_executable(),
            invocation=settings.dbt_invocation,
        ),
    }


def dbt_vars_arg(lakehouse: LakehouseResource) -> str:
    return json.dumps(lakehouse.dbt_variables, sort_keys=True)
