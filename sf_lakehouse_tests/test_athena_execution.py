"""The SQL production runs on Athena, executed (not only parsed): every model compiled for the
`development` target, transpiled from Trino to DuckDB by sqlglot, and run the way dbt-athena runs
it (a CTAS for a first build or a full refresh; the incremental SQL into a temporary table and an
Iceberg `MERGE` on `scd_id` otherwise; see `athena_on_duckdb`). After every run the dimension
equals the tests' reference (`scd2_reference`) over the whole raw table (rule 8). The other SQL
only Athena runs is executed the same way: `verify`'s queries (through verify's own code, as they
are sent to Athena) and the as_of macro (the compiled analysis)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.verify import object_checks
from sf_lakehouse_tests import scd2_reference as reference
from sf_lakehouse_tests.athena_on_duckdb import (
    AthenaOnDuckDB,
    AthenaTranspiledEngine,
    CompiledProject,
    to_duckdb,
)
from sf_lakehouse_tests.rule8_machine import (
    BY_NAME,
    FIRST_RUN,
    Rule8Machine,
    run_machine,
    versions_of,
)
from sf_lakehouse_tests.test_scd2_dbt import SPECS, random_schema

DEFAULT_EXAMPLES, NIGHTLY_EXAMPLES = 20, 300


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> CompiledProject:
    """The project compiled for Athena twice (first build, incremental build): ~15 s."""
    return CompiledProject.compile(tmp_path_factory.mktemp("athena"))


class AthenaBackend:
    """rule8_machine's Backend on the Athena SQL."""

    def __init__(self, project: CompiledProject, home: Path) -> None:
        self.athena = AthenaOnDuckDB(project, home)
        self.stale: set[str] = set()

    def append(self, spec: ObjectSpec, rows: list[dict[str, Any]]) -> None:
        self.athena.append_raw(spec, pa.Table.from_pylist(rows, schema=random_schema(spec)))

    def build(self, spec: ObjectSpec, committed_at: dt.datetime, *, full: bool) -> str:
        # Dagster's dbt asset asks for a full refresh when the dimension was built by other
        # model code (defs/dbt.py, stale_dimensions): the model change on Athena.
        full = full or spec.dimension_model in self.stale
        self.stale.discard(spec.dimension_model)
        return self.athena.build(spec, committed_at, full=full)

    def model_changed(self, spec: ObjectSpec) -> None:
        self.stale.add(spec.dimension_model)

    def raw(self, spec: ObjectSpec) -> list[dict[str, Any]]:
        return self.athena.raw(spec)

    def dimension(self, spec: ObjectSpec) -> list[dict[str, Any]]:
        return self.athena.dimension(spec)


def athena_machine(project: CompiledProject, home: Path) -> type[Rule8Machine]:
    class AthenaRule8(Rule8Machine):
        records = 10

        @staticmethod
        def make_backend() -> AthenaBackend:
            return AthenaBackend(project, home)

    return AthenaRule8


def test_the_athena_merge_equals_a_rebuild_after_every_run(
    project: CompiledProject, tmp_path: Path
) -> None:
    """Fixed runs of every object: late rows, a replay, an extraction that committed after the
    last build, a tie of extraction times; each incremental build is a real merge."""
    for spec in SPECS:
        athena = AthenaOnDuckDB(project, tmp_path / spec.name)
        schema = random_schema(spec)
        versions = versions_of(spec, seed=11, records=12)
        batches = [versions[:20], versions[20:40], versions[40:]]
        stored: list[dict] = []
        clock = committed = FIRST_RUN
        kinds = []
        for number, batch in enumerate(batches):
            reads = [v | {"_extracted_at": clock, "_run_id": f"run-{number}"} for v in batch]
            if number == 1:  # an extraction that started before the first build committed
                lagging = committed - dt.timedelta(minutes=30)
                reads = [r | {"_extracted_at": lagging} for r in reads]
            if number == 2:  # a replay of stored reads, and a tie with other values
                reads += [r | {"_extracted_at": clock, "_run_id": "run-2"} for r in stored[:5]]
                # Two writers at the same instant: the greater run id wins (rule 1).
                reads.append(reads[0] | {"_run_id": "run-2~b", raw_track(spec): "tie-wins"})
                reads.append(reads[1] | {"_run_id": "run!2", raw_track(spec): "tie-loses"})
            athena.append_raw(spec, pa.Table.from_pylist(reads, schema=schema))
            stored += reads
            committed = clock + dt.timedelta(minutes=5)
            kinds.append(athena.build(spec, committed))
            built = athena.dimension(spec)
            assert reference.comparable(spec, built) == reference.expected_dimension(
                spec, stored
            ), (spec.api_name, number)
            clock += dt.timedelta(hours=20)
        assert kinds == ["full", "incremental", "incremental"]
        tracked = [r[spec.tracked_columns[0]] for r in athena.dimension(spec)]
        assert "tie-wins" in tracked and "tie-loses" not in tracked


def raw_track(spec: ObjectSpec) -> str:
    return spec.track[0].lower()


def test_the_athena_rule_8_state_machine(project: CompiledProject, tmp_path: Path) -> None:
    run_machine(athena_machine(project, tmp_path), examples=DEFAULT_EXAMPLES, steps=8)


@pytest.mark.nightly
def test_the_athena_rule_8_state_machine_nightly(project: CompiledProject, tmp_path: Path) -> None:
    run_machine(athena_machine(project, tmp_path), examples=NIGHTLY_EXAMPLES, steps=12)


# --- verify's queries and the as_of macro, as Athena gets them --------------------------------


@pytest.fixture(scope="module")
def built(project: CompiledProject, tmp_path_factory: pytest.TempPathFactory):
    """Every object's random history, built on the Athena SQL (first build + one merge)."""
    athena = AthenaOnDuckDB(project, tmp_path_factory.mktemp("verify"))
    stored = {}
    for spec in SPECS:
        versions = versions_of(spec, seed=3, records=15)
        half = len(versions) // 2
        reads = [
            [v | {"_extracted_at": FIRST_RUN, "_run_id": "run-1"} for v in versions[:half]],
            [
                v | {"_extracted_at": FIRST_RUN + dt.timedelta(days=1), "_run_id": "run-2"}
                for v in versions[half:]
            ],
        ]
        for number, batch in enumerate(reads):
            athena.append_raw(spec, pa.Table.from_pylist(batch, schema=random_schema(spec)))
            athena.build(spec, FIRST_RUN + dt.timedelta(days=number, minutes=5))
        stored[spec.api_name] = reads[0] + reads[1]
    return athena, stored


def test_verify_sends_athena_queries_that_count_what_the_rules_give(built) -> None:
    athena, stored = built
    engine = AthenaTranspiledEngine(athena)
    for spec in SPECS:
        rows = stored[spec.api_name]
        expected = reference.expected_dimension(spec, rows)
        results = {name: check() for name, check in object_checks(athena.settings, engine, spec)}
        assert all(r.passed for r in results.values()), results
        summary = results[f"{spec.name}_summary"].detail
        current = sum(r["is_current"] for r in expected)
        deleted = (
            sum(r["is_current"] and r["is_deleted"] for r in expected) if spec.deletions else None
        )
        assert summary == (
            f"object={spec.api_name}, raw_versions={len(rows)}, "
            f"records={len({r['id'] for r in rows})}, scd_rows={len(expected)}, "
            f"current_rows={current}, historical_rows={len(expected) - current}, "
            f"deleted_now={deleted}"
        )
        assert f"{len(rows):,} rows" in results[f"{spec.name}_raw_table_exists"].detail
    # The queries named the Athena databases (sf_*_development), not the local ones.
    assert all("_development" in sql for sql in engine.sent)


def test_verify_on_athena_fails_a_second_current_row_and_an_overlap(
    project: CompiledProject, tmp_path: Path
) -> None:
    spec = BY_NAME["User"]
    athena = AthenaOnDuckDB(project, tmp_path)
    versions = versions_of(spec, seed=5, records=6)
    reads = [v | {"_extracted_at": FIRST_RUN, "_run_id": "run-1"} for v in versions]
    athena.append_raw(spec, pa.Table.from_pylist(reads, schema=random_schema(spec)))
    athena.build(spec, FIRST_RUN)
    dimension = athena.table(spec.dimension_asset_key)
    # One record's first version made current again: two current rows, and it overlaps.
    athena.con.execute(
        f"update {dimension} set effective_to = null, is_current = true where scd_id = ("
        f"select scd_id from {dimension} where not is_current order by scd_id limit 1)"
    )
    checks = dict(object_checks(athena.settings, AthenaTranspiledEngine(athena), spec))
    one_current = checks[f"{spec.name}_scd_one_current_row"]()
    overlaps = checks[f"{spec.name}_scd_no_overlapping_intervals"]()
    assert not one_current.passed and one_current.detail.startswith("1 User records")
    assert not overlaps.passed and overlaps.detail.startswith("1 rows")


def test_the_as_of_macro_on_athena_gives_each_records_version_in_effect(built) -> None:
    athena, stored = built
    spec = BY_NAME["User"]
    analysis = athena.project.analyses["user_division_as_of"]
    literal = "timestamp '2026-03-02 00:00:00'"
    assert literal in analysis
    expected_dim = reference.expected_dimension(spec, stored["User"])
    boundaries = sorted({v["effective_from"] for v in expected_dim})
    instants = {boundaries[0] - dt.timedelta(days=1), boundaries[-1] + dt.timedelta(days=1)}
    for boundary in boundaries[:: max(1, len(boundaries) // 10)]:
        instants |= {boundary, boundary - dt.timedelta(microseconds=1)}
    instants.add(dt.datetime(2026, 3, 2))
    for instant in sorted(instants):
        sql = analysis.replace(literal, f"timestamp '{instant.isoformat(sep=' ')}'")
        got = {r["user_id"]: r["effective_from"] for r in athena.rows(to_duckdb(sql))}
        assert got == reference.effective_at(spec, expected_dim, instant), instant
    assert re.search(r"from\s+\(\s*select \*", analysis)  # the macro's subquery is there
