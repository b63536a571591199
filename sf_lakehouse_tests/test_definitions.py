"""The code location loads and exposes what its users rely on (a snapshot of its shape)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import pytest
import yaml

from sf_lakehouse.config import DBT_PROJECT_DIR, Settings
from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions, defs

RAW = dg.AssetKey(["sf_raw", "sf_user"])
STAGING = dg.AssetKey(["sf_staging", "stg_sf_user"])
DIMENSION = dg.AssetKey(["sf_curated", "dim_sf_user_scd"])


@pytest.fixture
def definitions(settings: Settings) -> dg.Definitions:
    return build_definitions(settings)


def test_importing_the_module_reads_no_environment_and_defs_loads_from_it(
    tmp_path: Path,
) -> None:
    """Importing the code location in a fresh interpreter resolves nothing (an unknown
    environment would fail) and writes nothing; calling defs() then resolves it."""
    script = (
        "import sf_lakehouse.definitions as d\n"
        "print('imported')\n"
        "try:\n"
        "    d.defs()\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, str(e).splitlines()[0])\n"
    )
    env = {**os.environ, "SF_LAKEHOUSE_ENV": "no-such-env", "SF_LAKEHOUSE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[0] == "imported"
    assert "ConfigError unknown environment 'no-such-env'" in done.stdout
    assert list(tmp_path.iterdir()) == []  # loading never touches the lakehouse


def test_defs_loads_from_the_environment_without_touching_the_lakehouse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SF_LAKEHOUSE_HOME", str(tmp_path))
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    assert not (tmp_path / "catalog.db").exists()


def test_asset_graph_has_each_object_raw_staging_and_dimension(
    definitions: dg.Definitions, settings: Settings
) -> None:
    graph = definitions.resolve_asset_graph()
    expected = set()
    for spec in settings.objects:
        raw, staging, dimension = (
            dg.AssetKey(list(k))
            for k in (spec.raw_asset_key, spec.staging_asset_key, spec.dimension_asset_key)
        )
        expected |= {raw, staging, dimension}
        assert graph.get(staging).parent_keys == {raw}
        assert graph.get(dimension).parent_keys == {staging}
        assert graph.get(raw).group_name == "salesforce_raw"
        assert graph.get(dimension).group_name == "curated"
    assert set(graph.get_all_asset_keys()) == expected


def test_every_model_column_has_a_description(definitions: dg.Definitions) -> None:
    for spec in definitions.resolve_all_asset_specs():
        if spec.key.path[0] not in ("sf_staging", "sf_curated"):
            continue
        schema = spec.metadata["dagster/column_schema"]
        assert schema.columns, spec.key
        assert [c.name for c in schema.columns if not c.description] == [], spec.key


def test_freshness_policies_come_from_the_object_specs(
    definitions: dg.Definitions, settings: Settings
) -> None:
    policies = {s.key: s.freshness_policy for s in definitions.resolve_all_asset_specs()}
    for spec in settings.objects:
        raw = policies[dg.AssetKey(list(spec.raw_asset_key))]
        dimension = policies[dg.AssetKey(list(spec.dimension_asset_key))]
        assert raw.fail_window.to_timedelta().total_seconds() == (
            spec.freshness.raw.fail_after_minutes * 60
        )
        assert dimension.warn_window.to_timedelta().total_seconds() == (
            spec.freshness.dimension.warn_after_minutes * 60
        )


def test_building_the_definitions_prints_no_warning(settings: Settings) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_definitions(settings).resolve_all_job_defs()


def yaml_tests(path: Path) -> dict[str, str]:
    """name -> description of every data test in a model YAML file (model and column level)."""
    found: dict[str, str] = {}
    for model in yaml.safe_load(path.read_text())["models"]:
        entries = [*model.get("data_tests", [])]
        for column in model.get("columns", []):
            entries += column.get("data_tests", [])
        for entry in entries:
            [(_, body)] = entry.items()
            found[body["name"]] = body["description"]
    return found


def test_dbt_tests_are_asset_checks_on_the_dimension(definitions: dg.Definitions) -> None:
    """Each dbt test is a check with the short name and the description its YAML gives it (the
    UI showed "No description provided" and 80-character names before)."""
    specs = {
        (spec.asset_key, spec.name): spec
        for assets in definitions.resolve_asset_graph().assets_defs
        for spec in assets.check_specs
    }
    names = {name for asset, name in specs if asset == DIMENSION}
    described = yaml_tests(DBT_PROJECT_DIR / "models" / "marts" / "dim_sf_user_scd.yml")
    assert set(described) == {
        "user_scd_id_unique",
        "user_scd_id_not_null",
        "user_key_not_null",
        "user_one_current_row",
        "user_contiguous_intervals",
        "user_positive_intervals",
    }
    for name, description in described.items():
        assert specs[(DIMENSION, name)].description == description, name
    staging = yaml_tests(DBT_PROJECT_DIR / "models" / "staging" / "stg_sf_user.yml")
    for name, description in staging.items():
        assert specs[(dg.AssetKey(["sf_staging", "stg_sf_user"]), name)].description == description
    assert all(spec.description for spec in specs.values()), "a check without a description"
    assert max(len(name) for _, name in specs) <= 40
    # Each invariant is checked once: the Python checks add only what needs the raw table.
    assert "exactly_one_current_row_per_user" not in names
    assert {"every_raw_user_in_dimension", "dimension_matches_the_scd2_rule"} <= names


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
