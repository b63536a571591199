"""A test-only implementation of the SCD2 rules 1-7, in plain Python, for any object spec.

Written from the rules, not from the SQL of `dbt_project/macros/scd2.sql` nor from
`sf_lakehouse.scd2_rule` (the production check's own implementation), so the dbt-built dimensions
are compared with a second, independent reading of the rules:

1. Observations are a record's raw rows, de-duplicated on (id, systemmodstamp) keeping the latest
   `_extracted_at` (a tie: the greatest `_run_id`), ordered by systemmodstamp.
2. The first observation starts a version; so does every later one whose tracked values differ
   from the previous observation's (NULL equals NULL, differs from any value).
3. effective_from is the starting observation's systemmodstamp; effective_to the next version's
   effective_from (NULL for the last); is_current = effective_to is NULL.
4. Carried attributes come from the latest observation inside the version.
5-6. (ids and run independence are checked by the tests, not computed here).
7. With deletions, is_deleted (raw `isdeleted`, NULL = false) is compared like a tracked field.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sf_lakehouse.config.objects import ObjectSpec, raw_column, snake_case

Row = Mapping[str, Any]


def observations(raw_rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Rule 1: per record id, its observations in systemmodstamp order."""
    latest: dict[tuple[str, dt.datetime], Row] = {}
    for row in raw_rows:
        version = (row["id"], row["systemmodstamp"])
        kept = latest.get(version)
        # The latest extraction wins; the greatest run id breaks a tie of extraction times
        # (rule 1's tie-break in docs/design.md).
        if kept is None or (row["_extracted_at"], row["_run_id"]) > (
            kept["_extracted_at"],
            kept["_run_id"],
        ):
            latest[version] = row
    by_record: dict[str, list[Row]] = defaultdict(list)
    for (record_id, _), row in latest.items():
        by_record[record_id].append(row)
    return {rid: sorted(rows, key=lambda r: r["systemmodstamp"]) for rid, rows in by_record.items()}


def _compared_values(spec: ObjectSpec, row: Row) -> tuple[Any, ...]:
    """Rules 2 and 7: what decides whether an observation starts a version. Python's `!=` on
    tuples holding None is the null-safe comparison the rule asks for."""
    values = tuple(row.get(raw_column(field)) for field in spec.track)
    if spec.deletions:
        values += (bool(row.get("isdeleted")),)  # NULL counts as not deleted
    return values


def expected_dimension(spec: ObjectSpec, raw_rows: Iterable[Row]) -> list[dict[str, Any]]:
    """The dimension's rows without scd_id, sorted by (key, effective_from)."""
    result: list[dict[str, Any]] = []
    for record_id, observed in sorted(observations(raw_rows).items()):
        versions: list[list[Row]] = []
        for index, row in enumerate(observed):
            if index == 0 or _compared_values(spec, row) != _compared_values(
                spec, observed[index - 1]
            ):
                versions.append([])
            versions[-1].append(row)
        for index, members in enumerate(versions):
            latest = members[-1]  # rule 4
            effective_to = (
                versions[index + 1][0]["systemmodstamp"] if index + 1 < len(versions) else None
            )
            version: dict[str, Any] = {spec.key_column: record_id}
            for field in (*spec.carry, *spec.track):
                version[snake_case(field)] = latest.get(raw_column(field))
            if spec.deletions:
                version["is_deleted"] = bool(latest.get("isdeleted"))
            version |= {
                "effective_from": members[0]["systemmodstamp"],  # rule 3
                "effective_to": effective_to,
                "is_current": effective_to is None,
            }
            result.append(version)
    return result


def comparable(spec: ObjectSpec, rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Dimension rows as expected_dimension() gives them: no scd_id, same order."""
    columns = [c for c in spec.dimension_columns if c != "scd_id"]
    return sorted(
        ({c: row[c] for c in columns} for row in rows),
        key=lambda r: (r[spec.key_column], r["effective_from"]),
    )


def effective_at(
    spec: ObjectSpec, versions: Iterable[Row], instant: dt.datetime
) -> dict[str, dt.datetime]:
    """Record id -> effective_from of its version in effect at the instant (half-open)."""
    return {
        v[spec.key_column]: v["effective_from"]
        for v in versions
        if v["effective_from"] <= instant
        and (v["effective_to"] is None or v["effective_to"] > instant)
    }
