"""Pure pieces of the incremental extraction (the cursor rule)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from sf_lakehouse.extraction import build_extraction_soql, extraction_start, only_new_versions
from sf_lakehouse.salesforce.types import FieldSpec

FIELDS = [FieldSpec("Id", "id"), FieldSpec("SystemModstamp", "datetime")]


def test_first_run_reads_everything_in_cursor_order() -> None:
    soql = build_extraction_soql("User", FIELDS, "SystemModstamp", None)
    assert soql == "SELECT Id, SystemModstamp FROM User ORDER BY SystemModstamp ASC, Id ASC"


def test_later_runs_reread_the_lookback_window_inclusively() -> None:
    """Guards against `>` at the boundary, which loses a record committed in the same second."""
    since = extraction_start(dt.datetime(2026, 3, 1, 8, 0, 0, 500000), lookback_seconds=300)
    assert since == dt.datetime(2026, 3, 1, 7, 55, 0, 500000)
    soql = build_extraction_soql("User", FIELDS, "SystemModstamp", since)
    assert "WHERE SystemModstamp >= 2026-03-01T07:55:00.500Z" in soql


def test_stored_versions_and_repeats_within_a_batch_are_dropped() -> None:
    t1, t2 = dt.datetime(2026, 3, 1, 8), dt.datetime(2026, 3, 1, 9)
    batch = pa.table({"id": ["a", "a", "b", "b"], "systemmodstamp": [t1, t2, t1, t1]})
    kept = only_new_versions(batch, stored={("a", t1)})
    assert kept.to_pylist() == [
        {"id": "a", "systemmodstamp": t2},
        {"id": "b", "systemmodstamp": t1},
    ]
