"""End to end on the embedded default: the emulator (HTTPS), simple-salesforce, the Iceberg SQL
catalog and dbt on DuckDB, all real, driven through Dagster's materialize()."""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg
import pyarrow as pa
import pytest

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.defs.dbt import build_dbt_assets
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests.histories import account, record_type, user
from sf_lakehouse_tests.raw_oracle import assert_raw_table_holds_the_history, describe_types
from sf_lakehouse_tests.scd2_reference import expected_dimension

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
# Run clocks over the six-day org: the first day, the third, the last two (Region__c appears
# after day 3).
RUN_CLOCKS = [START + dt.timedelta(days=d, hours=6) for d in (0, 2, 4, 5)]


def parse_stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("+0000", "+00:00")).replace(tzinfo=None)


def latest_visible(
    history: list[dict], clock: dt.datetime, object_type: str = "User"
) -> dict[str, dt.datetime]:
    """Per Id, the SystemModstamp of the version Salesforce shows at `clock` (queryAll: deleted
    records included)."""
    naive = clock.astimezone(dt.UTC).replace(tzinfo=None)
    seen: dict[str, dt.datetime] = {}
    for record in history:
        if record_type(record) != object_type:
            continue
        stamp = parse_stamp(record["SystemModstamp"])
        if stamp <= naive and stamp > seen.get(record["Id"], dt.datetime.min):
            seen[record["Id"]] = stamp
    return seen


def materialize_once(
    settings: Settings,
    instance: dg.DagsterInstance,
    *,
    with_dbt: bool = True,
    tags: dict[str, str] | None = None,
):
    assets = [build_raw_asset(settings, spec) for spec in settings.objects]
    if with_dbt:
        assets.append(build_dbt_assets(settings.objects))
    return dg.materialize(
        assets,
        resources=build_resources(settings),
        instance=instance,
        raise_on_error=False,
        tags=tags,
    )


def table_rows(settings: Settings, key: tuple[str, str]) -> list[dict]:
    catalog = open_catalog(settings.catalog_properties())
    return catalog.load_table(settings.table_identifier(key)).scan().to_arrow().to_pylist()


def raw_rows(settings: Settings, api_name: str = "User") -> list[dict]:
    return table_rows(settings, settings.object(api_name).raw_asset_key)


def dimension_rows(settings: Settings, spec: ObjectSpec) -> list[dict]:
    """The dimension without scd_id, in the reference's order."""
    columns = [c for c in spec.dimension_columns if c != "scd_id"]
    rows = [{c: r[c] for c in columns} for r in table_rows(settings, spec.dimension_asset_key)]
    return sorted(rows, key=lambda r: (r[spec.key_column], r["effective_from"]))


def raw_metadata(result) -> dict:
    [materialization] = result.asset_materializations_for_node("sf_raw__sf_user")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_runs_of_a_multi_object_org_give_the_rules_for_every_object(
    settings: Settings, connected
) -> None:
    """A replay of User, Account and Opportunity histories (with deletions and undeletes) over
    four runs; after each run every object's raw table holds each visible version once, and at
    the end every dimension equals rules 1-7 computed by the test's own implementation."""
    history = generate_org(users=60, seed=11, start=START, days=6)
    emulator = connected(history, RUN_CLOCKS[0])
    instance = dg.DagsterInstance.ephemeral()
    observed: dict[str, set[tuple[str, dt.datetime]]] = {
        s.api_name: set() for s in settings.objects
    }
    for clock in RUN_CLOCKS:
        emulator.set_clock(clock)
        result = materialize_once(settings, instance)
        assert result.success
        for spec in settings.objects:
            observed[spec.api_name] |= set(latest_visible(history, clock, spec.api_name).items())
            keys = [(r["id"], r["systemmodstamp"]) for r in raw_rows(settings, spec.api_name)]
            # Every version visible at a run is stored, exactly once.
            assert set(keys) == observed[spec.api_name], spec.api_name
            assert len(keys) == len(set(keys))
        metadata = raw_metadata(result)
        assert metadata["rows_extracted"] >= metadata["rows_appended"]
        assert metadata["api_calls"] >= 2  # describe + at least one query page
    for spec in settings.objects:
        # Every column of every stored version, typed, from the history and the org's describe;
        # the expected dimension is computed from those rows, not from what the pipeline wrote.
        raw = raw_table(settings, spec)
        types = describe_types(emulator, spec.api_name)
        fields = [f.lower() for f in spec.extracted_fields]
        rows = assert_raw_table_holds_the_history(
            raw, history, RUN_CLOCKS, spec.api_name, types, fields
        )
        expected = expected_dimension(spec, rows)
        assert dimension_rows(settings, spec) == expected, spec.api_name
    deleted_now = [
        r
        for r in table_rows(settings, settings.object("Account").dimension_asset_key)
        if r["is_current"] and r["is_deleted"]
    ]
    assert deleted_now, "the synthetic org deletes accounts: some must be deleted now"
    users = {r["user_id"] for r in dimension_rows(settings, settings.object("User"))}
    assert users == set(latest_visible(history, RUN_CLOCKS[-1]))
    # Region__c appears in the org after day 3: the raw table gained the column.
    assert "region__c" in raw_rows(settings)[0]


def raw_table(settings: Settings, spec: ObjectSpec) -> pa.Table:
    catalog = open_catalog(settings.catalog_properties())
    return catalog.load_table(settings.table_identifier(spec.raw_asset_key)).scan().to_arrow()


# Text a conversion can break: 4-byte UTF-8 (emoji), CJK, combining marks, quotes, commas and
# newlines (Bulk CSV quoting), and long values.
HARD_TEXT = [
    "🦄 Zoë 😀👍🏽 naïve",
    "亚太区域销售与市场部门",
    'Acme "Quoted", Inc.\nLine two\r\nLine three',
    "𠜎𠜱𠝹 " * 400,  # 4-byte CJK, 2,000 characters
    "x" * 10_000,
    "e\u0301 Ω ß ﬁ",
]


def hard_history() -> list[dict]:
    """Users and Accounts whose text fields hold HARD_TEXT (a User's second version the next
    day, with another text)."""
    history = []
    for number, text in enumerate(HARD_TEXT):
        user_id = f"005HARD0000000{number:02d}A"
        history.append(user(user_id, 10 + number, text, Name=text, Title=text[:80]))
        history.append(user(user_id, 1_500 + number, HARD_TEXT[-1 - number], Name=text))
        history.append(
            account(f"001HARD0000000{number:02d}A", 20 + number, "Customer", user_id, Name=text)
        )
    return history


@pytest.mark.parametrize("api", ["rest", "bulk"])
def test_hard_text_reaches_the_raw_tables_and_dimensions_intact(
    settings: Settings, connected, api: str
) -> None:
    """Every typed column of every version equals the history's value, over REST and Bulk."""
    history = hard_history()
    clocks = [START + dt.timedelta(days=1, hours=20)]  # one run: each record's latest version
    objects = tuple(
        ObjectSpec.model_validate(
            spec.model_dump() | {"extraction": {**spec.extraction.model_dump(), "api": api}}
        )
        for spec in settings.objects
    )
    settings = dataclasses.replace(settings, objects=objects)
    emulator = connected(history, clocks[0])
    instance = dg.DagsterInstance.ephemeral()
    for clock in clocks:
        emulator.set_clock(clock)
        result = materialize_once(settings, instance)
        assert result.success
    assert raw_metadata(result)["api"].startswith(api)
    for spec in (settings.object("User"), settings.object("Account")):
        types = describe_types(emulator, spec.api_name)
        fields = [f.lower() for f in spec.extracted_fields]
        rows = assert_raw_table_holds_the_history(
            raw_table(settings, spec), history, clocks, spec.api_name, types, fields
        )
        assert dimension_rows(settings, spec) == expected_dimension(spec, rows), spec.api_name
    names = {r["name"] for r in raw_rows(settings)}
    assert set(HARD_TEXT) <= names


def test_cursor_boundaries_ties_exact_clock_and_reextraction(settings: Settings, connected) -> None:
    base = dt.datetime(2026, 3, 1, 8, 0, 0, tzinfo=dt.UTC)
    a, b, c = "005000000000000AAA", "005000000000000BBB", "005000000000000CCC"
    history = [
        user(a, base + dt.timedelta(milliseconds=100), "EMEA"),
        user(b, base + dt.timedelta(milliseconds=900), "APAC"),  # same second as a
        user(c, base + dt.timedelta(seconds=5), "LATAM"),  # exactly on run 2's clock
        user(c, base + dt.timedelta(seconds=5, milliseconds=1), "EMEA"),
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
    emulator = connected(history, RUN_CLOCKS[0])
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_once(settings, instance).success
    catalog = open_catalog(settings.catalog_properties())
    user_spec = settings.object("User")
    snapshots = {
        name: catalog.load_table(name).current_snapshot().snapshot_id
        for name in (
            settings.table_identifier(user_spec.raw_asset_key),
            settings.table_identifier(user_spec.dimension_asset_key),
        )
    }
    emulator.set_clock(RUN_CLOCKS[1])
    monkeypatch.setenv("SF_PASSWORD", "wrong-password")
    failed = materialize_once(settings, instance)
    assert not failed.success
    for name, snapshot in snapshots.items():
        assert catalog.load_table(name).current_snapshot().snapshot_id == snapshot
    monkeypatch.setenv("SF_PASSWORD", emulator.env_vars()["SF_PASSWORD"])
    assert materialize_once(settings, instance).success
    stored = {(r["id"], r["systemmodstamp"]) for r in raw_rows(settings)}
    assert set(latest_visible(history, RUN_CLOCKS[1]).items()) <= stored


def test_failure_message_names_the_problem_without_the_secret(
    settings: Settings, connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected(generate_org(users=3, seed=1, start=START, days=1), RUN_CLOCKS[0])
    monkeypatch.setenv("SF_PASSWORD", "wrong-password-value")
    result = materialize_once(settings, dg.DagsterInstance.ephemeral(), with_dbt=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == len(settings.objects)  # every object's extraction failed alike
    message = failures[0].step_failure_data.error.to_string()
    assert "login (password) failed" in message and "check the credentials" in message
    assert "wrong-password-value" not in message
