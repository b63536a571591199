"""The SCD2 rule (rules 1-7) computed in plain Python for any object spec, independently of the
dbt SQL. The asset check `dimension_matches_the_scd2_rule` compares the dimension dbt builds with
this; it only looks at the raw rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.config.objects import DELETED_FIELD, raw_column

VersionRow = dict[str, Any]


def _value_columns(spec: ObjectSpec) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(dimension column, raw column) pairs of the carried and of the compared fields."""
    carried = list(zip(spec.carried_columns, map(raw_column, spec.carry), strict=True))
    compared = list(zip(spec.tracked_columns, map(raw_column, spec.track), strict=True))
    if spec.deletions:
        compared.append(("is_deleted", raw_column(DELETED_FIELD)))
    return carried, compared


def _raw_value(row: Mapping[str, Any], raw: str) -> Any:
    value = row.get(raw)
    # A record extracted without IsDeleted (before deletions were switched on) is not deleted.
    return bool(value) if raw == raw_column(DELETED_FIELD) else value


def expected_dimension(raw_rows: Iterable[Mapping[str, Any]], spec: ObjectSpec) -> list[VersionRow]:
    """Rows of the dimension (without scd_id), sorted by (key, effective_from)."""
    # Rule 1: de-duplicate on (id, systemmodstamp), latest _extracted_at wins.
    latest: dict[tuple[str, dt.datetime], Mapping[str, Any]] = {}
    for row in raw_rows:
        key = (row["id"], row["systemmodstamp"])
        if key not in latest or row["_extracted_at"] > latest[key]["_extracted_at"]:
            latest[key] = row
    by_record: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for (record_id, _), row in latest.items():
        by_record[record_id].append(row)

    carried, compared = _value_columns(spec)
    result: list[VersionRow] = []
    for record_id in sorted(by_record):
        observations = sorted(by_record[record_id], key=lambda r: r["systemmodstamp"])
        versions: list[list[Mapping[str, Any]]] = []
        previous: tuple[Any, ...] | None = None
        for obs in observations:
            values = tuple(_raw_value(obs, raw) for _, raw in compared)
            # Rules 2 and 7: Python's == on None is exactly the null-safe comparison.
            if previous is None or values != previous:
                versions.append([])
            versions[-1].append(obs)
            previous = values
        for index, members in enumerate(versions):
            last = members[-1]  # Rule 4: attributes from the latest observation.
            effective_to = (
                versions[index + 1][0]["systemmodstamp"] if index + 1 < len(versions) else None
            )
            row: VersionRow = {spec.key_column: record_id}
            row |= {column: last.get(raw) for column, raw in carried}
            row |= {column: _raw_value(last, raw) for column, raw in compared}
            row |= {
                "effective_from": members[0]["systemmodstamp"],  # Rule 3
                "effective_to": effective_to,
                "is_current": effective_to is None,
            }
            result.append(row)
    return result


def comparable(rows: Iterable[Mapping[str, Any]], spec: ObjectSpec) -> list[VersionRow]:
    """Dimension rows without scd_id, sorted like expected_dimension()."""
    keys = [c for c in spec.dimension_columns if c != "scd_id"]
    return sorted(
        ({k: r[k] for k in keys} for r in rows),
        key=lambda r: (r[spec.key_column], r["effective_from"]),
    )
