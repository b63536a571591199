"""The code location loads and exposes what its users rely on (a snapshot of its shape)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions, defs
from sf_lakehouse.config import Settings

RAW = dg.AssetKey(["sf_raw", "sf_user"])
STAGING = dg.AssetKey(["sf_staging", "stg_sf_user"])
DIMENSION = dg.AssetKey(["sf_curated", "dim_sf_user_scd"])


@pytest.fixture
def definitions(settings: Settings) -> dg.Definitions:
    return build_definitions(settings)


def test_module_import_does_no_work_and_defs_loads_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SF_LAKEHOUSE_HOME", str(tmp_path))
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    assert not (tmp_path / "catalog.db").exists()  # loading never touches the lakehouse


def test_asset_graph(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {RAW, STAGING, DIMENSION}
    assert graph.get(STAGING).parent_keys == {RAW}
    assert graph.get(DIMENSION).parent_keys == {STAGING}
    assert graph.get(RAW).group_name == "salesforce_raw"
    assert graph.get(DIMENSION).group_name == "curated"


def test_dbt_tests_are_asset_checks_on_the_dimension(definitions: dg.Definitions) -> None:
    checks = {
        (key.asset_key, key.name) for key in definitions.resolve_asset_graph().asset_check_keys
    }
    names = {name for asset, name in checks if asset == DIMENSION}
    assert "unique_dim_sf_user_scd_scd_id" in names
    assert "exactly_one_current_row_dim_sf_user_scd_user_id" in names
    assert any(name.startswith("contiguous_intervals_dim_sf_user_scd") for name in names)
    assert any(name.startswith("expression_is_true_dim_sf_user_scd") for name in names)


def test_raw_asset_declares_its_iceberg_layout(definitions: dg.Definitions) -> None:
    spec = next(s for s in definitions.resolve_all_asset_specs() if s.key == RAW)
    assert spec.metadata["partition_spec"] == [
        {"source": "_extracted_at", "transform": "day", "name": "_extracted_date"}
    ]
    assert spec.metadata["table_properties"]["write.parquet.compression-codec"] == "snappy"
    assert spec.metadata["write_mode"] == "append"
    assert spec.metadata["iceberg_table"] == "sf_raw_local.sf_user"
    assert set(spec.kinds) == {"salesforce", "iceberg", "python"}


def test_pipeline_job_and_resources(definitions: dg.Definitions) -> None:
    job = definitions.resolve_job_def(PIPELINE_JOB_NAME)
    assert job.name == PIPELINE_JOB_NAME
    assert set(definitions.resources) >= {"salesforce", "lakehouse", "iceberg_io_manager", "dbt"}


@pytest.mark.parametrize("environment", ["development", "staging", "prod"])
def test_aws_environments_load_without_calling_aws(
    environment: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Loading the code location for an AWS environment makes no AWS call (a closed port
    would fail any), and needs no credentials: the secret is read when a run connects."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SF_LAKEHOUSE_ENV", environment)
    monkeypatch.setenv("SF_LAKEHOUSE_HOME", str(tmp_path))
    loaded = defs()
    resources = loaded.resources
    assert resources["salesforce"].secret_id == f"salesforce/{environment}/credentials"
    assert resources["lakehouse"].catalog_properties["type"] == "glue"
    assert resources["dbt"].target == environment
    assert resources["lakehouse"].dbt_variables["athena_workgroup"] == f"sf-lakehouse-{environment}"
