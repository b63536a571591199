"""Asset checks beyond the dbt tests: is the raw table fit to build from, and does the dimension
hold the SCD2 rule? Each evaluation is a pure function over Arrow tables (so tests can feed it
crafted bad data); the Dagster checks only load the tables and report.

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

from sf_lakehouse.defs import DIMENSION_KEY, RAW_USER_KEY
from sf_lakehouse.defs.resources import LakehouseResource
from sf_lakehouse.scd2_rule import comparable, expected_dimension
from sf_lakehouse.config import Settings

USER_ID_PREFIX = "005"
EXAMPLES = 5


@dataclass(frozen=True)
class Outcome:
    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _query(sql: str, **tables: pa.Table) -> list[tuple]:
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    return con.execute(sql).fetchall()


def _examples(values: Sequence[Any]) -> MetadataValue:
    return MetadataValue.json([str(v) for v in values[:EXAMPLES]])


# --- raw table -------------------------------------------------------------------------------


def raw_versions_unique(raw: pa.Table) -> Outcome:
    rows = _query(
        "select id, systemmodstamp, count(*) as n from raw group by 1, 2 having count(*) > 1 "
        "order by n desc, id",
        raw=raw.select(["id", "systemmodstamp"]),
    )
    extra = sum(n - 1 for _, _, n in rows)
    return Outcome(
        passed=not rows,
        summary=f"{len(rows)} (id, systemmodstamp) versions stored more than once "
        f"({extra} extra rows)"
        if rows
        else "every (id, systemmodstamp) version is stored once",
        metadata={
            "duplicate_versions": len(rows),
            "extra_rows": extra,
            "example_ids": _examples([r[0] for r in rows]),
        },
    )


def raw_ids_are_user_ids(raw: pa.Table) -> Outcome:
    rows = _query(
        "select distinct id from raw where id is null or length(id) <> 18 "
        f"or not starts_with(id, '{USER_ID_PREFIX}') or not regexp_full_match(id, '[0-9A-Za-z]+') "
        "order by id",
        raw=raw.select(["id"]),
    )
    bad = [r[0] for r in rows]
    return Outcome(
        passed=not bad,
        summary=f"{len(bad)} ids are not 18-character User ids (prefix {USER_ID_PREFIX})"
        if bad
        else "every id is an 18-character User id",
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


# --- dimension -------------------------------------------------------------------------------


def one_current_row_per_user(dim: pa.Table) -> Outcome:
    rows = _query(
        "select user_id, count(*) filter (where is_current) as current_rows from dim "
        "group by user_id having count(*) filter (where is_current) <> 1 order by user_id",
        dim=dim,
    )
    return Outcome(
        passed=not rows,
        summary=f"{len(rows)} users do not have exactly one current row"
        if rows
        else "every user has exactly one current row",
        metadata={"users_failing": len(rows), "example_user_ids": _examples([r[0] for r in rows])},
    )


def intervals_contiguous(dim: pa.Table) -> Outcome:
    rows = _query(
        """
        with ordered as (
            select user_id, effective_from, effective_to,
                   lead(effective_from) over (partition by user_id order by effective_from) as nxt
            from dim
        )
        select * from (
            select user_id,
                   count(*) filter (where nxt is not null and effective_to > nxt) as overlap_count,
                   count(*) filter (
                       where nxt is not null and (effective_to is null or effective_to < nxt)
                   ) as gap_count,
                   count(*) filter (where nxt is null and effective_to is not null) as open_ends
            from ordered group by user_id
        ) per_user
        where overlap_count + gap_count + open_ends > 0
        order by user_id
        """,
        dim=dim.select(["user_id", "effective_from", "effective_to"]),
    )
    overlaps = sum(r[1] for r in rows)
    gaps = sum(r[2] for r in rows)
    return Outcome(
        passed=not rows,
        summary=f"{len(rows)} users have overlapping or gapped intervals "
        f"({overlaps} overlaps, {gaps} gaps)"
        if rows
        else "every user's intervals are contiguous, without overlaps or gaps",
        metadata={
            "users_failing": len(rows),
            "overlaps": overlaps,
            "gaps": gaps,
            "example_user_ids": _examples([r[0] for r in rows]),
        },
    )


def effective_to_after_effective_from(dim: pa.Table) -> Outcome:
    rows = _query(
        "select scd_id, user_id from dim where effective_to is not null "
        "and effective_to <= effective_from order by user_id",
        dim=dim.select(["scd_id", "user_id", "effective_from", "effective_to"]),
    )
    return Outcome(
        passed=not rows,
        summary=f"{len(rows)} rows end at or before they start"
        if rows
        else "every closed row ends after it starts",
        metadata={"rows_failing": len(rows), "example_user_ids": _examples([r[1] for r in rows])},
    )


def every_raw_user_in_dimension(raw: pa.Table, dim: pa.Table) -> Outcome:
    rows = _query(
        "select distinct r.id from raw r anti join dim d on r.id = d.user_id order by r.id",
        raw=raw.select(["id"]),
        dim=dim.select(["user_id"]),
    )
    missing = [r[0] for r in rows]
    return Outcome(
        passed=not missing,
        summary=f"{len(missing)} users of the raw table are missing from the dimension"
        if missing
        else "every user of the raw table is in the dimension",
        metadata={"missing_users": len(missing), "example_user_ids": _examples(missing)},
    )


def dimension_matches_rule(raw: pa.Table, dim: pa.Table) -> Outcome:
    expected = expected_dimension(raw.to_pylist())
    actual = comparable(dim.to_pylist())
    expected_keys = {(r["user_id"], r["effective_from"]): r for r in expected}
    actual_keys = {(r["user_id"], r["effective_from"]): r for r in actual}
    missing = sorted(k for k in expected_keys if k not in actual_keys)
    unexpected = sorted(k for k in actual_keys if k not in expected_keys)
    different = sorted(
        k for k in expected_keys if k in actual_keys and expected_keys[k] != actual_keys[k]
    )
    users = sorted({k[0] for k in [*missing, *unexpected, *different]})
    passed = not users and len(actual) == len(actual_keys)
    return Outcome(
        passed=passed,
        summary="the dimension equals the SCD2 rule recomputed from the raw table"
        if passed
        else f"{len(users)} users differ from the SCD2 rule: {len(missing)} versions missing, "
        f"{len(unexpected)} unexpected, {len(different)} with other values",
        metadata={
            "expected_rows": len(expected),
            "actual_rows": len(dim),
            "versions_missing": len(missing),
            "versions_unexpected": len(unexpected),
            "versions_different": len(different),
            "example_user_ids": _examples(users),
        },
    )


# --- Dagster checks --------------------------------------------------------------------------


def _snapshot_row_counts(table: Table) -> list[int]:
    counts = []
    for snapshot in sorted(table.snapshots(), key=lambda s: s.timestamp_ms):
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        counts.append(int(summary.get("total-records", 0)))
    return counts


def _load(lakehouse: LakehouseResource, identifier: str) -> Table:
    table = lakehouse.load_table(identifier)
    if table is None:
        raise ValueError(f"Iceberg table {identifier} does not exist; materialize it first")
    return table


def build_checks(settings: Settings) -> list[AssetChecksDefinition]:
    """Two check steps (raw, dimension), each reading its tables once and reporting every
    check separately; fewer steps keep a run short, and each check still passes or fails alone."""
    raw_key = AssetKey(list(RAW_USER_KEY))
    dim_key = AssetKey(list(DIMENSION_KEY))
    raw_id = settings.raw_table_identifier
    dim_id = settings.dimension_identifier

    raw_checks: dict[str, tuple[str, Callable[[Table], Outcome]]] = {
        "raw_versions_are_unique": (
            "No (id, systemmodstamp) version is stored twice.",
            lambda t: raw_versions_unique(
                t.scan(selected_fields=("id", "systemmodstamp")).to_arrow()
            ),
        ),
        "raw_ids_are_18_character_user_ids": (
            "Every id is an 18-character Salesforce User id (prefix 005).",
            lambda t: raw_ids_are_user_ids(t.scan(selected_fields=("id",)).to_arrow()),
        ),
        "raw_tracked_fields_exist": (
            "The fields the dimension tracks are columns of the raw table.",
            lambda t: raw_tracked_fields_exist(t.schema().as_arrow(), settings.tracked_fields),
        ),
        "raw_row_count_never_drops": (
            "The append-only raw table never loses rows between snapshots.",
            lambda t: raw_row_count_never_drops(_snapshot_row_counts(t)),
        ),
    }
    dimension_checks: dict[str, tuple[str, Callable[[pa.Table, pa.Table], Outcome]]] = {
        "exactly_one_current_row_per_user": (
            "Each user has exactly one current row.",
            lambda raw, dim: one_current_row_per_user(dim),
        ),
        "intervals_without_overlaps_or_gaps": (
            "A user's intervals follow each other without overlap or gap.",
            lambda raw, dim: intervals_contiguous(dim),
        ),
        "effective_to_after_effective_from": (
            "Closed rows end after they start.",
            lambda raw, dim: effective_to_after_effective_from(dim),
        ),
        "every_raw_user_in_dimension": (
            "Every user of the raw table has history.",
            every_raw_user_in_dimension,
        ),
        "dimension_matches_the_scd2_rule": (
            "The dimension equals the SCD2 rule recomputed in Python from the raw table.",
            dimension_matches_rule,
        ),
    }

    @multi_asset_check(
        name="raw_table_checks",
        specs=[
            AssetCheckSpec(name, asset=raw_key, description=description, blocking=True)
            for name, (description, _) in raw_checks.items()
        ],
    )
    def raw_table_checks(
        context: AssetCheckExecutionContext, lakehouse: LakehouseResource
    ) -> Iterator[AssetCheckResult]:
        table = _load(lakehouse, raw_id)
        for name, (_, evaluate) in raw_checks.items():
            yield _result(evaluate(table), name, raw_key)

    @multi_asset_check(
        name="dimension_checks",
        specs=[
            AssetCheckSpec(name, asset=dim_key, description=description)
            for name, (description, _) in dimension_checks.items()
        ],
    )
    def dimension_table_checks(
        context: AssetCheckExecutionContext, lakehouse: LakehouseResource
    ) -> Iterator[AssetCheckResult]:
        raw = _load(lakehouse, raw_id).scan().to_arrow()
        dim = _load(lakehouse, dim_id).scan().to_arrow()
        for name, (_, evaluate) in dimension_checks.items():
            yield _result(evaluate(raw, dim), name, dim_key)

    return [raw_table_checks, dimension_table_checks]


def _result(outcome: Outcome, name: str, asset_key: AssetKey) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        asset_key=asset_key,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR,
        description=outcome.summary,
        metadata={"summary": outcome.summary, **outcome.metadata},
    )
