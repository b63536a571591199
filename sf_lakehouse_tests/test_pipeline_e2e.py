"""End to end on the embedded default: the emulator (HTTPS), simple-salesforce, the Iceberg SQL
catalog and dbt on DuckDB, all real, driven through Dagster's materialize()."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from sf_lakehouse.defs.dbt import build_dbt_assets
from sf_lakehouse.defs.raw import build_raw_user_asset
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.scd2_rule import comparable, expected_dimension
from sf_lakehouse.config import Settings

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
SIX_RUNS = [START + dt.timedelta(days=d, hours=6) for d in range(6)]


def parse_stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("+0000", "+00:00")).replace(tzinfo=None)


def latest_visible(history: list[dict], clock: dt.datetime) -> dict[str, dt.datetime]:
    """Per Id, the SystemModstamp of the version Salesforce shows at `clock`."""
    naive = clock.astimezone(dt.UTC).replace(tzinfo=None)
    seen: dict[str, dt.datetime] = {}
    for record in history:
        stamp = parse_stamp(record["SystemModstamp"])
        if stamp <= naive and stamp > seen.get(record["Id"], dt.datetime.min):
            seen[record["Id"]] = stamp
    return seen


def materialize_once(settings: Settings, instance: dg.DagsterInstance, *, with_dbt: bool = True):
    assets = [build_raw_user_asset(settings)]
    if with_dbt:
        assets.append(build_dbt_assets())
    return dg.materialize(
        assets, resources=build_resources(settings), instance=instance, raise_on_error=False
    )


def raw_rows(settings: Settings) -> list[dict]:
    catalog = open_catalog(settings.catalog_properties())
    return catalog.load_table(settings.raw_table_identifier).scan().to_arrow().to_pylist()


def raw_metadata(result) -> dict:
    [materialization] = result.asset_materializations_for_node("sf_raw__sf_user")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_six_runs_with_the_clock_moving_give_the_rule(settings: Settings, connected) -> None:
    history = generate_org(users=60, seed=11, start=START, days=6)
    emulator = connected(history, SIX_RUNS[0])
    instance = dg.DagsterInstance.ephemeral()
    observed: set[tuple[str, dt.datetime]] = set()
    for clock in SIX_RUNS:
        emulator.set_clock(clock)
        result = materialize_once(settings, instance)
        assert result.success
        observed |= {(i, s) for i, s in latest_visible(history, clock).items()}
        rows = raw_rows(settings)
        keys = [(r["id"], r["systemmodstamp"]) for r in rows]
        # Every version visible at a run is stored, exactly once.
        assert set(keys) == observed
        assert len(keys) == len(set(keys))
        metadata = raw_metadata(result)
        assert metadata["rows_extracted"] >= metadata["rows_appended"]
        assert metadata["api_calls"] >= 2  # describe + at least one query page
    # The dimension read back through the catalog equals the rule over the raw table.
    catalog = open_catalog(settings.catalog_properties())
    dimension = catalog.load_table(settings.dimension_identifier).scan().to_arrow().to_pylist()
    assert comparable(dimension) == expected_dimension(raw_rows(settings))
    assert {r["user_id"] for r in dimension} == set(latest_visible(history, SIX_RUNS[-1]))
    # Region__c appears in the org after day 3: the raw table gained the column.
    assert "region__c" in raw_rows(settings)[0]


def test_cursor_boundaries_ties_exact_clock_and_reextraction(settings: Settings, connected) -> None:
    base = dt.datetime(2026, 3, 1, 8, 0, 0)

    def version(user: str, stamp: dt.datetime, division: str) -> dict:
        text = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"
        return {
            "Id": user,
            "Username": f"{user}@acme.example",
            "Name": "Zoë D'Angelo",
            "FirstName": "Zoë",
            "LastName": "D'Angelo",
            "Email": f"{user}@acme.example",
            "IsActive": True,
            "Division": division,
            "Audit_Phase__c": "Review",
            "Title": "Auditor",
            "Department": "Audit",
            "CreatedDate": text,
            "LastModifiedDate": text,
            "SystemModstamp": text,
        }

    a, b, c = "005000000000000AAA", "005000000000000BBB", "005000000000000CCC"
    history = [
        version(a, base + dt.timedelta(milliseconds=100), "EMEA"),
        version(b, base + dt.timedelta(milliseconds=900), "APAC"),  # same second as a
        version(c, base + dt.timedelta(seconds=5), "LATAM"),  # exactly on run 2's clock
        version(c, base + dt.timedelta(seconds=5, milliseconds=1), "EMEA"),
    ]
    emulator = connected(history, base + dt.timedelta(milliseconds=500))
    instance = dg.DagsterInstance.ephemeral()

    def run() -> dict:
        result = materialize_once(settings, instance, with_dbt=False)
        assert result.success
        return raw_metadata(result)

    assert run()["rows_appended"] == 1  # a only; b is later in the same second
    emulator.set_clock(base + dt.timedelta(seconds=5))
    assert run()["rows_appended"] == 2  # b (tie second) and c's version exactly at the clock
    emulator.set_clock(base + dt.timedelta(seconds=6))
    third = run()
    assert third["rows_appended"] == 1  # c's next version
    assert third["rows_extracted"] == 3  # the lookback window re-read a, b and c
    fourth = run()  # nothing changed: re-extracted, nothing duplicated
    assert fourth["rows_appended"] == 0 and fourth["rows_extracted"] == 3
    keys = sorted((r["id"], r["division"]) for r in raw_rows(settings))
    assert keys == [(a, "EMEA"), (b, "APAC"), (c, "EMEA"), (c, "LATAM")]


def test_a_failed_run_changes_nothing_and_the_next_run_catches_up(
    settings: Settings, connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = generate_org(users=20, seed=5, start=START, days=2)
    emulator = connected(history, SIX_RUNS[0])
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_once(settings, instance).success
    catalog = open_catalog(settings.catalog_properties())
    snapshots = {
        name: catalog.load_table(name).current_snapshot().snapshot_id
        for name in (settings.raw_table_identifier, settings.dimension_identifier)
    }
    emulator.set_clock(SIX_RUNS[1])
    monkeypatch.setenv("SF_PASSWORD", "wrong-password")
    failed = materialize_once(settings, instance)
    assert not failed.success
    for name, snapshot in snapshots.items():
        assert catalog.load_table(name).current_snapshot().snapshot_id == snapshot
    monkeypatch.setenv("SF_PASSWORD", emulator.env_vars()["SF_PASSWORD"])
    assert materialize_once(settings, instance).success
    stored = {(r["id"], r["systemmodstamp"]) for r in raw_rows(settings)}
    assert set(latest_visible(history, SIX_RUNS[1]).items()) <= stored


def test_failure_message_names_the_problem_without_the_secret(
    settings: Settings, connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected(generate_org(users=3, seed=1, start=START, days=1), SIX_RUNS[0])
    monkeypatch.setenv("SF_PASSWORD", "wrong-password-value")
    result = materialize_once(settings, dg.DagsterInstance.ephemeral(), with_dbt=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "login (password) failed" in message and "check the credentials" in message
    assert "wrong-password-value" not in message
