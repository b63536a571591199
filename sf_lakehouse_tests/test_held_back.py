"""One object's failed extraction does not hold back the other objects' dimensions in any run
(issue 16, item 10): the rule (defs/held_back.py) on hand-made step outcomes, and the follow-up
sensor against a real run on the emulator whose Account spec lists a field the org lacks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from sf_lakehouse.config import REPO_ROOT, Settings, resolve_settings
from sf_lakehouse.config.objects import load_object_specs
from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions
from sf_lakehouse.defs.follow_up import FOLLOW_UP_SENSOR_NAME, follow_up_request
from sf_lakehouse.defs.held_back import (
    DBT_STEP,
    FOLLOW_UP_TAG,
    HELD_BACK_TAG,
    NOT_RUN_TAG,
    RunSteps,
    held_back_dimensions,
)
from sf_lakehouse.emulator import SalesforceEmulator
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse.pipeline import dagster_instance
from sf_lakehouse_tests.histories import at, opportunity, user

SPECS = resolve_settings("local").objects
USER, ACCOUNT, OPPORTUNITY = "sf_raw__sf_user", "sf_raw__sf_account", "sf_raw__sf_opportunity"
CHECKS = {name: f"sf_{name.removeprefix('sf_raw__sf_')}_raw_checks" for name in (USER, ACCOUNT)}


def steps(
    succeeded: set[str], failed: set[str], started: set[str] | None = None, dbt_ran: bool = False
) -> RunSteps:
    """The pipeline's shape: raw steps, a raw-checks step after two of them, dbt after all."""
    raws = (USER, ACCOUNT, OPPORTUNITY)
    upstream = {raw: frozenset() for raw in raws}
    upstream |= {check: frozenset({raw}) for raw, check in CHECKS.items()}
    upstream[DBT_STEP] = frozenset({*raws, *CHECKS.values()})
    done = succeeded | failed | (started or set()) | ({DBT_STEP} if dbt_ran else set())
    return RunSteps("r1", upstream, frozenset(done), frozenset(succeeded), frozenset(failed))


def objects(keys: list[dg.AssetKey]) -> set[str]:
    return {key.path[-1] for key in keys if key.path[-1].startswith("dim_")}


def test_the_dimensions_of_the_objects_whose_extraction_succeeded_may_build() -> None:
    outcome = steps({USER, OPPORTUNITY, CHECKS[USER]}, {ACCOUNT})
    assert outcome.not_run() == {
        DBT_STEP: f"{ACCOUNT} failed",
        CHECKS[ACCOUNT]: f"{ACCOUNT} failed",
    }
    assert objects(held_back_dimensions(SPECS, outcome)) == {
        "dim_sf_user_scd",
        "dim_sf_opportunity_scd",
    }


def test_an_object_whose_raw_checks_failed_is_held_back_too() -> None:
    """A blocking raw check guards its dimension: its object's dimension never builds on it."""
    outcome = steps({USER, OPPORTUNITY}, {ACCOUNT, CHECKS[USER]})
    assert objects(held_back_dimensions(SPECS, outcome)) == {"dim_sf_opportunity_scd"}


@pytest.mark.parametrize(
    ("outcome", "why"),
    [
        (steps(set(), {USER, ACCOUNT, OPPORTUNITY}), "no extraction succeeded"),
        (steps({USER, ACCOUNT, OPPORTUNITY, *CHECKS.values()}, {DBT_STEP}), "dbt itself failed"),
        (steps({USER}, {ACCOUNT}, dbt_ran=True), "dbt ran"),
        (steps({USER}, set(), started={ACCOUNT}), "the run was stopped"),
    ],
)
def test_no_follow_up_when_nothing_was_held_back(outcome: RunSteps, why: str) -> None:
    assert held_back_dimensions(SPECS, outcome) == [], why


def test_no_follow_up_for_a_follow_up_run_or_a_cli_run(tmp_path: Path) -> None:
    """Never a follow-up of a follow-up (a chain of runs), nor of `sf-lakehouse run`'s own runs
    (it builds them itself, holding the home's lock)."""
    settings = resolve_settings("local", home=tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    follow_up = dg.DagsterRun(job_name=PIPELINE_JOB_NAME, run_id="f", tags={FOLLOW_UP_TAG: "r"})
    assert "follow-up run of run r" in str(follow_up_request(settings, instance, follow_up))
    cli = dg.DagsterRun(
        job_name=PIPELINE_JOB_NAME, run_id="c", tags={"sf_lakehouse/launched_by": "sf-lakehouse"}
    )
    assert "sf-lakehouse run builds" in str(follow_up_request(settings, instance, cli))


# --- against a real run -------------------------------------------------------------------


@dataclass
class Org:
    settings: Settings
    emulator: SalesforceEmulator
    history: list[dict]


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    """An emulator, and settings whose Account spec lists a field the org lacks."""
    root = tmp_path_factory.mktemp("held_back")
    config = root / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    account = config / "objects" / "account.yml"
    text = account.read_text(encoding="utf-8")
    assert "Name," in text
    account.write_text(text.replace("Name,", "Name, Nope__c,", 1), encoding="utf-8")
    settings = resolve_settings(
        "local", home=root / "lakehouse", objects=load_object_specs(config / "objects")
    )
    history = [
        user("005000000000000AAA", 0, "EMEA"),
        user("005000000000000BBB", 1, "APAC"),
        opportunity(
            "006000000000000OP1",
            2,
            "Prospecting",
            100.0,
            "001000000000000AC1",
            "005000000000000AAA",
        ),
    ]
    emulator = SalesforceEmulator(history, workdir=root / "emulator", now=at(60)).start()
    try:
        yield Org(settings, emulator, history)
    finally:
        emulator.stop()


def tick(definitions: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    """One evaluation of the sensor, as the daemon does it (the run-status cursor and all)."""
    sensor = definitions.resolve_sensor_def(FOLLOW_UP_SENSOR_NAME)
    # No repository: runs executed in process have no code location either (the daemon
    # matches a run's location with the sensor's).
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        return sensor.evaluate_tick(context)


@pytest.mark.slow
def test_a_dagster_launched_run_gets_one_follow_up_run_for_the_held_back_dimensions(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 16, item 10): only `sf-lakehouse run` built the other dimensions; a
    scheduled, sensor or UI run of salesforce_pipeline left every dimension unbuilt."""
    for key, value in org.emulator.env_vars().items():
        monkeypatch.setenv(key, value)
    settings = org.settings
    definitions = build_definitions(settings)
    instance = dagster_instance(settings)
    job = definitions.resolve_job_def(PIPELINE_JOB_NAME)
    started = tick(definitions, instance, None)  # the sensor starts after the last failure
    assert not started.run_requests

    failed = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    assert {e.step_key for e in failed.get_step_failure_events()} == {ACCOUNT}

    requested = tick(definitions, instance, started.cursor)
    [request] = requested.run_requests
    assert objects(list(request.asset_selection or [])) == {
        "dim_sf_user_scd",
        "dim_sf_opportunity_scd",
    }
    assert request.tags[FOLLOW_UP_TAG] == failed.run_id
    assert request.tags[HELD_BACK_TAG] == (
        f"{DBT_STEP} did not run in run {failed.run_id}: {ACCOUNT} failed"
    )
    # The failed run says in the UI what did not run, why, and what builds it.
    annotated = instance.get_run_by_id(failed.run_id)
    assert annotated is not None
    assert f"{DBT_STEP}" in annotated.tags[NOT_RUN_TAG]
    assert annotated.tags[NOT_RUN_TAG].endswith(f": {ACCOUNT} failed")
    logged = [
        record.event_log_entry.message
        for record in instance.get_records_for_run(
            failed.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
        ).records
    ]
    assert any("did not run" in line and "Opportunity, User" in line for line in logged), logged

    # The requested run, launched as the daemon would (its selection, its tags).
    follow_up = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=list(request.asset_selection or []),
        tags=request.tags,
    )
    assert follow_up.success
    catalog = open_catalog(settings.catalog_properties())
    dimension = catalog.load_table(
        settings.table_identifier(settings.object("User").dimension_asset_key)
    )
    ids = dimension.scan().to_arrow().column("user_id").to_pylist()
    assert sorted(ids) == ["005000000000000AAA", "005000000000000BBB"]

    # At most once per failed run: not on the next tick, not with the cursor lost.
    assert not tick(definitions, instance, requested.cursor).run_requests
    assert "already builds" in str(follow_up_request(settings, instance, failed.dagster_run))
