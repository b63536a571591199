"""A dimension without new raw rows is left out of `dbt build` (sf_lakehouse.defs.dbt_selection):
the pure selection over the project's manifest, then real runs (emulator, Iceberg catalog, dbt on
DuckDB) where one object changes, then none."""

from __future__ import annotations

import copy
import json

import dagster as dg
import pytest

from sf_lakehouse.config import DBT_PROJECT_DIR, Settings
from sf_lakehouse.defs.dbt import FULL_REFRESH_TAG
from sf_lakehouse.defs.dbt_selection import (
    build_closure,
    exclude_args,
    models_in_build_order,
    models_to_leave_out,
)
from sf_lakehouse_tests.histories import account, at, opportunity, user
from sf_lakehouse_tests.scd2_reference import expected_dimension
from sf_lakehouse_tests.test_pipeline_e2e import dimension_rows, materialize_once, raw_rows


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())


def test_a_dimension_build_is_its_staging_model_and_itself(manifest: dict) -> None:
    assert build_closure(manifest, "dim_sf_user_scd") == {"stg_sf_user", "dim_sf_user_scd"}
    assert build_closure(manifest, "no_such_model") is None


def test_a_model_reading_the_dimension_keeps_it_in_the_build(manifest: dict) -> None:
    """Regression guard: leaving the dimension out would let a downstream model read a relation
    this run did not refresh."""
    changed = copy.deepcopy(manifest)
    dimension = next(
        unique_id
        for unique_id, node in changed["nodes"].items()
        if node["resource_type"] == "model" and node["name"] == "dim_sf_user_scd"
    )
    mart = "model.sf_lakehouse.user_activity"
    changed["nodes"][mart] = {
        "name": "user_activity",
        "resource_type": "model",
        "depends_on": {"nodes": [dimension]},
    }
    changed["child_map"][dimension] = [*changed["child_map"][dimension], mart]
    assert build_closure(changed, "dim_sf_user_scd") is None
    assert models_to_leave_out(changed, ["dim_sf_user_scd", "dim_sf_account_scd"]) == {
        "stg_sf_account": "dim_sf_account_scd",
        "dim_sf_account_scd": "dim_sf_account_scd",
    }


def test_models_come_after_the_models_they_read(manifest: dict) -> None:
    order = models_in_build_order(manifest)
    for name in ("user", "account", "opportunity"):
        assert order.index(f"stg_sf_{name}") < order.index(f"dim_sf_{name}_scd")


def test_excluded_models_are_one_dagster_dbt_argument() -> None:
    """dagster-dbt reads `--exclude` with one value: more would reach dbt as stray arguments."""
    assert exclude_args([]) == []
    assert exclude_args(["b", "a"]) == ["--exclude", "a b"]


USER_1, USER_2 = "005000000000001AAA", "005000000000002AAA"
ACCOUNT = "001000000000001AAA"
DEAL = "006000000000001AAA"
HISTORY = [
    user(USER_1, 0, "EMEA"),
    user(USER_2, 0, "APAC"),
    account(ACCOUNT, 0, "Customer", USER_1),
    opportunity(DEAL, 0, "Prospecting", 1000.0, ACCOUNT, USER_1),
    user(USER_1, 100, "AMER"),  # after the first run: only User changes
]


def _dbt_commands(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.user_message.startswith("Running dbt command")
    ]


def _dimension_metadata(result: dg.ExecuteInMemoryResult, model: str) -> dict:
    [materialization] = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == model
    ]
    metadata = materialization.materialization.metadata
    return {k: v.value for k, v in metadata.items()}


def _tested_models(result: dg.ExecuteInMemoryResult) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_check_evaluations()}


def test_only_changed_dimensions_are_rebuilt_and_a_quiet_run_starts_no_dbt(
    settings: Settings, connected
) -> None:
    emulator = connected(HISTORY, at(50))
    instance = dg.DagsterInstance.ephemeral()
    first = materialize_once(settings, instance)
    assert first.success
    assert len(_dbt_commands(instance, first.run_id)) == 1
    assert "dim_sf_account_scd" in _tested_models(first)

    emulator.set_clock(at(150))
    only_users = materialize_once(settings, instance)
    assert only_users.success
    [command] = _dbt_commands(instance, only_users.run_id)
    assert "--exclude dim_sf_account_scd dim_sf_opportunity_scd stg_sf_account" in command
    # Every model is reported up to date; the left-out ones say why, and rebuilt nothing.
    account_metadata = _dimension_metadata(only_users, "dim_sf_account_scd")
    assert "not rebuilt: no raw row arrived" in account_metadata["dbt_build"]
    assert account_metadata["records_rebuilt"] == 0
    assert account_metadata["dimension_rows"] == 1
    user_metadata = _dimension_metadata(only_users, "dim_sf_user_scd")
    assert "dbt_build" not in user_metadata
    assert user_metadata["records_rebuilt"] == 1
    assert user_metadata["versions_opened"] == 1
    # The left-out dimensions' dbt tests did not run; the rebuilt one's did.
    assert _tested_models(only_users) == {"dim_sf_user_scd", "stg_sf_user"}

    quiet = materialize_once(settings, instance)
    assert quiet.success
    assert _dbt_commands(instance, quiet.run_id) == []
    assert len(quiet.get_asset_materialization_events()) == 3 + 6  # raw tables + dbt models
    assert _tested_models(quiet) == set()

    # Rule 8: what the runs left equals the dimension rules 1-7 give from the raw table.
    for spec in settings.objects:
        expected = expected_dimension(spec, raw_rows(settings, spec.api_name))
        assert dimension_rows(settings, spec) == expected, spec.api_name
    users = dimension_rows(settings, settings.object("User"))
    assert [r["division"] for r in users if r["user_id"] == USER_1] == ["EMEA", "AMER"]


def test_a_full_refresh_builds_every_dimension(settings: Settings, connected) -> None:
    connected(HISTORY, at(150))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_once(settings, instance).success
    quiet = materialize_once(settings, instance, tags={FULL_REFRESH_TAG: "true"})
    assert quiet.success
    [command] = _dbt_commands(instance, quiet.run_id)
    assert "--full-refresh" in command and "--exclude " not in command
