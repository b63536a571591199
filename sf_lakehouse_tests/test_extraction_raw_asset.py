"""The in-process raw asset with the new extraction: rejects go to `sf_<object>_rejects` in one
append and show in the materialization's metadata; a quota stop appends nothing."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from sf_lakehouse.config import Settings
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.extraction import REJECTS_SCHEMA
from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
CLOCK = START + dt.timedelta(days=2)


def materialize_user(settings: Settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_raw_asset(settings, settings.object("User"))],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def metadata_of(result: dg.ExecuteInProcessResult) -> dict:
    [materialization] = result.asset_materializations_for_node("sf_raw__sf_user")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_rejects_are_written_to_their_table_and_reported(settings: Settings, connected) -> None:
    emulator = connected(generate_org(users=40, seed=2, start=START, days=2), CLOCK)
    emulator.set_faults(
        {"seed": 1, "faults": [{"kind": "malformed", "field": "IsActive", "every": 6}]}
    )
    result = materialize_user(settings)
    assert result.success
    metadata = metadata_of(result)
    catalog = open_catalog(settings.catalog_properties())
    rejects = catalog.load_table("sf_raw_local.sf_user_rejects").scan().to_arrow()
    assert rejects.schema.names == REJECTS_SCHEMA.names
    assert metadata["rows_rejected"] == rejects.num_rows > 0
    assert metadata["rejects_table"] == "sf_raw_local.sf_user_rejects"
    assert set(rejects.column("field").to_pylist()) == {"IsActive"}
    assert set(rejects.column("_run_id").to_pylist()) == {result.run_id}
    raw = catalog.load_table("sf_raw_local.sf_user").scan().to_arrow()
    # Only the value is set aside: its version is stored, IsActive NULL (issue 16).
    stored = {r["id"]: r for r in raw.to_pylist()}
    for reject in rejects.to_pylist():
        assert stored[reject["id"]]["isactive"] is None
        assert stored[reject["id"]]["username"] is not None
    assert metadata["api"] == "rest_query" and metadata["estimated_records"] > 0
    assert metadata["pages"] >= 1 and metadata["bytes"] > 0 and metadata["retries"] == 0


def test_a_quota_stop_fails_the_run_and_appends_nothing(
    settings: Settings, emulator_factory, monkeypatch
) -> None:
    emulator = emulator_factory(
        generate_org(users=20, seed=2, start=START, days=1), now=CLOCK, daily_api_limit=10
    )
    for key, value in emulator.env_vars().items():
        monkeypatch.setenv(key, value)
    config = settings.config.model_copy(
        update={
            "salesforce": settings.config.salesforce.model_copy(update={"max_api_usage_share": 0.1})
        }
    )
    limited = Settings(
        environment=settings.environment,
        home=settings.home,
        config=config,
        objects=settings.objects,
        config_path=settings.config_path,
    )
    result = materialize_user(limited)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "max_api_usage_share=0.1" in message and "nothing was appended" in message
    catalog = open_catalog(settings.catalog_properties())
    assert load_table_or_none(catalog, "sf_raw_local.sf_user") is None
    assert emulator.api_calls <= 1
