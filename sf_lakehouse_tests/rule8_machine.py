"""A stateful property (hypothesis) of rule 8: whatever sequence of runs the raw table sees
(appends of new versions in any order, so late rows; replays of versions already stored;
re-reads with other values; extractions that committed after the last build began; reads tied
on `_extracted_at`; full refreshes; a change of the model's code), the dimension after every
build equals the tests' reference (`scd2_reference`) over the whole raw table, and so does the
production check's column-wise rule (`sf_lakehouse.scd2_rule`), ties included.

The machine drives a `Backend`: the local path (dbt-duckdb and the lakehouse plugin, real
Iceberg tables) or the Athena path (`athena_on_duckdb`: the compiled Athena SQL and dbt-athena's
merge, transpiled to DuckDB). Profiles: `DEFAULT_EXAMPLES` in `make test`, `NIGHTLY_EXAMPLES`
(`pytest -m nightly`, `make nightly`).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.config.objects import raw_column
from sf_lakehouse.scd2_rule import expected_dimension as production_rule
from sf_lakehouse_tests import scd2_reference as reference
from sf_lakehouse_tests.test_scd2_dbt import SPECS, random_history, random_schema, random_value

BY_NAME = {spec.api_name: spec for spec in SPECS}
FIRST_RUN = dt.datetime(2026, 3, 5, 6)
BUILD_AFTER = dt.timedelta(minutes=5)  # a run's build commits this long after its extraction
# An extraction that started before the last build and committed after it (rule 8's lookback on
# Athena is one hour; the DuckDB plugin reads the raw table's own snapshots).
LAGGING = dt.timedelta(minutes=30)
READ_COLUMNS = ("_extracted_at", "_run_id")


class Backend(Protocol):
    def append(self, spec: ObjectSpec, rows: list[dict[str, Any]]) -> None: ...
    def build(self, spec: ObjectSpec, committed_at: dt.datetime, *, full: bool) -> str: ...
    def model_changed(self, spec: ObjectSpec) -> None: ...
    def raw(self, spec: ObjectSpec) -> list[dict[str, Any]]: ...
    def dimension(self, spec: ObjectSpec) -> list[dict[str, Any]]: ...


def versions_of(spec: ObjectSpec, seed: int, records: int) -> list[dict[str, Any]]:
    """Record versions (no read columns), one per (id, systemmodstamp), in a random order."""
    seen: dict[tuple, dict[str, Any]] = {}
    for row in random_history(spec, seed, records=records):
        seen.setdefault(
            (row["id"], row["systemmodstamp"]),
            {k: v for k, v in row.items() if k not in READ_COLUMNS},
        )
    versions = list(seen.values())
    random.Random(seed).shuffle(versions)
    return versions


class Rule8Machine(RuleBasedStateMachine):
    """Subclasses set `make_backend` and `records`."""

    make_backend: Callable[[], Backend]
    records = 8

    def __init__(self) -> None:
        super().__init__()
        self.backend = type(self).make_backend()
        self.spec: ObjectSpec = SPECS[0]
        self.pool: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []  # every read appended (the backend may drop some)
        self.clock = FIRST_RUN
        self.last_commit: dt.datetime | None = None
        self.runs = 0
        self.schema: pa.Schema | None = None

    @initialize(api_name=st.sampled_from(sorted(BY_NAME)), seed=st.integers(0, 10_000))
    def start(self, api_name: str, seed: int) -> None:
        self.spec = BY_NAME[api_name]
        self.schema = random_schema(self.spec)
        self.pool = versions_of(self.spec, seed, self.records)
        self.rng = random.Random(seed)

    # --- runs --------------------------------------------------------------------------------

    def _run(self, rows: list[dict[str, Any]], *, full: bool = False) -> None:
        """Append the reads (when any) and build, as one pipeline run does."""
        if rows:
            self.backend.append(self.spec, rows)
            self.stored += rows
        if self.last_commit is None and not self.stored:
            return  # nothing was ever extracted: no table to build yet
        self.last_commit = self.clock + BUILD_AFTER
        self.backend.build(self.spec, self.last_commit, full=full)
        self.clock += dt.timedelta(days=1)
        self.runs += 1

    def _read(self, versions: list[dict[str, Any]], at: dt.datetime, run_id: str) -> list[dict]:
        return [v | {"_extracted_at": at, "_run_id": run_id} for v in versions]

    def _changed(self, version: dict[str, Any], columns: list[str]) -> dict[str, Any]:
        return version | {c: random_value(self.rng, c) for c in columns}

    @precondition(lambda self: self.pool)
    @rule(count=st.integers(1, 6))
    def append_new_versions(self, count: int) -> None:
        """New versions, in the pool's random order: older versions of a record often arrive
        after newer ones (late rows)."""
        taken, self.pool = self.pool[:count], self.pool[count:]
        self._run(self._read(taken, self.clock, f"run-{self.runs:03d}"))

    @precondition(lambda self: self.pool and self.last_commit is not None)
    @rule(count=st.integers(1, 4))
    def append_an_extraction_that_committed_after_the_last_build(self, count: int) -> None:
        taken, self.pool = self.pool[:count], self.pool[count:]
        assert self.last_commit is not None
        at = self.last_commit - LAGGING
        self._run(self._read(taken, at, f"run-{self.runs:03d}-lagging"))

    @precondition(lambda self: self.stored)
    @rule(data=st.data())
    def replay_stored_versions(self, data: st.DataObject) -> None:
        """The lookback reads stored versions again, unchanged."""
        again = data.draw(st.lists(st.sampled_from(self.stored), min_size=1, max_size=4))
        versions = [{k: v for k, v in r.items() if k not in READ_COLUMNS} for r in again]
        self._run(self._read(versions, self.clock, f"run-{self.runs:03d}"))

    @precondition(lambda self: self.stored)
    @rule(data=st.data())
    def re_read_stored_versions_with_other_values(self, data: st.DataObject) -> None:
        again = data.draw(st.lists(st.sampled_from(self.stored), min_size=1, max_size=3))
        carried = [raw_column(f) for f in self.spec.carry]
        versions = [
            self._changed({k: v for k, v in r.items() if k not in READ_COLUMNS}, carried)
            for r in again
        ]
        self._run(self._read(versions, self.clock, f"run-{self.runs:03d}"))

    @precondition(lambda self: self.stored)
    @rule(data=st.data(), winner_first=st.booleans())
    def two_reads_at_the_same_extraction_time(
        self, data: st.DataObject, winner_first: bool
    ) -> None:
        """A tie of `_extracted_at` (two writers at the same instant) with other values: the
        greater run id wins (docs/design.md, rule 1), whichever arrives first."""
        read = data.draw(st.sampled_from(self.stored))
        version = {k: v for k, v in read.items() if k not in READ_COLUMNS}
        columns = [raw_column(f) for f in (*self.spec.track, *self.spec.carry)]
        run_id = f"run-{self.runs:03d}"
        reads = [
            self._changed(version, columns) | {"_extracted_at": self.clock, "_run_id": run_id},
            self._changed(version, columns)
            | {"_extracted_at": self.clock, "_run_id": f"{run_id}~other-writer"},
        ]
        self._run(reads[::-1] if winner_first else reads)

    @precondition(lambda self: self.last_commit is not None)
    @rule()
    def full_refresh(self) -> None:
        self._run([], full=True)

    @precondition(lambda self: self.last_commit is not None)
    @rule()
    def model_code_changes(self) -> None:
        self.backend.model_changed(self.spec)
        self._run([])

    @precondition(lambda self: self.last_commit is not None)
    @rule()
    def a_quiet_run(self) -> None:
        self._run([])

    # --- after every step -------------------------------------------------------------------

    @invariant()
    def the_dimension_equals_a_rebuild_from_the_raw_table(self) -> None:
        if self.last_commit is None:
            return
        raw = self.backend.raw(self.spec)
        expected = reference.expected_dimension(self.spec, raw)
        built = self.backend.dimension(self.spec)
        assert reference.comparable(self.spec, built) == expected
        assert len({r["scd_id"] for r in built}) == len(built)
        # The production check reads rule 1 (its tie-break included) the same way.
        table = pa.Table.from_pylist(raw, schema=self.schema)
        assert production_rule(table, self.spec).to_pylist() == expected


def run_machine(machine: type[Rule8Machine], examples: int, steps: int) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
