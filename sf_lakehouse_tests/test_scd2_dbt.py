"""The SCD2 rule of shared/design.md, one test per clause, on the dimension dbt builds for real
(dbt-duckdb reading the raw Iceberg table and writing the dimension back to Iceberg)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path

import pyarrow as pa
import pytest

from sf_lakehouse.lakehouse.tables import RAW_LAYOUT, append_rows, ensure_table, open_catalog
from sf_lakehouse.scd2_rule import comparable, expected_dimension
from sf_lakehouse.config import Settings, resolve_settings
from sf_lakehouse_tests.conftest import run_dbt
from sf_lakehouse_tests.tables import RAW_SCHEMA

T0 = dt.datetime(2026, 3, 1, 8)
RUN1 = dt.datetime(2026, 3, 2, 0)
RUN2 = dt.datetime(2026, 3, 3, 0)

U_SINGLE = "005000000000001AAA"
U_CHANGES = "005000000000002AAA"
U_NULLS = "005000000000003AAA"
U_OTHER_FIELDS = "005000000000004AAA"
U_REVERT = "005000000000005AAA"
U_REEXTRACTED = "005000000000006AAA"
U_BURST = "005000000000007AAA"


def obs(
    user: str,
    hours: float,
    division: str | None,
    phase: str | None,
    *,
    extracted: dt.datetime = RUN1,
    username: str = "user",
    name: str = "Zoë O'Brien",
    active: bool = True,
    run_id: str = "run-1",
) -> dict:
    stamp = T0 + dt.timedelta(hours=hours)
    return {
        "id": user,
        "username": username,
        "name": name,
        "email": f"{username}@acme.example",
        "isactive": active,
        "division": division,
        "audit_phase__c": phase,
        "lastmodifieddate": stamp,
        "systemmodstamp": stamp,
        "_extracted_at": extracted,
        "_run_id": run_id,
    }


RAW_ROWS = [
    obs(U_SINGLE, 0, "EMEA", "Planning"),
    obs(U_CHANGES, 0, "EMEA", "Planning"),
    obs(U_CHANGES, 1, "APAC", "Planning"),
    obs(U_CHANGES, 2, "APAC", "Review"),
    obs(U_NULLS, 0, None, None),
    obs(U_NULLS, 1, None, None),
    obs(U_NULLS, 2, "EMEA", None),
    obs(U_NULLS, 3, None, None),
    obs(U_OTHER_FIELDS, 0, "EMEA", "Review", username="old", name="José Núñez"),
    obs(U_OTHER_FIELDS, 1, "EMEA", "Review", username="new", name="José Núñez-Ortiz", active=False),
    obs(U_REVERT, 0, "EMEA", "Review"),
    obs(U_REVERT, 1, "APAC", "Review"),
    obs(U_REVERT, 2, "EMEA", "Review"),
    obs(U_REEXTRACTED, 0, "LATAM", "Closed", username="first-read"),
    obs(
        U_REEXTRACTED, 0, "LATAM", "Closed", username="second-read", extracted=RUN2, run_id="run-2"
    ),
    obs(U_BURST, 0, "EMEA", "Fieldwork"),
    obs(U_BURST, 0.1 / 3600, "APAC", "Fieldwork"),
    obs(U_BURST, 0.9 / 3600, "APAC", "Fieldwork", username="burst-last"),
]


def write_raw(settings: Settings, *batches: list[dict]) -> None:
    catalog = open_catalog(settings.catalog_properties())
    table = ensure_table(catalog, settings.raw_table_identifier, RAW_SCHEMA, RAW_LAYOUT)
    for batch in batches:
        append_rows(table, pa.Table.from_pylist(batch, schema=RAW_SCHEMA))
        table = catalog.load_table(settings.raw_table_identifier)


def build_dimension(settings: Settings, *args: str) -> list[dict]:
    return build_dimension_with_output(settings, *args)[0]


def build_dimension_with_output(settings: Settings, *args: str) -> tuple[list[dict], str]:
    result = run_dbt(settings, "build", *(args or ("--exclude-resource-type", "unit_test")))
    assert result.returncode == 0, result.stdout[-4000:]
    catalog = open_catalog(settings.catalog_properties())
    rows = catalog.load_table(settings.dimension_identifier).scan().to_arrow().to_pylist()
    return rows, result.stdout


def versions_of(rows: list[dict], user: str) -> list[dict]:
    return sorted((r for r in rows if r["user_id"] == user), key=lambda r: r["effective_from"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], str]:
    settings = resolve_settings("local", home=tmp_path_factory.mktemp("scd") / "lakehouse")
    write_raw(settings, RAW_ROWS)
    # This build also runs the dbt unit tests (dbt_project/models/marts/*.yml).
    return build_dimension_with_output(settings, "--select", "+dim_sf_user_scd")


@pytest.fixture(scope="module")
def dimension(built: tuple[list[dict], str]) -> list[dict]:
    return built[0]


def test_dbt_unit_tests_of_the_rule_pass(built: tuple[list[dict], str]) -> None:
    output = built[1]
    passed = [line for line in output.splitlines() if "PASS dim_sf_user_scd::rule_" in line]
    assert len(passed) == 6, output[-3000:]


def test_whole_dimension_equals_the_rule_computed_independently(dimension: list[dict]) -> None:
    assert comparable(dimension) == expected_dimension(RAW_ROWS)


def test_rule_1_a_re_extracted_version_counts_once_and_the_latest_extraction_wins(dimension):
    rows = versions_of(dimension, U_REEXTRACTED)
    assert [r["username"] for r in rows] == ["second-read"]


def test_rule_2_first_observation_starts_a_version(dimension):
    rows = versions_of(dimension, U_SINGLE)
    assert [(r["division"], r["effective_from"], r["is_current"]) for r in rows] == [
        ("EMEA", T0, True)
    ]


def test_rule_2_a_change_of_either_tracked_field_starts_a_version(dimension):
    rows = versions_of(dimension, U_CHANGES)
    assert [(r["division"], r["audit_phase"]) for r in rows] == [
        ("EMEA", "Planning"),
        ("APAC", "Planning"),
        ("APAC", "Review"),
    ]


def test_rule_2_comparison_is_null_safe(dimension):
    rows = versions_of(dimension, U_NULLS)
    # NULL -> NULL is no change; NULL -> EMEA and EMEA -> NULL are changes.
    assert [r["division"] for r in rows] == [None, "EMEA", None]
    assert rows[0]["effective_to"] == T0 + dt.timedelta(hours=2)


def test_rule_2_changes_of_other_fields_never_start_a_version(dimension):
    assert len(versions_of(dimension, U_OTHER_FIELDS)) == 1


def test_rule_2_a_revert_a_b_a_gives_three_versions(dimension):
    assert [r["division"] for r in versions_of(dimension, U_REVERT)] == ["EMEA", "APAC", "EMEA"]


def test_rule_2_changes_within_one_second_keep_their_milliseconds(dimension):
    rows = versions_of(dimension, U_BURST)
    assert [r["division"] for r in rows] == ["EMEA", "APAC"]
    assert rows[1]["effective_from"] - rows[0]["effective_from"] == dt.timedelta(milliseconds=100)


def test_rule_3_intervals_are_half_open_and_contiguous(dimension):
    for user in {r["user_id"] for r in dimension}:
        rows = versions_of(dimension, user)
        for earlier, later in itertools.pairwise(rows):
            assert earlier["effective_to"] == later["effective_from"]
            assert earlier["effective_to"] > earlier["effective_from"]
            assert earlier["is_current"] is False
        assert rows[-1]["effective_to"] is None and rows[-1]["is_current"] is True


def test_rule_4_attributes_come_from_the_latest_observation_in_the_version(dimension):
    [row] = versions_of(dimension, U_OTHER_FIELDS)
    assert (row["username"], row["name"], row["is_active"]) == ("new", "José Núñez-Ortiz", False)
    assert versions_of(dimension, U_BURST)[1]["username"] == "burst-last"


def test_rule_5_scd_id_is_unique_and_deterministic(dimension, tmp_path: Path):
    ids = [r["scd_id"] for r in dimension]
    assert len(ids) == len(set(ids)) and all(ids)
    again = resolve_settings("local", home=tmp_path / "again")
    write_raw(again, RAW_ROWS)
    assert sorted(r["scd_id"] for r in build_dimension(again)) == sorted(ids)


def test_rule_6_result_depends_only_on_the_set_of_raw_rows(dimension, tmp_path: Path):
    """Rows arriving shuffled over two runs (with a rebuild in between) give the same table."""
    shuffled = list(RAW_ROWS)
    random.Random(3).shuffle(shuffled)
    incremental = resolve_settings("local", home=tmp_path / "incremental")
    write_raw(incremental, shuffled[:9])
    build_dimension(incremental)
    write_raw(incremental, shuffled[9:])
    rebuilt = build_dimension(incremental)
    assert sorted(map(sorted_items, rebuilt)) == sorted(map(sorted_items, dimension))


def sorted_items(row: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in row.items()))
