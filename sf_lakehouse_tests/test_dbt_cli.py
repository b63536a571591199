"""The dbt CLI resource skips what dagster-dbt does on every invocation and this project never
uses (`sf_lakehouse.defs.dbt_cli`)."""

from __future__ import annotations

import importlib.metadata

import dagster_dbt.core.resource as dagster_dbt_resource
import pytest
from packaging import version

from sf_lakehouse.config import DBT_PROJECT_DIR
from sf_lakehouse.defs.dbt_cli import LakehouseDbtCliResource
from sf_lakehouse.defs.resources import dbt_executable


def test_no_dbt_version_subprocess_and_no_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """dagster-dbt ran `dbt --version` before every build (4 s here, and dbt asks pypi.org for
    its latest release) and opened a dbt adapter only its metadata fetchers use."""

    def no_subprocess(*args: object, **kwargs: object) -> bytes:
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_subprocess)
    resource = LakehouseDbtCliResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        target="local",
        dbt_executable=dbt_executable(),
    )
    installed = version.parse(importlib.metadata.version("dbt-core"))
    assert resource._cli_version == installed
    assert installed.major < 2  # dbt Core, not Fusion: dagster-dbt's Core code paths apply
    assert resource._initialize_dbt_core_adapter(["build"]) is None
