"""Self-description of a synthetic history: how often each documented trait occurs.

``trait_summary`` counts from the records themselves (it never asks the generator), so tests can
check that every trait the generator promises is really present.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from ..history import object_of, parse_sf_datetime

__all__ = ["trait_summary"]

_TIMESTAMPS = ("LastModifiedDate", "SystemModstamp")
_TRACKED = ("Division", "Audit_Phase__c")


def _user_traits(records: list[dict[str, Any]]) -> dict[str, int]:
    """The User traits listed in ``users.py`` (computed from the User records)."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_id[record["Id"]].append(record)
    counts = dict.fromkeys(
        [
            "users",
            "user_versions",
            "division_changes",
            "audit_phase_changes",
            "changes_to_null",
            "changes_from_null",
            "reverts",
            "same_second_bursts",
            "other_field_only_changes",
            "touch_only_versions",
            "system_only_touches",
            "late_joiners",
            "versions_with_region_field",
            "versions_without_region_field",
            "whole_hour_versions",
            "names_with_accents_or_apostrophes",
        ],
        0,
    )
    counts["users"] = len(by_id)
    counts["user_versions"] = len(records)
    if not records:
        return counts
    first_stamp = min(parse_sf_datetime(r["SystemModstamp"]) for r in records)
    history_day_two = first_stamp.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )
    for versions in by_id.values():
        versions.sort(key=lambda v: parse_sf_datetime(v["SystemModstamp"]))
        created = versions[0].get("CreatedDate")
        if created and parse_sf_datetime(created) >= history_day_two:
            counts["late_joiners"] += 1
        name = versions[0].get("Name") or ""
        if "'" in name or not name.isascii():
            counts["names_with_accents_or_apostrophes"] += 1
        tracked_runs: list[tuple[Any, ...]] = []
        for prev, cur in zip([None, *versions], versions, strict=False):
            stamp = parse_sf_datetime(cur["SystemModstamp"])
            counts[
                "versions_with_region_field"
                if "Region__c" in cur
                else "versions_without_region_field"
            ] += 1
            if stamp.minute == stamp.second == stamp.microsecond == 0:
                counts["whole_hour_versions"] += 1
            tracked = tuple(cur.get(f) for f in _TRACKED)
            if not tracked_runs or tracked_runs[-1] != tracked:
                tracked_runs.append(tracked)
            if prev is None:
                continue
            prev_stamp = parse_sf_datetime(prev["SystemModstamp"])
            if prev_stamp.replace(microsecond=0) == stamp.replace(microsecond=0):
                counts["same_second_bursts"] += 1
            for field, key in (
                ("Division", "division_changes"),
                ("Audit_Phase__c", "audit_phase_changes"),
            ):
                before, after = prev.get(field), cur.get(field)
                if before != after:
                    counts[key] += 1
                    if after is None:
                        counts["changes_to_null"] += 1
                    if before is None:
                        counts["changes_from_null"] += 1
            keys = (set(prev) | set(cur)) - set(_TIMESTAMPS)
            if all(prev.get(k) == cur.get(k) for k in keys):
                if prev.get("LastModifiedDate") != cur.get("LastModifiedDate"):
                    counts["touch_only_versions"] += 1
                else:
                    counts["system_only_touches"] += 1
            elif all(prev.get(k) == cur.get(k) for k in _TRACKED):
                counts["other_field_only_changes"] += 1
        for i in range(2, len(tracked_runs)):
            if tracked_runs[i] == tracked_runs[i - 2]:
                counts["reverts"] += 1
    return counts


# Per object: the key prefix of its counts, and the fields whose changes are counted.
_OBJECT_TRAITS = {
    "Account": ("account", {"Type": "account_type_changes", "OwnerId": "account_owner_changes"}),
    "Opportunity": (
        "opportunity",
        {
            "StageName": "opportunity_stage_changes",
            "Amount": "opportunity_amount_changes",
            "OwnerId": "opportunity_owner_changes",
        },
    ),
}


def _object_traits(name: str, records: list[dict[str, Any]]) -> dict[str, int]:
    """Records, versions, deletes, undeletes and tracked-field changes of one object."""
    key, tracked = _OBJECT_TRAITS[name]
    plural = "opportunities" if key == "opportunity" else f"{key}s"
    counts = dict.fromkeys(
        [
            plural,
            f"{key}_versions",
            f"{key}_deletions",
            f"{key}_undeletes",
            *tracked.values(),
        ],
        0,
    )
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_id[record["Id"]].append(record)
    counts[plural] = len(by_id)
    counts[f"{key}_versions"] = len(records)
    if name == "Opportunity":
        counts["opportunities_closed_won"] = counts["opportunities_closed_lost"] = 0
    for versions in by_id.values():
        versions.sort(key=lambda v: parse_sf_datetime(v["SystemModstamp"]))
        for prev, cur in zip([None, *versions], versions, strict=False):
            deleted = cur.get("IsDeleted") is True
            was_deleted = prev is not None and prev.get("IsDeleted") is True
            if deleted and not was_deleted:
                counts[f"{key}_deletions"] += 1
            if was_deleted and not deleted:
                counts[f"{key}_undeletes"] += 1
            if prev is not None:
                for field, counter in tracked.items():
                    if prev.get(field) != cur.get(field):
                        counts[counter] += 1
        if name == "Opportunity":
            stage = versions[-1].get("StageName")
            if stage == "Closed Won":
                counts["opportunities_closed_won"] += 1
            elif stage == "Closed Lost":
                counts["opportunities_closed_lost"] += 1
    return counts


def trait_summary(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count the history's traits: ``versions`` (all lines), the User traits (``users``,
    ``user_versions``, ``division_changes``, ...) and per object ``accounts``,
    ``account_versions``, ``account_deletions``, ``account_undeletes``, ... and
    ``opportunities``, ``opportunity_deletions``, ``opportunity_undeletes``,
    ``opportunity_stage_changes``, ... (zero when the history has none of them)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    total = 0
    for record in records:
        grouped[object_of(record)].append(record)
        total += 1
    counts = {"versions": total, **_user_traits(grouped["User"])}
    for name in _OBJECT_TRAITS:
        counts.update(_object_traits(name, grouped[name]))
    return counts
