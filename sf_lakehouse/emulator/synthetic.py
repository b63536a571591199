"""A deterministic synthetic Salesforce org: the history of User records over a few days.

``generate_org(users, seed, start, days)`` returns history versions (the emulator's history
format) using only ``random.Random(seed)``: the same arguments always give identical output.
The history is built to exercise everything the pipeline and the SCD2 rule must get right:

- **Division changes** between "EMEA", "North America", "APAC", "LATAM" and null.
- **Audit_Phase__c changes** through "Planning" -> "Fieldwork" -> "Review" -> "Closed", and null.
- **NULLs**, both a value becoming null and null becoming a value, for both tracked fields.
- **Reverts** (A -> B -> A) of Division or Audit_Phase__c: three SCD versions, not one.
- **Bursts**: two or three versions of one user within the same second (distinct,
  strictly increasing milliseconds), which incremental extraction must not lose at a boundary.
- **Other-field changes**: Title or IsActive changes that must not start an SCD version.
- **Touches**: versions where only LastModifiedDate and SystemModstamp move, and system-only
  touches where just SystemModstamp moves.
- **Late joiners**: users created on later days (their first version is their CreatedDate).
- **Schema evolution**: the custom field ``Region__c`` exists only on versions stamped 3 days or
  more after ``start`` (it "appears in the org" then; with ``days <= 3`` it never appears).
- **Whole hours**: some versions sit exactly on a whole hour (``08:00:00.000``, the initial
  snapshot at ``start`` among them) so tests can put the emulator clock exactly on a version.
- **Names** with accents and apostrophes (José, Zoë, Ångström, O'Brien, D'Angelo, Nguyễn);
  usernames and emails are their ASCII forms, ``first.last@acme-corp.example``.
- Every user carries Id (18 characters, ``005`` prefix, valid case-checksum suffix), Username,
  Name, FirstName, LastName, Email, IsActive, Division, Audit_Phase__c, Title, Department,
  ManagerId (a reference to another user, or null), CreatedDate, LastModifiedDate,
  SystemModstamp. On average a user has about 4 versions.

The first few users follow fixed scripts so that every trait above is present for any seed
and any ``users >= 8``; ``trait_summary`` counts the traits from the records themselves.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .history import format_sf_datetime, parse_sf_datetime

__all__ = ["generate_org", "salesforce_id", "trait_summary", "write_history"]

DIVISIONS = ["EMEA", "North America", "APAC", "LATAM"]
AUDIT_PHASES = ["Planning", "Fieldwork", "Review", "Closed"]
REGIONS = {
    "EMEA": ["EU-West", "EU-North"],
    "North America": ["US-East", "US-West"],
    "APAC": ["AP-Southeast", "AP-Northeast"],
    "LATAM": ["SA-East"],
}
TITLES = [
    "Auditor",
    "Senior Auditor",
    "Audit Manager",
    "Audit Director",
    "Risk Analyst",
    "Compliance Officer",
    "IT Auditor",
    "Data Analyst",
    "Controller",
    "Engagement Partner",
]
DEPARTMENTS = ["Internal Audit", "Risk & Compliance", "Finance", "IT Audit", "Operations", "Legal"]
FIRST_NAMES = [
    "José",
    "Zoë",
    "Liam",
    "Aisha",
    "Mei",
    "Olga",
    "Priya",
    "Lukas",
    "Fatima",
    "Kenji",
    "Sofia",
    "Mateo",
    "Amélie",
    "Björn",
    "Siobhán",
    "Noah",
    "Emma",
    "Chidi",
    "Inês",
    "Rahul",
    "Hannah",
    "Tomás",
    "Yuki",
    "Grace",
    "Omar",
    "Léa",
    "Anders",
    "Nadia",
    "Pierre",
    "Ana",
]
LAST_NAMES = [
    "Smith",
    "O'Brien",
    "D'Angelo",
    "Nguyễn",
    "Ångström",
    "García",
    "Müller",
    "Kowalski",
    "Tanaka",
    "Okafor",
    "Rossi",
    "Dubois",
    "Johansson",
    "Patel",
    "Silva",
    "Kim",
    "Brown",
    "Novák",
    "Fernández",
    "Schäfer",
    "Lindqvist",
    "Haddad",
    "Chen",
    "Walker",
    "Moreau",
    "Costa",
    "Iyer",
    "Kovačević",
    "Murphy",
    "Jensen",
]
# The scripted users get these names so the awkward spellings are always present.
SCRIPTED_NAMES = [
    ("José", "Ångström"),
    ("Zoë", "O'Brien"),
    ("Liam", "D'Angelo"),
    ("Mei", "Nguyễn"),
    ("Siobhán", "O'Brien"),
    ("Amélie", "D'Angelo"),
    ("Björn", "Nguyễn"),
    ("Inês", "García"),
]
EMAIL_DOMAIN = "acme-corp.example"
REGION_FIELD_AFTER = timedelta(days=3)
_MS = timedelta(milliseconds=1)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ASCII_FOLD = {"\u0131": "i", "ø": "o", "ß": "ss", "æ": "ae", "đ": "d", "ł": "l"}


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 15 characters plus the real case-checksum suffix."""
    body = ""
    value = number * 7919 + 104729  # spread small numbers so ids do not look sequential
    while value:
        value, digit = divmod(value, 62)
        body = _BASE62[digit] + body
    short = (prefix + "8d0" + body.rjust(12 - len(prefix), "0"))[:15]
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(short[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return short + suffix


def _ascii_slug(text: str) -> str:
    folded = "".join(_ASCII_FOLD.get(ch, ch) for ch in text.lower())
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def _other(rng: random.Random, options: list[str], current: str | None) -> str:
    return rng.choice([o for o in options if o != current])


class _User:
    """One user's evolving state and the versions emitted so far."""

    def __init__(self, state: dict[str, Any], region_from: datetime, region_pick: int) -> None:
        self.state = state
        self.versions: list[dict[str, Any]] = []
        self.last: datetime | None = None
        self.region_from = region_from
        self.region_pick = region_pick

    def emit(self, when: datetime, *, user_change: bool = True) -> datetime:
        """Record a version at ``when`` (bumped to stay strictly after the previous one)."""
        if self.last is not None and when <= self.last:
            when = self.last + _MS
        self.last = when
        stamp = format_sf_datetime(when)
        self.state["SystemModstamp"] = stamp
        if user_change:
            self.state["LastModifiedDate"] = stamp
        if when >= self.region_from:
            choices = REGIONS.get(self.state["Division"] or "", [])
            self.state["Region__c"] = choices[self.region_pick % len(choices)] if choices else None
        self.versions.append(dict(self.state))
        return when


def generate_org(
    users: int = 300,
    seed: int = 7,
    start: datetime = datetime(2026, 3, 1, 8, tzinfo=UTC),
    days: int = 6,
) -> list[dict[str, Any]]:
    """Generate the org's User history: versions ordered by (SystemModstamp, Id)."""
    if users < 1 or days < 1:
        raise ValueError("users and days must be at least 1")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    rng = random.Random(seed)
    end = start + timedelta(days=days)
    region_from = start + REGION_FIELD_AFTER
    ids = [salesforce_id("005", n) for n in range(users)]
    used_usernames: dict[str, int] = {}
    all_versions: list[dict[str, Any]] = []

    def random_time(low: datetime, high: datetime) -> datetime:
        span_ms = max(int((high - low) / _MS), 1)
        return low + rng.randrange(span_ms) * _MS

    for index, user_id in enumerate(ids):
        if index < len(SCRIPTED_NAMES):
            first, last = SCRIPTED_NAMES[index]
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
        used_usernames[local] = used_usernames.get(local, 0) + 1
        if used_usernames[local] > 1:
            local = f"{local}{used_usernames[local]}"
        username = f"{local}@{EMAIL_DOMAIN}"

        late = index == 6 or (index >= len(SCRIPTED_NAMES) and rng.random() < 0.12)
        if late and days > 1:
            join_day = rng.randrange(1, days)
            if rng.random() < 0.3 or index == 6:
                created = start + timedelta(days=join_day, hours=rng.randrange(0, 10))
            else:
                day_start = start + timedelta(days=join_day)
                created = random_time(day_start, day_start + timedelta(hours=10))
            first_version = created
        else:
            created = random_time(start - timedelta(days=900), start - timedelta(days=1))
            # A quarter of the initial snapshot sits exactly on `start` (a whole hour).
            first_version = (
                start
                if index == 0 or rng.random() < 0.25
                else random_time(start, start + timedelta(hours=2))
            )

        state: dict[str, Any] = {
            "Id": user_id,
            "Username": username,
            "Name": f"{first} {last}",
            "FirstName": first,
            "LastName": last,
            "Email": username,
            "IsActive": rng.random() < 0.95,
            "Division": rng.choice([*DIVISIONS, *DIVISIONS, None]),
            "Audit_Phase__c": rng.choice([*AUDIT_PHASES, None]),
            "Title": rng.choice(TITLES),
            "Department": rng.choice(DEPARTMENTS),
            "ManagerId": ids[rng.randrange(min(index, 10))] if index >= 10 else None,
            "CreatedDate": format_sf_datetime(created),
            "LastModifiedDate": None,
            "SystemModstamp": None,
        }
        user = _User(state, region_from, rng.randrange(2))
        user.emit(first_version)

        window_start = first_version + timedelta(minutes=1)
        window_end = end - timedelta(hours=2)
        if window_end <= window_start:
            all_versions.extend(user.versions)
            continue
        script = _SCRIPTS.get(index)
        if script is not None:
            script(user, rng, start, window_start, window_end)
        else:
            count = rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5])
            times = sorted(random_time(window_start, window_end) for _ in range(count))
            for when in times:
                if rng.random() < 0.05:
                    # Snap to the whole hour so the clock can land exactly on it.
                    when = max(when.replace(minute=0, second=0, microsecond=0), window_start)
                kind = rng.choices(_EVENT_KINDS, weights=_EVENT_WEIGHTS)[0]
                _EVENTS[kind](user, rng, when, window_end)
        all_versions.extend(user.versions)

    all_versions.sort(key=lambda v: (v["SystemModstamp"], v["Id"]))
    return all_versions


# --- events: each mutates the user's state and emits one or more versions -------------------


def _division_change(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    current = user.state["Division"]
    if current is not None and rng.random() < 0.15:
        user.state["Division"] = None
    else:
        user.state["Division"] = _other(rng, DIVISIONS, current)
    user.emit(when)


def _phase_change(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    current = user.state["Audit_Phase__c"]
    if current is None:
        user.state["Audit_Phase__c"] = "Planning"
    elif current == "Closed" or rng.random() < 0.1:
        user.state["Audit_Phase__c"] = None if rng.random() < 0.5 else "Planning"
    else:
        user.state["Audit_Phase__c"] = AUDIT_PHASES[AUDIT_PHASES.index(current) + 1]
    user.emit(when)


def _revert(user: _User, rng: random.Random, when: datetime, end: datetime) -> None:
    field = rng.choice(["Division", "Audit_Phase__c"])
    options = DIVISIONS if field == "Division" else AUDIT_PHASES
    original = user.state[field]
    user.state[field] = _other(rng, options, original)
    first = user.emit(when)
    back = first + timedelta(minutes=rng.randrange(5, 48 * 60))
    user.state[field] = original
    user.emit(min(back, max(end, first + _MS)))


def _burst(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    # Start early in a second so that all versions land inside it.
    when = when.replace(microsecond=rng.randrange(0, 500) * 1000)
    if user.last is not None and when <= user.last:
        when = (user.last + timedelta(seconds=1)).replace(microsecond=0)
    user.state["Audit_Phase__c"] = _other(rng, AUDIT_PHASES, user.state["Audit_Phase__c"])
    when = user.emit(when)
    user.state["Division"] = _other(rng, DIVISIONS, user.state["Division"])
    when = user.emit(when + rng.randrange(1, 150) * _MS)
    if rng.random() < 0.5:
        user.state["Title"] = _other(rng, TITLES, user.state["Title"])
        user.emit(when + rng.randrange(1, 150) * _MS)


def _title_change(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    user.state["Title"] = _other(rng, TITLES, user.state["Title"])
    user.emit(when)


def _touch(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    user.emit(when)  # LastModifiedDate and SystemModstamp move, nothing else


def _system_touch(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    user.emit(when, user_change=False)  # only SystemModstamp moves (a system process)


def _activation(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    user.state["IsActive"] = not user.state["IsActive"]
    user.emit(when)


_Event = Callable[[_User, random.Random, datetime, datetime], None]
_EVENTS: dict[str, _Event] = {
    "division": _division_change,
    "phase": _phase_change,
    "revert": _revert,
    "burst": _burst,
    "title": _title_change,
    "touch": _touch,
    "system": _system_touch,
    "activation": _activation,
}
_EVENT_KINDS = list(_EVENTS)
_EVENT_WEIGHTS = [3.0, 3.0, 1.0, 0.8, 1.5, 1.0, 0.5, 0.3]


# --- scripts for the first users: every trait is present whatever the seed -------------------

_Script = Callable[[_User, random.Random, datetime, datetime, datetime], None]


def _script_division_revert(
    user: _User, rng: random.Random, start: datetime, low: datetime, high: datetime
) -> None:
    user.state["Division"] = "EMEA"
    user.emit(max(low, start + timedelta(days=1)))  # whole hour: 08:00:00.000 on day 1
    user.state["Division"] = "APAC"
    user.emit(max(low, start + timedelta(days=1, hours=2)))
    user.state["Division"] = "EMEA"
    user.emit(max(low, start + timedelta(days=2, hours=1)))


def _script_burst(
    user: _User, rng: random.Random, start: datetime, low: datetime, high: datetime
) -> None:
    when = max(low, start + timedelta(days=1, hours=5, seconds=17))
    _burst(user, rng, when.replace(microsecond=0), high)


def _script_division_nulls(
    user: _User, rng: random.Random, start: datetime, low: datetime, high: datetime
) -> None:
    user.state["Division"] = "LATAM"
    user.emit(max(low, start + timedelta(hours=20)))
    user.state["Division"] = None
    user.emit(max(low, start + timedelta(days=1, hours=20)))
    user.state["Division"] = "North America"
    user.emit(max(low, start + timedelta(days=3, hours=6)))


def _script_phase_nulls(
    user: _User, rng: random.Random, start: datetime, low: datetime, high: datetime
) -> None:
    user.state["Audit_Phase__c"] = "Review"
    user.emit(max(low, start + timedelta(hours=9, minutes=30)))
    user.state["Audit_Phase__c"] = None
    user.emit(max(low, start + timedelta(days=2, hours=3)))
    user.state["Audit_Phase__c"] = "Planning"
    user.emit(max(low, start + timedelta(days=2, hours=4)))


def _script_other_fields(
    user: _User, rng: random.Random, start: datetime, low: datetime, high: datetime
) -> None:
    user.state["Title"] = _other(rng, TITLES, user.state["Title"])
    user.emit(max(low, start + timedelta(hours=30)))
    user.emit(max(low, start + timedelta(days=2, hours=7)))  # touch
    user.emit(max(low, start + timedelta(days=2, hours=9)), user_change=False)
    # Exactly on a whole hour, after Region__c appears: the clock can be put right on it.
    user.emit(max(low, start + REGION_FIELD_AFTER + timedelta(hours=2)))


def _script_phase_revert(
    user: _User, rng: random.Random, start: datetime, low: datetime, high: datetime
) -> None:
    user.state["Audit_Phase__c"] = "Fieldwork"
    user.emit(max(low, start + timedelta(hours=4, minutes=12)))
    user.state["Audit_Phase__c"] = "Review"
    user.emit(max(low, start + timedelta(days=1, hours=1, minutes=5)))
    user.state["Audit_Phase__c"] = "Fieldwork"
    user.emit(max(low, start + timedelta(days=4, hours=3, minutes=33)))


def _script_late_joiner(
    user: _User, rng: random.Random, start: datetime, low: datetime, high: datetime
) -> None:
    _phase_change(user, rng, low + timedelta(hours=3), high)


_SCRIPTS: dict[int, _Script] = {
    0: _script_division_revert,
    1: _script_burst,
    2: _script_division_nulls,
    3: _script_phase_nulls,
    4: _script_other_fields,
    5: _script_phase_revert,
    6: _script_late_joiner,
}


# --- output and self-description --------------------------------------------------------------


def write_history(records: Iterable[dict[str, Any]], path: Path) -> None:
    """Write versions as JSON Lines (UTF-8, one version per line) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


_TIMESTAMPS = ("LastModifiedDate", "SystemModstamp")
_TRACKED = ("Division", "Audit_Phase__c")


def trait_summary(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count the history traits listed in the module docstring (computed from the records)."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    records = list(records)
    for record in records:
        by_id[record["Id"]].append(record)
    counts = dict.fromkeys(
        [
            "users",
            "versions",
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
    counts["versions"] = len(records)
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
