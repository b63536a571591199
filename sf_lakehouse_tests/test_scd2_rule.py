"""The production rule check's SCD2 (sf_lakehouse.scd2_rule, column-wise over Arrow) against the
tests' own reading of rules 1-7 (scd2_reference, row by row), on random raw tables: duplicate
reads, re-reads with other values, NULLs, deletions and undeletes, any row order."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.defs.checks import dimension_matches_rule
from sf_lakehouse.scd2_rule import expected_dimension
from sf_lakehouse_tests import scd2_reference as reference

OBJECTS = resolve_settings("local")
USER, ACCOUNT = OBJECTS.object("User"), OBJECTS.object("Account")
BASE = dt.datetime(2026, 3, 1, 8)
IDS = ("005000000000001AAA", "005000000000002AAA", "005000000000003AAA")


def _raw_row(spec, draw) -> dict:
    row = {
        "id": draw(st.sampled_from(IDS)),
        "systemmodstamp": BASE + dt.timedelta(minutes=draw(st.integers(0, 6))),
    }
    for field in (*spec.track, *spec.carry):
        row[field.lower()] = draw(st.sampled_from([None, "A", "B"]))
    if spec.deletions:
        row["isdeleted"] = draw(st.sampled_from([None, False, True]))
    return row


@st.composite
def raw_tables(draw, spec):
    """Raw rows, shuffled; reads often share an extraction time (another run at the same
    instant: rule 1's tie-break by run id decides), and each read has its own run id."""
    rows = []
    for read in range(draw(st.integers(0, 14))):
        row = _raw_row(spec, draw)
        row["_extracted_at"] = BASE + dt.timedelta(hours=1, seconds=draw(st.integers(0, 3)))
        row["_run_id"] = f"run-{draw(st.sampled_from('abcdefghijklmno'))}{read:02d}"
        rows.append(row)
        if draw(st.booleans()):  # the same read stored twice
            rows.append(dict(row))
    return draw(st.permutations(rows))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_the_column_wise_rule_equals_the_reference(data) -> None:
    for spec in (USER, ACCOUNT):
        rows = data.draw(raw_tables(spec))
        expected = reference.expected_dimension(spec, rows)
        table = pa.Table.from_pylist(rows) if rows else None
        if table is None:
            continue
        assert expected_dimension(table, spec).to_pylist() == expected
        # The same rows in another table order: the same dimension (ties never go by order).
        reversed_rows = table.take(list(range(table.num_rows))[::-1])
        assert expected_dimension(reversed_rows, spec).to_pylist() == expected
        # The check itself passes on the reference's dimension and fails without a version.
        dimension = pa.Table.from_pylist([{"scd_id": str(i), **r} for i, r in enumerate(expected)])
        assert dimension_matches_rule(table, dimension, spec).passed
        if len(expected) > 1:
            assert not dimension_matches_rule(table, dimension.slice(1), spec).passed


def test_an_empty_raw_table_expects_an_empty_dimension() -> None:
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("systemmodstamp", pa.timestamp("us")),
            ("_extracted_at", pa.timestamp("us")),
        ]
    )
    assert expected_dimension(schema.empty_table(), USER).num_rows == 0
