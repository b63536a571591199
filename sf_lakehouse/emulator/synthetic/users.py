"""The User part of the synthetic org: users whose history exercises the SCD2 rule.

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
and any ``users >= 8``; ``traits.trait_summary`` counts the traits from the records themselves.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..history import format_sf_datetime
from .common import MS, ascii_slug, other, random_time, salesforce_id

__all__ = ["REGION_FIELD_AFTER", "generate_users"]

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
            when = self.last + MS
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


def generate_users(
    rng: random.Random, users: int, start: datetime, days: int
) -> list[dict[str, Any]]:
    """The User history (unsorted): ``users`` users over ``days`` days from ``start`` (UTC)."""
    end = start + timedelta(days=days)
    region_from = start + REGION_FIELD_AFTER
    ids = [salesforce_id("005", n) for n in range(users)]
    used_usernames: dict[str, int] = {}
    all_versions: list[dict[str, Any]] = []

    for index, user_id in enumerate(ids):
        if index < len(SCRIPTED_NAMES):
            first, last = SCRIPTED_NAMES[index]
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{ascii_slug(first)}.{ascii_slug(last)}"
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
                created = random_time(rng, day_start, day_start + timedelta(hours=10))
            first_version = created
        else:
            created = random_time(rng, start - timedelta(days=900), start - timedelta(days=1))
            # A quarter of the initial snapshot sits exactly on `start` (a whole hour).
            first_version = (
                start
                if index == 0 or rng.random() < 0.25
                else random_time(rng, start, start + timedelta(hours=2))
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
            times = sorted(random_time(rng, window_start, window_end) for _ in range(count))
            for when in times:
                if rng.random() < 0.05:
                    # Snap to the whole hour so the clock can land exactly on it.
                    when = max(when.replace(minute=0, second=0, microsecond=0), window_start)
                kind = rng.choices(_EVENT_KINDS, weights=_EVENT_WEIGHTS)[0]
                _EVENTS[kind](user, rng, when, window_end)
        all_versions.extend(user.versions)
    return all_versions


# --- events: each mutates the user's state and emits one or more versions -------------------


def _division_change(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    current = user.state["Division"]
    if current is not None and rng.random() < 0.15:
        user.state["Division"] = None
    else:
        user.state["Division"] = other(rng, DIVISIONS, current)
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
    user.state[field] = other(rng, options, original)
    first = user.emit(when)
    back = first + timedelta(minutes=rng.randrange(5, 48 * 60))
    user.state[field] = original
    user.emit(min(back, max(end, first + MS)))


def _burst(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    # Start early in a second so that all versions land inside it.
    when = when.replace(microsecond=rng.randrange(0, 500) * 1000)
    if user.last is not None and when <= user.last:
        when = (user.last + timedelta(seconds=1)).replace(microsecond=0)
    user.state["Audit_Phase__c"] = other(rng, AUDIT_PHASES, user.state["Audit_Phase__c"])
    when = user.emit(when)
    user.state["Division"] = other(rng, DIVISIONS, user.state["Division"])
    when = user.emit(when + rng.randrange(1, 150) * MS)
    if rng.random() < 0.5:
        user.state["Title"] = other(rng, TITLES, user.state["Title"])
        user.emit(when + rng.randrange(1, 150) * MS)


def _title_change(user: _User, rng: random.Random, when: datetime, _end: datetime) -> None:
    user.state["Title"] = other(rng, TITLES, user.state["Title"])
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
    user.state["Title"] = other(rng, TITLES, user.state["Title"])
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
