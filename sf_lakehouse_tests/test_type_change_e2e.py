"""Issue 16, item 7 end to end: a custom field the dimension tracks (User's Audit_Phase__c) is a
number in the org, then text. Emulator, Iceberg catalog and dbt on DuckDB, all real. No version
is lost, the dimension follows the org (text), the check raw_column_types_unchanged stays failed
run after run until `sf-lakehouse acknowledge-type-change`; and `sf-lakehouse re-extract`
stores again, once, the versions whose values were set aside."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_lakehouse.cli import main
from sf_lakehouse.config import Settings
from sf_lakehouse.defs.checks import TYPE_CHANGE_CHECK, build_checks
from sf_lakehouse.defs.dbt import build_dbt_assets
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests.histories import at, user
from sf_lakehouse_tests.scd2_reference import expected_dimension

A, B = "005000000000000AAA", "005000000000000BBB"
BEFORE = [  # the org while Audit_Phase__c is a number field
    user(A, 0, "EMEA", phase=1.0),
    user(B, 10, "APAC", phase=2.0),
]
AFTER = [  # the admin made it a text field: new values are text
    *BEFORE,
    user(A, 40, "EMEA", phase="Phase 3"),
    user(B, 50, "LATAM", phase="Closed"),
]


def materialize(settings: Settings, *, with_dbt: bool) -> dg.ExecuteInProcessResult:
    spec = settings.object("User")
    assets: list = [build_raw_asset(settings, s) for s in settings.objects]
    if with_dbt:
        assets.append(build_dbt_assets(settings.objects))
    return dg.materialize(
        [*assets, *build_checks(spec)],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        selection=None
        if with_dbt
        else [dg.AssetKey(list(s.raw_asset_key)) for s in settings.objects],
    )


def type_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == TYPE_CHANGE_CHECK
    ]
    return evaluation


def rows(settings: Settings, key: tuple[str, str]) -> list[dict]:
    catalog = open_catalog(settings.catalog_properties())
    return catalog.load_table(settings.table_identifier(key)).scan().to_arrow().to_pylist()


@pytest.fixture
def home_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SF_LAKEHOUSE_HOME", str(settings.home))
    return settings


def test_a_number_field_made_text_loses_no_version_and_the_dimension_follows_the_org(
    home_env: Settings, connected, capsys
) -> None:
    settings, spec = home_env, home_env.object("User")
    connected(BEFORE, at(15))
    first = materialize(settings, with_dbt=True)
    assert first.success and type_check(first).passed
    connected(AFTER, at(60))  # the same org, its describe now types the field as text
    second = materialize(settings, with_dbt=True)
    assert second.success  # the type check does not block the build: the dimension follows
    raw = rows(settings, spec.raw_asset_key)
    stored = sorted((r["id"], r["systemmodstamp"], r["audit_phase__c"]) for r in raw)
    assert stored == sorted(
        (u["Id"], at(m).replace(tzinfo=None), phase)
        for u, m, phase in zip(AFTER, (0, 10, 40, 50), ("1", "2", "Phase 3", "Closed"), strict=True)
    )
    dimension = rows(settings, spec.dimension_asset_key)
    assert {r["audit_phase"] for r in dimension if r["is_current"]} == {"Phase 3", "Closed"}
    columns = [c for c in spec.dimension_columns if c != "scd_id"]
    got = sorted(
        ({c: r[c] for c in columns} for r in dimension),
        key=lambda r: (r["user_id"], r["effective_from"]),
    )
    assert got == expected_dimension(spec, raw)
    check = type_check(second)
    assert not check.passed
    summary = check.metadata["summary"].value
    assert "User.Audit_Phase__c changed type in the org from number to text" in summary
    assert "acknowledge-type-change --object User --field Audit_Phase__c" in summary

    third = materialize(settings, with_dbt=False)  # still failed: no single warning
    assert third.success and not type_check(third).passed
    assert main(["acknowledge-type-change", "--object", "User", "--field", "Audit_Phase__c"]) == 0
    assert "acknowledged: User.Audit_Phase__c changed type" in capsys.readouterr().out
    fourth = materialize(settings, with_dbt=False)
    assert type_check(fourth).passed
    assert main(["acknowledge-type-change", "--object", "User", "--field", "Nope__c"]) == 2


def test_re_extract_stores_set_aside_values_once(home_env: Settings, connected, capsys) -> None:
    """A malformed IsActive was set aside in a run (its versions stored with IsActive NULL);
    re-extract after the fix stores those versions again with the value, once; the rest of
    the window is not stored twice, and a second re-extract stores nothing."""
    settings, spec = home_env, home_env.object("User")
    history = [user(f"005000000000000A{i:02d}", i, "EMEA") for i in range(12)]
    emulator = connected(history, at(30))
    emulator.set_faults(
        {"seed": 3, "faults": [{"kind": "malformed", "field": "IsActive", "every": 4}]}
    )
    assert materialize(settings, with_dbt=False).success
    raw = rows(settings, spec.raw_asset_key)
    nulls = {r["id"] for r in raw if r["isactive"] is None}
    assert len(raw) == 12 and len(nulls) == 3  # the versions are stored, the values set aside
    emulator.clear_faults()
    since = at(0).isoformat()
    assert main(["re-extract", "--object", "User", "--since", since]) == 0
    assert "0 new versions, 3 versions stored again" in capsys.readouterr().out
    raw = rows(settings, spec.raw_asset_key)
    assert len(raw) == 15
    latest: dict[str, dict] = {}
    for row in sorted(raw, key=lambda r: r["_extracted_at"]):
        latest[row["id"]] = row
    assert all(r["isactive"] is True for r in latest.values())
    assert main(["re-extract", "--object", "User", "--since", since]) == 0
    assert "0 new versions, 0 versions stored again" in capsys.readouterr().out
    assert len(rows(settings, spec.raw_asset_key)) == 15
