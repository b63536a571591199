"""The SCD2 rule of shared/design.md computed in plain Python, independently of the dbt SQL.

The asset check `dimension_matches_the_scd2_rule` and the tests compare the dimension dbt builds
with this. It only looks at the raw rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

VersionRow = dict[str, Any]


def expected_dimension(raw_rows: Iterable[Mapping[str, Any]]) -> list[VersionRow]:
    """Rows of the dimension (without scd_id), sorted by (user_id, effective_from)."""
    # Rule 1: de-duplicate on (id, systemmodstamp), latest _extracted_at wins.
    latest: dict[tuple[str, dt.datetime], Mapping[str, Any]] = {}
    for row in raw_rows:
        key = (row["id"], row["systemmodstamp"])
        if key not in latest or row["_extracted_at"] > latest[key]["_extracted_at"]:
            latest[key] = row
    by_user: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for (user_id, _), row in latest.items():
        by_user[user_id].append(row)

    result: list[VersionRow] = []
    for user_id in sorted(by_user):
        observations = sorted(by_user[user_id], key=lambda r: r["systemmodstamp"])
        versions: list[list[Mapping[str, Any]]] = []
        previous: tuple[Any, Any] | None = None
        for obs in observations:
            tracked = (obs["division"], obs["audit_phase__c"])
            # Rule 2: Python's == on None is exactly the null-safe comparison of the rule.
            if previous is None or tracked != previous:
                versions.append([])
            versions[-1].append(obs)
            previous = tracked
        for index, members in enumerate(versions):
            last = members[-1]  # Rule 4: attributes from the latest observation.
            effective_to = (
                versions[index + 1][0]["systemmodstamp"] if index + 1 < len(versions) else None
            )
            result.append(
                {
                    "user_id": user_id,
                    "username": last["username"],
                    "name": last["name"],
                    "email": last["email"],
                    "is_active": last["isactive"],
                    "division": last["division"],
                    "audit_phase": last["audit_phase__c"],
                    "effective_from": members[0]["systemmodstamp"],  # Rule 3
                    "effective_to": effective_to,
                    "is_current": effective_to is None,
                }
            )
    return result


def comparable(rows: Iterable[Mapping[str, Any]]) -> list[VersionRow]:
    """Dimension rows without scd_id, sorted like expected_dimension()."""
    keys = (
        "user_id",
        "username",
        "name",
        "email",
        "is_active",
        "division",
        "audit_phase",
        "effective_from",
        "effective_to",
        "is_current",
    )
    return sorted(
        ({k: r[k] for k in keys} for r in rows), key=lambda r: (r["user_id"], r["effective_from"])
    )
