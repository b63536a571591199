"""`dagster dev` from the repository root serves the code location with both assets and checks."""

from __future__ import annotations

import os
from pathlib import Path

from sf_lakehouse_tests.dagster_dev import dagster_dev

ASSETS_QUERY = """
{ assetNodes {
    assetKey { path }
    groupName
    assetChecksOrError { ... on AssetChecks { checks { name } } }
} }
"""


AUTOMATION_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name
    schedules { name cronSchedule executionTimezone pipelineName scheduleState { status } }
    sensors { name sensorType targets { pipelineName } sensorState { status } }
    jobs { name }
} } } }
"""


def test_dagster_dev_lists_assets_checks_schedules_and_sensors(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env["SF_LAKEHOUSE_HOME"] = str(tmp_path / "lakehouse")
    with dagster_dev(tmp_path, env) as server:
        nodes = server.graphql(ASSETS_QUERY)["assetNodes"]
        [repository] = server.graphql(AUTOMATION_QUERY)["repositoriesOrError"]["nodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    for name in ("user", "account", "opportunity"):
        raw, dimension = f"sf_raw/sf_{name}", f"sf_curated/dim_sf_{name}_scd"
        assert {raw, dimension} <= set(by_key)
        assert by_key[raw]["groupName"] == "salesforce_raw"
        checks = {c["name"] for c in by_key[dimension]["assetChecksOrError"]["checks"]}
        assert {f"{name}_scd_id_unique", f"{name}_one_current_row"} <= checks
        assert {f"every_raw_{name}_in_dimension", "dimension_matches_the_scd2_rule"} <= checks
        raw_checks = {c["name"] for c in by_key[raw]["assetChecksOrError"]["checks"]}
        assert raw_checks == {
            "raw_versions_are_unique",
            f"raw_ids_are_18_character_{name}_ids",
            "raw_tracked_fields_exist",
            "raw_row_count_never_drops",
            "raw_column_types_unchanged",
        }
    schedules = {s["name"]: s for s in repository["schedules"]}
    assert schedules["salesforce_pipeline_schedule"]["cronSchedule"] == "0 */6 * * *"
    assert schedules["salesforce_pipeline_schedule"]["executionTimezone"] == "UTC"
    assert schedules["lakehouse_maintenance_schedule"]["pipelineName"] == "lakehouse_maintenance"
    sensors = {s["name"]: s for s in repository["sensors"]}
    assert sorted(t["pipelineName"] for t in sensors["salesforce_change_sensor"]["targets"]) == [
        "sf_account_pipeline",
        "sf_opportunity_pipeline",
        "sf_user_pipeline",
    ]
    assert sensors["run_failure_recorder"]["sensorType"] == "RUN_STATUS"
    assert sensors["run_success_monitor"]["sensorType"] == "RUN_STATUS"
    assert sensors["freshness_alert_sensor"]["sensorState"]["status"] == "RUNNING"
    jobs = {j["name"] for j in repository["jobs"]}
    assert {"salesforce_pipeline", "sf_user_pipeline", "lakehouse_maintenance"} <= jobs
