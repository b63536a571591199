"""Sensors evaluated for real: the change sensor against the running emulator with
build_sensor_context, the failure and freshness sensors against real runs; and the pipeline
job's checks and change metadata."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest

import sf_lakehouse.defs.sensors as sensors
from sf_lakehouse.config import FreshnessWindow, Settings
from sf_lakehouse.definitions import build_definitions
from sf_lakehouse.defs.alerting import on_run_failed
from sf_lakehouse.defs.jobs import PIPELINE_JOB_NAME
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.defs.sensors import (
    CHANGE_SENSOR_NAME,
    FAILURE_SENSOR_NAME,
    FRESHNESS_SENSOR_NAME,
    freshness_status,
)
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests.histories import BASE, account, user

A, B = "005000000000000AAA", "005000000000000BBB"
ACME = "001000000000000ACM"
HISTORY = [user(A, 0, "EMEA"), user(B, 1, "APAC"), user(A, 60, "LATAM"), user(B, 120, "EMEA")]


def evaluate(
    definitions: dg.Definitions, name: str, instance: dg.DagsterInstance, cursor: str | None = None
):
    sensor = definitions.resolve_sensor_def(name)
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=definitions,
        sensor_name=name,
        resources=dict(definitions.resources),
    ) as context:
        return sensor.evaluate_tick(context)


def extract(settings: Settings, instance: dg.DagsterInstance, api_name: str = "User") -> None:
    result = dg.materialize(
        [build_raw_asset(settings, settings.object(api_name))],
        resources=build_resources(settings),
        instance=instance,
    )
    assert result.success


def test_change_sensor_requests_one_run_per_set_of_changes(settings: Settings, connected) -> None:
    emulator = connected(HISTORY, BASE + dt.timedelta(minutes=30))
    definitions = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()

    first = evaluate(definitions, CHANGE_SENSOR_NAME, instance)
    [request] = first.run_requests  # only User has records: only its job starts
    assert request.job_name == settings.object("User").job_name
    assert request.tags["sf_lakehouse/changed_records"] == "2"
    assert request.tags["sf_lakehouse/object"] == "User"

    # Same changes, the run has not landed yet: no second run.
    again = evaluate(definitions, CHANGE_SENSOR_NAME, instance, cursor=first.cursor)
    assert not again.run_requests
    assert "User: 2 changes already have a run" in again.skip_message
    assert "Account: no change" in again.skip_message

    extract(settings, instance)
    quiet = evaluate(definitions, CHANGE_SENSOR_NAME, instance, cursor=first.cursor)
    assert not quiet.run_requests
    assert "User: no change" in quiet.skip_message

    emulator.set_clock(BASE + dt.timedelta(minutes=90))  # A changed at 09:00
    changed = evaluate(definitions, CHANGE_SENSOR_NAME, instance, cursor=quiet.cursor)
    [request] = changed.run_requests
    assert request.tags["sf_lakehouse/changed_records"] == "1"
    assert request.run_key != first.run_requests[0].run_key and "09:00:00" in request.run_key

    extract(settings, instance)
    emulator.set_clock(BASE + dt.timedelta(minutes=110))  # nothing new is visible yet
    assert not evaluate(
        definitions, CHANGE_SENSOR_NAME, instance, cursor=changed.cursor
    ).run_requests


def test_change_sensor_starts_only_the_objects_that_changed_and_counts_deletions(
    settings: Settings, connected
) -> None:
    history = [
        *HISTORY,
        account(ACME, 2, "Customer", A),
        account(ACME, 200, "Customer", A, deleted=True),
    ]
    emulator = connected(history, BASE + dt.timedelta(minutes=150))
    definitions = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    extract(settings, instance, "User")
    extract(settings, instance, "Account")
    quiet = evaluate(definitions, CHANGE_SENSOR_NAME, instance)
    assert not quiet.run_requests

    emulator.set_clock(BASE + dt.timedelta(minutes=210))  # the account is deleted at 11:20
    [request] = evaluate(
        definitions, CHANGE_SENSOR_NAME, instance, cursor=quiet.cursor
    ).run_requests
    assert request.job_name == settings.object("Account").job_name
    assert request.tags["sf_lakehouse/changed_records"] == "1"  # queryAll counts the deletion


def test_freshness_sensor_records_each_stale_state_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    definitions = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    never = evaluate(definitions, FRESHNESS_SENSOR_NAME, instance)
    assert "sf_raw/sf_user: never" in never.skip_message
    assert not (settings.alerts_dir / "freshness.jsonl").exists()

    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["sf_raw", "sf_user"]))
    now = dt.datetime.now(dt.UTC)
    monkeypatch.setattr(sensors, "utcnow", lambda: now + dt.timedelta(hours=3))
    warned = evaluate(definitions, FRESHNESS_SENSOR_NAME, instance)
    assert "sf_raw/sf_user: warn" in warned.skip_message
    repeat = evaluate(definitions, FRESHNESS_SENSOR_NAME, instance, cursor=warned.cursor)
    monkeypatch.setattr(sensors, "utcnow", lambda: now + dt.timedelta(hours=7))
    failed = evaluate(definitions, FRESHNESS_SENSOR_NAME, instance, cursor=repeat.cursor)
    assert "sf_raw/sf_user: fail" in failed.skip_message

    alerts = [json.loads(line) for line in (settings.alerts_dir / "freshness.jsonl").open()]
    assert [(a["asset"], a["status"]) for a in alerts] == [
        ("sf_raw/sf_user", "warn"),
        ("sf_raw/sf_user", "fail"),
    ]
    assert alerts[0]["link"].endswith("/assets/sf_raw/sf_user")
    assert "FRESHNESS FAIL sf_raw/sf_user" in (settings.alerts_dir / "alerts.log").read_text()
    # Every tick publishes the lag (locally: metrics/*.jsonl), for the stale alarms.
    lags = [
        json.loads(line)["value"]
        for path in (settings.home / "metrics").glob("*.jsonl")
        for line in path.open()
        if '"RawFreshnessLagMinutes"' in line and '"User"' in line
    ]
    assert [round(v) for v in sorted(lags)] == [180, 180, 420]


def test_freshness_status_windows() -> None:
    window = FreshnessWindow(warn_after_minutes=60, fail_after_minutes=120)
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    assert freshness_status(None, window, now) == "never"
    assert freshness_status(now - dt.timedelta(minutes=59), window, now) == "fresh"
    assert freshness_status(now - dt.timedelta(minutes=61), window, now) == "warn"
    assert freshness_status(now - dt.timedelta(minutes=121), window, now) == "fail"


def test_failure_sensor_records_the_run_link_and_error(settings: Settings) -> None:
    definitions = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    # No Salesforce credentials: the extraction fails.
    result = definitions.resolve_job_def(PIPELINE_JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    sensor = definitions.resolve_sensor_def(FAILURE_SENSOR_NAME)
    context = dg.build_run_status_sensor_context(
        sensor_name=FAILURE_SENSOR_NAME,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        repository_def=definitions.get_repository_def(),
    ).for_run_failure()
    sensor(context)
    [record] = [json.loads(line) for line in (settings.alerts_dir / "run_failures.jsonl").open()]
    assert record["run_id"] == result.run_id
    assert record["link"] == f"http://127.0.0.1:3000/runs/{result.run_id}"
    assert record["job"] == PIPELINE_JOB_NAME
    steps = {step["step"]: step["error"] for step in record["failed_steps"]}
    assert set(steps) == {"sf_raw__sf_user", "sf_raw__sf_account", "sf_raw__sf_opportunity"}
    assert "no Salesforce credentials" in steps["sf_raw__sf_user"]
    readable = (settings.alerts_dir / "alerts.log").read_text()
    assert f"RUN FAILED {PIPELINE_JOB_NAME}" in readable and result.run_id in readable
    # The sensor published the failed run's metrics with its one-line reason.
    failed = [
        json.loads(line)
        for path in (settings.home / "metrics").glob("*.jsonl")
        for line in path.open()
        if '"RunsFailed"' in line
    ]
    assert {p["dimensions"].get("Object") for p in failed} == {
        None,
        "User",
        "Account",
        "Opportunity",
    }
    assert all("no Salesforce credentials" in p["detail"] for p in failed)


def test_a_run_on_bad_raw_data_stops_at_the_blocking_check(settings: Settings, connected) -> None:
    account_id = "001000000000000AAA"  # an Account id where a User id belongs
    connected([*HISTORY, user(account_id, 5, "EMEA")], BASE + dt.timedelta(hours=3))
    definitions = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    result = definitions.resolve_job_def(settings.object("User").job_name).execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    # The failure sensor's alerts: the run, and the check that started failing (to the files,
    # and to SNS/Slack when configured), each once.
    alerts = on_run_failed(settings, instance, result.dagster_run, [], warn=pytest.fail)
    assert [(a.kind, a.state) for a in alerts] == [("run", "failed"), ("check", "failed")]
    assert alerts[1].subject == "check raw_ids_are_18_character_user_ids on sf_raw/sf_user"
    assert alerts[1].objects == ("User",)
    [recorded] = [json.loads(line) for line in (settings.alerts_dir / "checks.jsonl").open()]
    assert recorded["subject"] == alerts[1].subject and account_id not in json.dumps(recorded)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    bad_ids = evaluations["raw_ids_are_18_character_user_ids"]
    assert not bad_ids.passed
    assert bad_ids.metadata["example_ids"].value == [account_id]
    materialized = {
        e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization
    }
    assert materialized == {"sf_raw/sf_user"}  # dbt never ran on the bad rows
    catalog = open_catalog(settings.catalog_properties())
    assert settings.curated_database not in {ns[0] for ns in catalog.list_namespaces()}


def test_pipeline_job_runs_checks_and_reports_dimension_changes(settings: Settings, connected):
    emulator = connected(HISTORY, BASE + dt.timedelta(minutes=30))
    definitions = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    job = definitions.resolve_job_def(PIPELINE_JOB_NAME)
    first = job.execute_in_process(instance=instance)
    emulator.set_clock(BASE + dt.timedelta(hours=3))
    second = job.execute_in_process(instance=instance)
    for result in (first, second):
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        assert failed == []
    user_checks = {
        e.check_name
        for e in second.get_asset_check_evaluations()
        if e.asset_key.path[-1] in ("sf_user", "dim_sf_user_scd")
    }
    assert user_checks >= {
        "raw_versions_are_unique",
        "raw_ids_are_18_character_user_ids",
        "raw_tracked_fields_exist",
        "raw_row_count_never_drops",
        "every_raw_user_in_dimension",
        "dimension_matches_the_scd2_rule",
        "unique_dim_sf_user_scd_scd_id",
    }
    assert any(name.startswith("exactly_one_current_row_dim_sf_user_scd") for name in user_checks)
    metadata = materialization_metadata(second, ["sf_curated", "dim_sf_user_scd"])
    # A and B each changed division once more: two versions opened, two closed.
    assert (metadata["versions_opened"], metadata["versions_closed"]) == (2, 2)
    assert metadata["current_rows"] == 2 and metadata["historical_rows"] == 2
    assert "| user_id | division | audit_phase | effective_from |" in metadata["latest_changes"]
    raw_meta = materialization_metadata(second, ["sf_raw", "sf_user"])
    columns = {c.name: c.type for c in raw_meta["dagster/column_schema"].columns}
    assert columns["systemmodstamp"] == "timestamp" and columns["division"] == "string"
    assert isinstance(raw_meta["rows_extracted"], int)


def materialization_metadata(result: dg.ExecuteInProcessResult, key: list[str]) -> dict:
    [event] = [
        e
        for e in result.all_events
        if e.is_step_materialization and e.asset_key == dg.AssetKey(key)
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}
