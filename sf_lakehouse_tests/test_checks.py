"""Each asset check fails on crafted bad data, says why with counts and example ids, and
passes on good data."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from sf_lakehouse.defs.checks import (
    dimension_matches_rule,
    effective_to_after_effective_from,
    every_raw_user_in_dimension,
    intervals_contiguous,
    one_current_row_per_user,
    raw_ids_are_user_ids,
    raw_row_count_never_drops,
    raw_tracked_fields_exist,
    raw_versions_unique,
)
from sf_lakehouse_tests.tables import DIMENSION_SCHEMA, RAW_SCHEMA

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
        raw_ids_are_user_ids(GOOD_RAW),
        raw_tracked_fields_exist(GOOD_RAW.schema, ["Division", "Audit_Phase__c"]),
        raw_row_count_never_drops([1, 2, 3]),
        one_current_row_per_user(GOOD_DIM),
        intervals_contiguous(GOOD_DIM),
        effective_to_after_effective_from(GOOD_DIM),
        every_raw_user_in_dimension(GOOD_RAW, GOOD_DIM),
        dimension_matches_rule(GOOD_RAW, GOOD_DIM),
    ]
    assert [o.summary for o in outcomes if not o.passed] == []


def test_duplicate_raw_versions_fail_with_counts_and_ids() -> None:
    bad = raw_table([(U1, T[0], "EMEA", None), (U1, T[0], "EMEA", None), (U1, T[0], "EMEA", None)])
    outcome = raw_versions_unique(bad)
    assert not outcome.passed
    assert outcome.metadata["duplicate_versions"] == 1 and outcome.metadata["extra_rows"] == 2
    assert outcome.metadata["example_ids"].value == [U1]


def test_ids_that_are_not_18_character_user_ids_fail() -> None:
    account_id = "001000000000001AAA"
    short_id = "005000000000001"
    bad = raw_table(
        [(U1, T[0], None, None), (account_id, T[0], None, None), (short_id, T[0], None, None)]
    )
    outcome = raw_ids_are_user_ids(bad)
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


def test_two_current_rows_and_none_fail() -> None:
    bad = dim_table(
        [
            ("a", U1, "EMEA", T[0], None, True),
            ("b", U1, "APAC", T[1], None, True),
            ("c", U2, None, T[0], T[1], False),
        ]
    )
    outcome = one_current_row_per_user(bad)
    assert not outcome.passed and outcome.metadata["users_failing"] == 2
    assert outcome.metadata["example_user_ids"].value == [U1, U2]


def test_overlaps_and_gaps_fail_and_are_counted() -> None:
    bad = dim_table(
        [
            ("a", U1, "EMEA", T[0], T[2], False),  # overlaps the next one
            ("b", U1, "APAC", T[1], None, True),
            ("c", U2, "EMEA", T[0], T[1], False),  # gap until T[3]
            ("d", U2, "APAC", T[3], None, True),
        ]
    )
    outcome = intervals_contiguous(bad)
    assert not outcome.passed
    assert (outcome.metadata["overlaps"], outcome.metadata["gaps"]) == (1, 1)


def test_rows_ending_before_they_start_fail() -> None:
    bad = dim_table([("a", U1, "EMEA", T[2], T[1], False), ("b", U1, "EMEA", T[1], None, True)])
    outcome = effective_to_after_effective_from(bad)
    assert not outcome.passed and outcome.metadata["example_user_ids"].value == [U1]


def test_a_raw_user_missing_from_the_dimension_fails() -> None:
    raw = raw_table([(U1, T[0], "EMEA", None), (U3, T[0], "EMEA", None)])
    outcome = every_raw_user_in_dimension(raw, GOOD_DIM)
    assert not outcome.passed and outcome.metadata["example_user_ids"].value == [U3]


def test_a_dimension_that_differs_from_the_rule_fails() -> None:
    wrong = dim_table(
        [
            ("a", U1, "EMEA", T[0], None, True),  # the APAC version is missing
            ("c", U2, "LATAM", T[0], None, True),  # wrong value
        ]
    )
    outcome = dimension_matches_rule(GOOD_RAW, wrong)
    assert not outcome.passed
    assert outcome.metadata["versions_missing"] == 1
    assert outcome.metadata["versions_different"] == 2  # U1's row is now current; U2's division
    assert outcome.metadata["example_user_ids"].value == [U1, U2]
