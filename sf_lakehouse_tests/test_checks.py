"""Each Python asset check fails on crafted bad data, says why with counts and example ids, and
passes on good data. (The dimension's own invariants are dbt tests: test_dbt_invariants.py.)"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from sf_lakehouse.config import Settings, resolve_settings
from sf_lakehouse.defs.checks import (
    dimension_checks,
    dimension_matches_rule,
    evaluate_by_record_group,
    every_raw_record_in_dimension,
    raw_ids_have_prefix,
    raw_row_count_never_drops,
    raw_tracked_fields_exist,
    raw_versions_unique,
)
from sf_lakehouse.lakehouse import increments
from sf_lakehouse.lakehouse.increments import record_groups
from sf_lakehouse.lakehouse.tables import (
    TableLayout,
    append_rows,
    ensure_table,
    open_catalog,
    replace_rows,
)
from sf_lakehouse_tests.tables import DIMENSION_SCHEMA, RAW_SCHEMA

USER = resolve_settings("local").object("User")

U1, U2, U3 = "005000000000001AAA", "005000000000002AAA", "005000000000003AAA"
T = [dt.datetime(2026, 3, 1, 8) + dt.timedelta(hours=h) for h in range(5)]


def raw_table(rows: list[tuple]) -> pa.Table:
    """rows: (id, systemmodstamp, division, audit_phase__c)."""
    return pa.Table.from_pylist(
        [
            {
                "id": i,
                "username": "u",
                "name": "Zoë",
                "email": None,
                "isactive": True,
                "division": d,
                "audit_phase__c": p,
                "systemmodstamp": s,
                "lastmodifieddate": s,
                "_extracted_at": T[4],
                "_run_id": "r",
            }
            for i, s, d, p in rows
        ],
        schema=RAW_SCHEMA,
    )


def dim_table(rows: list[tuple]) -> pa.Table:
    """rows: (scd_id, user_id, division, effective_from, effective_to, is_current)."""
    return pa.Table.from_pylist(
        [
            {
                "scd_id": s,
                "user_id": u,
                "username": "u",
                "name": "Zoë",
                "email": None,
                "is_active": True,
                "division": d,
                "audit_phase": None,
                "effective_from": f,
                "effective_to": t,
                "is_current": c,
            }
            for s, u, d, f, t, c in rows
        ],
        schema=DIMENSION_SCHEMA,
    )


GOOD_RAW = raw_table([(U1, T[0], "EMEA", None), (U1, T[1], "APAC", None), (U2, T[0], None, None)])
GOOD_DIM = dim_table(
    [
        ("a", U1, "EMEA", T[0], T[1], False),
        ("b", U1, "APAC", T[1], None, True),
        ("c", U2, None, T[0], None, True),
    ]
)


def test_good_data_passes_every_check() -> None:
    outcomes = [
        raw_versions_unique(GOOD_RAW),
        raw_ids_have_prefix(GOOD_RAW, "User", "005"),
        raw_tracked_fields_exist(GOOD_RAW.schema, ["Division", "Audit_Phase__c"]),
        raw_row_count_never_drops([1, 2, 3]),
        every_raw_record_in_dimension(GOOD_RAW, GOOD_DIM, "user_id"),
        dimension_matches_rule(GOOD_RAW, GOOD_DIM, USER),
    ]
    assert [o.summary for o in outcomes if not o.passed] == []


def test_duplicate_raw_versions_fail_with_counts_and_ids() -> None:
    bad = raw_table([(U1, T[0], "EMEA", None), (U1, T[0], "EMEA", None), (U1, T[0], "EMEA", None)])
    outcome = raw_versions_unique(bad)
    assert not outcome.passed
    assert outcome.metadata["duplicate_versions"] == 1 and outcome.metadata["extra_rows"] == 2
    assert outcome.metadata["example_ids"].value == [U1]


def test_a_later_read_of_a_version_with_other_values_is_no_duplicate() -> None:
    """Rule 1 keeps a version's latest read; the append stores a re-read only when it differs,
    so the check must not fail on it (it did before re-reads were compared by value)."""
    reread = raw_table([(U1, T[0], "EMEA", None), (U1, T[0], "APAC", None)])
    assert raw_versions_unique(reread).passed


def test_ids_that_are_not_18_character_user_ids_fail() -> None:
    account_id = "001000000000001AAA"
    short_id = "005000000000001"
    bad = raw_table(
        [(U1, T[0], None, None), (account_id, T[0], None, None), (short_id, T[0], None, None)]
    )
    outcome = raw_ids_have_prefix(bad, "User", "005")
    assert not outcome.passed and outcome.metadata["invalid_ids"] == 2
    assert set(outcome.metadata["example_ids"].value) == {account_id, short_id}


def test_missing_tracked_field_fails_and_names_it() -> None:
    outcome = raw_tracked_fields_exist(
        GOOD_RAW.drop_columns(["audit_phase__c"]).schema, ["Division", "Audit_Phase__c"]
    )
    assert not outcome.passed and "audit_phase__c" in outcome.summary
    assert outcome.metadata["missing_fields"].value == ["audit_phase__c"]


def test_a_dropping_row_count_fails() -> None:
    outcome = raw_row_count_never_drops([10, 25, 20])
    assert not outcome.passed
    assert (outcome.metadata["highest_rows"], outcome.metadata["current_rows"]) == (25, 20)


def test_a_raw_user_missing_from_the_dimension_fails() -> None:
    raw = raw_table([(U1, T[0], "EMEA", None), (U3, T[0], "EMEA", None)])
    outcome = every_raw_record_in_dimension(raw, GOOD_DIM, "user_id")
    assert not outcome.passed and outcome.metadata["example_ids"].value == [U3]


def test_a_dimension_that_differs_from_the_rule_fails() -> None:
    wrong = dim_table(
        [
            ("a", U1, "EMEA", T[0], None, True),  # the APAC version is missing
            ("c", U2, "LATAM", T[0], None, True),  # wrong value
        ]
    )
    outcome = dimension_matches_rule(GOOD_RAW, wrong, USER)
    assert not outcome.passed
    assert outcome.metadata["versions_missing"] == 1
    assert outcome.metadata["versions_different"] == 2  # U1's row is now current; U2's division
    assert outcome.metadata["example_ids"].value == [U1, U2]


def test_the_rule_check_sees_a_missing_deletion_version() -> None:
    """Rule 7 in the production check: a deletion starts a version with is_deleted true."""
    account = resolve_settings("local").object("Account")
    a1 = "001000000000001AAA"
    base = {"name": "Acme", "industry": None, "billingcountry": None, "ownerid": U1}
    raw = pa.Table.from_pylist(
        [
            {"id": a1, "type": "Customer", "isdeleted": False, "systemmodstamp": T[0], **base},
            {"id": a1, "type": "Customer", "isdeleted": True, "systemmodstamp": T[1], **base},
        ]
    ).append_column("_extracted_at", pa.array([T[4], T[4]]))
    dim_row = {
        "scd_id": "x",
        "account_id": a1,
        "name": "Acme",
        "industry": None,
        "billing_country": None,
        "type": "Customer",
        "owner_id": U1,
        "is_deleted": False,
        "effective_from": T[0],
        "effective_to": None,
        "is_current": True,
    }
    outcome = dimension_matches_rule(raw, pa.Table.from_pylist([dim_row]), account)
    assert not outcome.passed and outcome.metadata["versions_missing"] == 1
    deleted = {**dim_row, "scd_id": "y", "is_deleted": True, "effective_from": T[1]}
    closed = {**dim_row, "effective_to": T[1], "is_current": False}
    assert dimension_matches_rule(raw, pa.Table.from_pylist([closed, deleted]), account).passed


def test_the_full_checks_read_by_record_group_give_the_outcome_of_one_read(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 1M records the full dimension checks held the whole raw table and dimension at once
    (past 1.5 GB); read by record group (each record's raw and dimension rows in the same one),
    the outcomes, counts and example ids are those of one read."""
    catalog = open_catalog(settings.catalog_properties())
    ids = [f"005{n:015d}" for n in range(40)]
    raw = raw_table([(i, T[0], "EMEA", None) for i in ids] + [(ids[3], T[1], "APAC", None)])
    dim = dim_table(
        [(f"s{n}", i, "EMEA", T[0], None, True) for n, i in enumerate(ids) if n not in (5, 9)]
    )
    raw_iceberg = ensure_table(catalog, "sf_raw_local.sf_user", raw.schema, TableLayout())
    append_rows(raw_iceberg, raw)
    dim_iceberg = ensure_table(catalog, "sf_curated_local.dim", dim.schema, TableLayout())
    replace_rows(dim_iceberg, dim)
    raw_iceberg = catalog.load_table("sf_raw_local.sf_user")
    dim_iceberg = catalog.load_table("sf_curated_local.dim")
    evaluations = dimension_checks(USER)
    whole = evaluate_by_record_group(USER, raw_iceberg, dim_iceberg, evaluations)
    monkeypatch.setattr(increments, "GROUP_ROWS", 7)
    assert record_groups(raw_iceberg) == 6
    grouped = evaluate_by_record_group(USER, raw_iceberg, dim_iceberg, evaluations)
    for name, outcome in whole.items():
        assert not outcome.passed
        assert grouped[name].summary == outcome.summary
        assert {k: v for k, v in grouped[name].metadata.items() if k != "example_ids"} == {
            k: v for k, v in outcome.metadata.items() if k != "example_ids"
        }
        assert sorted(grouped[name].metadata["example_ids"].value) == sorted(
            outcome.metadata["example_ids"].value
        )
    assert whole["every_raw_user_in_dimension"].metadata["missing_records"] == 2
    assert whole["dimension_matches_the_scd2_rule"].metadata["records_differing"] == 3
