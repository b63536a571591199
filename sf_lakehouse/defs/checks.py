"""Asset checks beyond the dbt tests, per object: is the raw table fit to build from, and does
the dimension hold the SCD2 rule? Each evaluation is a pure function over Arrow tables (so tests
can feed it crafted bad data); the Dagster checks only load the tables and report.

A run checks what it changed: the raw checks look at the records the run appended, the
dimension checks at the records its build rewrote (all of each record's rows, so the check is
exact for them), so a check's cost follows the change, not the history. The full variant reads
whole tables: after a full rebuild, and on demand (the job `salesforce_full_checks`, or any run
tagged `sf_lakehouse/checks: full`).

The dbt tests of each dimension check its invariants (unique scd_id, one current row per record,
contiguous intervals, effective_to after effective_from); these checks add what SQL on the
dimension alone cannot see: the raw table's health, and the dimension against the raw rows.
The raw checks are blocking: in a run that also builds the dimension, a failed raw check stops
dbt before it reads bad data.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)
from pyiceberg.table import Table

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.extraction.type_changes import TypeChange, recorded_changes
from sf_lakehouse.lakehouse.increments import (
    last_build_keys,
    latest_append_ids,
    record_groups,
    rows_in_group,
    rows_of,
)
from sf_lakehouse.lakehouse.resource import LakehouseResource
from sf_lakehouse.lakehouse.tables import WIDEN_OPERATION
from sf_lakehouse.lakehouse.versions import is_read_column
from sf_lakehouse.scd2_rule import (
    comparable,
    duplicate_versions,
    expected_dimension,
    raw_columns_read,
    versions_differing,
)

EXAMPLES = 5
TYPE_CHANGE_CHECK = "raw_column_types_unchanged"
FULL_CHECKS_TAG = "sf_lakehouse/checks"
FULL_CHECKS_JOB_NAME = "salesforce_full_checks"


@dataclass(frozen=True)
class Outcome:
    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # Builds the outcome from its metadata's counts and examples: how outcomes of disjoint
    # record groups become one (`combine`).
    render: Callable[..., "Outcome"] | None = field(default=None, compare=False, repr=False)


def _query(sql: str, parameters: dict[str, Any] | None = None, **tables: pa.Table) -> list[tuple]:
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    return con.execute(sql, parameters or {}).fetchall()


def _examples(values: Sequence[Any]) -> MetadataValue:
    return MetadataValue.json([str(v) for v in values[:EXAMPLES]])


# --- raw table -------------------------------------------------------------------------------


def raw_versions_unique(raw: pa.Table, repair: str = "sf-lakehouse repair") -> Outcome:
    """No record version (`id`, `systemmodstamp`) is stored twice with the same field values. A
    later read with other values may follow an earlier one (rule 1 keeps the latest); `raw` holds
    the version's fields; the read's own columns (`_extracted_at`, `_run_id`) are not compared."""
    fields = ", ".join(f'"{name}"' for name in raw.column_names if not is_read_column(name))
    rows = _query(
        f"select id, systemmodstamp, count(*) - count(distinct row({fields})) as n from raw "
        "group by 1, 2 having n > 0 order by n desc, id",
        raw=raw,
    )
    extra = sum(n for _, _, n in rows)
    return Outcome(
        passed=not rows,
        summary=f"{len(rows)} (id, systemmodstamp) versions stored more than once "
        f"({extra} extra rows); remove them with `{repair}`"
        if rows
        else "every (id, systemmodstamp) version is stored once",
        metadata={
            "duplicate_versions": len(rows),
            "extra_rows": extra,
            "example_ids": _examples([r[0] for r in rows]),
        },
    )


def raw_ids_have_prefix(raw: pa.Table, object_name: str, prefix: str) -> Outcome:
    rows = _query(
        "select distinct id from raw where id is null or length(id) <> 18 "
        "or not starts_with(id, $prefix) or not regexp_full_match(id, '[0-9A-Za-z]+') "
        "order by id",
        {"prefix": prefix},
        raw=raw.select(["id"]),
    )
    bad = [r[0] for r in rows]
    return Outcome(
        passed=not bad,
        summary=f"{len(bad)} ids are not 18-character {object_name} ids (prefix {prefix})"
        if bad
        else f"every id is an 18-character {object_name} id",
        metadata={"invalid_ids": len(bad), "example_ids": _examples(bad)},
    )


def raw_tracked_fields_exist(raw_schema: pa.Schema, tracked_fields: Sequence[str]) -> Outcome:
    wanted = [f.lower() for f in tracked_fields]
    missing = [f for f in wanted if f not in raw_schema.names]
    return Outcome(
        passed=not missing,
        summary=f"tracked fields missing from the raw table: {', '.join(missing)}"
        if missing
        else f"tracked fields present: {', '.join(wanted)}",
        metadata={
            "missing_fields": MetadataValue.json(missing),
            "tracked_fields": MetadataValue.json(wanted),
        },
    )


def raw_column_types_unchanged(changes: Sequence[TypeChange]) -> Outcome:
    """Fails while a field's type change (recorded by the run that met it) is not acknowledged:
    a change of meaning the operator must look at, not one warning lost in a log."""
    pending = [c for c in changes if c.acknowledged_at is None]
    metadata = {
        "pending": MetadataValue.json([c.describe() for c in pending]),
        "acknowledged": MetadataValue.json(
            [
                f"{c.field} ({c.old_type} -> {c.new_type}) at {c.acknowledged_at}"
                for c in changes
                if c.acknowledged_at is not None
            ]
        ),
    }
    if not pending:
        return Outcome(True, "No unacknowledged type change of a raw column.", metadata)
    first = pending[0].describe()
    more = f" (and {len(pending) - 1} more)" if len(pending) > 1 else ""
    return Outcome(False, f"{first}{more}", metadata)


def raw_row_count_never_drops(row_counts: Sequence[int]) -> Outcome:
    """`row_counts`: total rows of each snapshot, oldest first (the last is the current one)."""
    if not row_counts:
        return Outcome(True, "the table has no snapshots yet", {"current_rows": 0})
    current = row_counts[-1]
    highest = max(row_counts)
    return Outcome(
        passed=current >= highest,
        summary=f"row count dropped from {highest} to {current}"
        if current < highest
        else f"row count {current} is the highest so far",
        metadata={"current_rows": current, "highest_rows": highest, "snapshots": len(row_counts)},
    )


# --- dimension against the raw table -------------------------------------------------------------


def every_raw_record_in_dimension(raw: pa.Table, dim: pa.Table, key_column: str) -> Outcome:
    rows = _query(
        f'select distinct r.id from raw r anti join dim d on r.id = d."{key_column}" order by r.id',
        raw=raw.select(["id"]),
        dim=dim.select([key_column]),
    )
    missing = [r[0] for r in rows]
    return _missing_records(missing_records=len(missing), example_ids=missing)


def _missing_records(missing_records: int, example_ids: Sequence[Any]) -> Outcome:
    return Outcome(
        passed=not missing_records,
        summary=f"{missing_records} records of the raw table are missing from the dimension"
        if missing_records
        else "every record of the raw table is in the dimension",
        metadata={"missing_records": missing_records, "example_ids": _examples(example_ids)},
        render=_missing_records,
    )


def dimension_matches_rule(raw: pa.Table, dim: pa.Table, spec: ObjectSpec) -> Outcome:
    expected = expected_dimension(raw, spec)
    actual = comparable(dim, spec)
    records, missing, unexpected, different = versions_differing(expected, actual, spec)
    return _rule_outcome(
        records_differing=len(records),
        duplicate_versions=duplicate_versions(actual, spec),
        expected_rows=expected.num_rows,
        actual_rows=dim.num_rows,
        versions_missing=missing,
        versions_unexpected=unexpected,
        versions_different=different,
        example_ids=records,
    )


def _rule_outcome(
    records_differing: int,
    duplicate_versions: int,
    expected_rows: int,
    actual_rows: int,
    versions_missing: int,
    versions_unexpected: int,
    versions_different: int,
    example_ids: Sequence[Any],
) -> Outcome:
    passed = not records_differing and duplicate_versions == 0
    return Outcome(
        passed=passed,
        summary="the dimension equals the SCD2 rule recomputed from the raw table"
        if passed
        else f"{records_differing} records differ from the SCD2 rule: {versions_missing} versions "
        f"missing, {versions_unexpected} unexpected, {versions_different} with other values"
        + (f", {duplicate_versions} versions stored twice" if duplicate_versions else ""),
        metadata={
            "expected_rows": expected_rows,
            "actual_rows": actual_rows,
            "records_differing": records_differing,
            "duplicate_versions": duplicate_versions,
            "versions_missing": versions_missing,
            "versions_unexpected": versions_unexpected,
            "versions_different": versions_different,
            "example_ids": _examples(example_ids),
        },
        render=_rule_outcome,
    )


def combine(outcomes: Sequence[Outcome]) -> Outcome:
    """One outcome from the outcomes of disjoint record groups: counts summed, examples
    joined, rendered like one evaluation of the whole."""
    counts: dict[str, Any] = {}
    examples: list[Any] = []
    for outcome in outcomes:
        for name, value in outcome.metadata.items():
            if name == "example_ids":
                examples.extend(value.value)
            else:
                counts[name] = counts.get(name, 0) + value
    render = outcomes[0].render
    if render is None:
        raise ValueError("these outcomes cannot be combined: they have no render")
    return render(**counts, example_ids=examples)


# --- Dagster checks --------------------------------------------------------------------------


def _snapshot_row_counts(table: Table) -> list[int]:
    counts = []
    for snapshot in sorted(table.snapshots(), key=lambda s: s.timestamp_ms):
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get("sf-lakehouse-operation") in ("repair-duplicates", WIDEN_OPERATION):
            # `sf-lakehouse repair` removed duplicate rows, or a widened column rewrote every
            # row (a delete, then an append): count from here
            counts = []
        counts.append(int(summary.get("total-records", 0)))
    return counts


RawCheck = Callable[[Table, "set[str] | None"], Outcome]
DimensionCheck = Callable[[pa.Table, pa.Table], Outcome]


def _raw_rows(table: Table, ids: set[str] | None, columns: tuple[str, ...]) -> pa.Table:
    """The given records' rows (all of them), or the whole table when `ids` is None."""
    if ids is None:
        return table.scan(selected_fields=columns).to_arrow()
    return rows_of(table, "id", ids, columns=columns)


def version_columns(table: Table) -> tuple[str, ...]:
    """The raw table's record fields, without the columns about each read."""
    return tuple(c for c in table.schema().column_names if not is_read_column(c))


def raw_checks(spec: ObjectSpec) -> dict[str, tuple[str, RawCheck]]:
    """Check name -> (description, evaluation over the table and the records to look at)."""
    return {
        "raw_versions_are_unique": (
            "No (id, systemmodstamp) version is stored twice with the same values.",
            lambda t, ids: raw_versions_unique(
                _raw_rows(t, ids, version_columns(t)),
                repair=f"sf-lakehouse repair --object {spec.api_name}",
            ),
        ),
        f"raw_ids_are_18_character_{spec.name}_ids": (
            f"Every id is an 18-character Salesforce {spec.api_name} id (prefix {spec.id_prefix}).",
            lambda t, ids: raw_ids_have_prefix(
                _raw_rows(t, ids, ("id",)), spec.api_name, spec.id_prefix
            ),
        ),
        "raw_tracked_fields_exist": (
            "The fields the dimension tracks are columns of the raw table.",
            lambda t, ids: raw_tracked_fields_exist(t.schema().as_arrow(), spec.track),
        ),
        TYPE_CHANGE_CHECK: (
            "No field changed type in the org without the operator acknowledging it "
            "(sf-lakehouse acknowledge-type-change).",
            lambda t, ids: raw_column_types_unchanged(recorded_changes(t)),
        ),
        "raw_row_count_never_drops": (
            "The append-only raw table never loses rows between snapshots.",
            lambda t, ids: raw_row_count_never_drops(_snapshot_row_counts(t)),
        ),
    }


def dimension_checks(spec: ObjectSpec) -> dict[str, tuple[str, DimensionCheck]]:
    """Check name -> (description, evaluation) of one object's dimension against its raw table."""
    return {
        f"every_raw_{spec.name}_in_dimension": (
            f"Every {spec.api_name} record of the raw table has history in the dimension.",
            lambda raw, dim: every_raw_record_in_dimension(raw, dim, spec.key_column),
        ),
        "dimension_matches_the_scd2_rule": (
            "The dimension equals the SCD2 rule (rules 1-7) recomputed from the raw table "
            "(column-wise over Arrow, independently of the dbt SQL).",
            lambda raw, dim: dimension_matches_rule(raw, dim, spec),
        ),
    }


def wants_full_checks(context: AssetCheckExecutionContext) -> bool:
    return context.run.tags.get(FULL_CHECKS_TAG) == "full"


def build_checks(spec: ObjectSpec) -> list[AssetChecksDefinition]:
    """Two check steps per object (raw, dimension), each reading its tables once and reporting
    every check separately; fewer steps keep a run short, and each check still passes or fails
    alone."""
    raw_key = AssetKey(list(spec.raw_asset_key))
    dim_key = AssetKey(list(spec.dimension_asset_key))
    raw_evaluations = raw_checks(spec)
    dimension_evaluations = dimension_checks(spec)

    @multi_asset_check(
        name=f"sf_{spec.name}_raw_checks",
        specs=[
            # A type change does not stop the build: the dimension follows the org.
            AssetCheckSpec(
                name, asset=raw_key, description=description, blocking=name != TYPE_CHANGE_CHECK
            )
            for name, (description, _) in raw_evaluations.items()
        ],
    )
    def raw_table_checks(
        context: AssetCheckExecutionContext, lakehouse: LakehouseResource
    ) -> Iterator[AssetCheckResult]:
        table = lakehouse.require_table(raw_key.path)
        ids = None if wants_full_checks(context) else latest_append_ids(table)
        scope = _scope(ids)
        for name, (_, evaluate) in raw_evaluations.items():
            yield _result(evaluate(table, ids), name, raw_key, scope)

    @multi_asset_check(
        name=f"sf_{spec.name}_dimension_checks",
        specs=[
            AssetCheckSpec(name, asset=dim_key, description=description)
            for name, (description, _) in dimension_evaluations.items()
        ],
    )
    def dimension_table_checks(
        context: AssetCheckExecutionContext, lakehouse: LakehouseResource
    ) -> Iterator[AssetCheckResult]:
        raw_table = lakehouse.require_table(raw_key.path)
        dim_table = lakehouse.require_table(dim_key.path)
        keys = None if wants_full_checks(context) else last_build_keys(dim_table, raw_table)
        read = raw_columns_read(spec, raw_table.schema().column_names)
        if keys is None:
            outcomes = evaluate_by_record_group(spec, raw_table, dim_table, dimension_evaluations)
        else:
            raw = rows_of(raw_table, "id", keys, columns=read)
            dim = rows_of(dim_table, spec.key_column, keys)
            outcomes = {
                name: evaluate(raw, dim) for name, (_, evaluate) in dimension_evaluations.items()
            }
        scope = _scope(keys)
        for name, outcome in outcomes.items():
            yield _result(outcome, name, dim_key, scope)

    return [raw_table_checks, dimension_table_checks]


def evaluate_by_record_group(
    spec: ObjectSpec,
    raw_table: Table,
    dim_table: Table,
    evaluations: dict[str, tuple[str, DimensionCheck]],
) -> dict[str, Outcome]:
    """The dimension checks over the whole tables, one record group at a time (a record's raw
    and dimension rows are in the same group), so memory follows a group, not the history."""
    read = raw_columns_read(spec, raw_table.schema().column_names)
    groups = record_groups(raw_table)
    results: dict[str, list[Outcome]] = {name: [] for name in evaluations}
    for group in range(groups):
        raw = rows_in_group(raw_table, "id", group, groups, read)
        dim = rows_in_group(dim_table, spec.key_column, group, groups)
        for name, (_, evaluate) in evaluations.items():
            results[name].append(evaluate(raw, dim))
        del raw, dim
    return {
        name: outcomes[0] if groups == 1 else combine(outcomes)
        for name, outcomes in results.items()
    }


def _scope(ids: set[str] | None) -> str:
    return "whole table" if ids is None else f"{len(ids)} records changed in this run"


def _result(outcome: Outcome, name: str, asset_key: AssetKey, scope: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        asset_key=asset_key,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR,
        description=outcome.summary,
        metadata={"summary": outcome.summary, "checked": scope, **outcome.metadata},
    )
