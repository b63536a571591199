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

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from .common import DAY, HOUR, MINUTE, MS, SECOND, Dice, ascii_slug, salesforce_id, stamp_text

__all__ = ["REGION_FIELD_AFTER", "GeneratedUser", "iter_users"]

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

_REGION_AFTER_MS = 3 * DAY
_DIVISION_DRAW = [*DIVISIONS, *DIVISIONS, None]
_PHASE_DRAW = [*AUDIT_PHASES, None]
_EVENT_COUNTS = [1, 2, 2, 3, 3, 3, 4, 4, 5]


class GeneratedUser:
    """One user's evolving state, the versions emitted so far and when each was stamped."""

    __slots__ = ("active", "last", "region_from", "region_pick", "stamps", "state", "versions")

    def __init__(self, state: dict[str, Any], region_from: int, region_pick: int) -> None:
        self.state = state
        self.versions: list[dict[str, Any]] = []
        self.stamps: list[int] = []  # microseconds since the epoch
        self.active: list[bool] = []
        self.last: int | None = None
        self.region_from = region_from
        self.region_pick = region_pick

    def emit(self, when: int, *, user_change: bool = True) -> int:
        """Record a version at ``when`` (bumped to stay strictly after the previous one)."""
        if self.last is not None and when <= self.last:
            when = self.last + MS
        self.last = when
        state = self.state
        stamp = stamp_text(when)
        state["SystemModstamp"] = stamp
        if user_change:
            state["LastModifiedDate"] = stamp
        if when >= self.region_from:
            choices = REGIONS.get(state["Division"] or "", [])
            state["Region__c"] = choices[self.region_pick % len(choices)] if choices else None
        self.versions.append(dict(state))
        self.stamps.append(when)
        self.active.append(state["IsActive"] is True)
        return when


def iter_users(dice: Dice, users: int, start: int, days: int) -> Iterator[GeneratedUser]:
    """The users, one after the other: ``users`` users over ``days`` days from ``start`` (µs)."""
    end = start + days * DAY
    region_from = start + _REGION_AFTER_MS
    ids = [salesforce_id("005", n) for n in range(users)]
    used_usernames: dict[str, int] = {}
    slugs: dict[str, str] = {}
    scripted = len(SCRIPTED_NAMES)

    for index, user_id in enumerate(ids):
        if index < scripted:
            first, last = SCRIPTED_NAMES[index]
        else:
            first, last = dice.choice(FIRST_NAMES), dice.choice(LAST_NAMES)
        for name in (first, last):
            if name not in slugs:
                slugs[name] = ascii_slug(name)
        local = f"{slugs[first]}.{slugs[last]}"
        seen = used_usernames[local] = used_usernames.get(local, 0) + 1
        if seen > 1:
            local = f"{local}{seen}"
        username = f"{local}@{EMAIL_DOMAIN}"

        late = index == 6 or (index >= scripted and dice.random() < 0.12)
        if late and days > 1:
            join_day = dice.between(1, days)
            if dice.random() < 0.3 or index == 6:
                created = start + join_day * DAY + dice.between(0, 10) * HOUR
            else:
                day_start = start + join_day * DAY
                created = dice.time(day_start, day_start + 10 * HOUR)
            first_version = created
        else:
            created = dice.time(start - 900 * DAY, start - DAY)
            # A quarter of the initial snapshot sits exactly on `start` (a whole hour).
            first_version = (
                start if index == 0 or dice.random() < 0.25 else dice.time(start, start + 2 * HOUR)
            )

        state: dict[str, Any] = {
            "Id": user_id,
            "Username": username,
            "Name": f"{first} {last}",
            "FirstName": first,
            "LastName": last,
            "Email": username,
            "IsActive": dice.random() < 0.95,
            "Division": dice.choice(_DIVISION_DRAW),
            "Audit_Phase__c": dice.choice(_PHASE_DRAW),
            "Title": dice.choice(TITLES),
            "Department": dice.choice(DEPARTMENTS),
            "ManagerId": ids[dice.below(min(index, 10))] if index >= 10 else None,
            "CreatedDate": stamp_text(created),
            "LastModifiedDate": None,
            "SystemModstamp": None,
        }
        user = GeneratedUser(state, region_from, dice.below(2))
        user.emit(first_version)

        window_start = first_version + MINUTE
        window_end = end - 2 * HOUR
        if window_end <= window_start:
            yield user
            continue
        script = _SCRIPTS.get(index)
        if script is not None:
            script(user, dice, start, window_start, window_end)
        else:
            count = dice.choice(_EVENT_COUNTS)
            times = sorted([dice.time(window_start, window_end) for _ in range(count)])
            for when in times:
                if dice.random() < 0.05:
                    # Snap to the whole hour so the clock can land exactly on it.
                    when = max(when - when % HOUR, window_start)
                kind = dice.weighted(_EVENT_KINDS, _EVENT_CUMULATIVE)
                _EVENTS[kind](user, dice, when, window_end)
        yield user


# --- events: each mutates the user's state and emits one or more versions -------------------


def _division_change(user: GeneratedUser, dice: Dice, when: int, _end: int) -> None:
    current = user.state["Division"]
    if current is not None and dice.random() < 0.15:
        user.state["Division"] = None
    else:
        user.state["Division"] = dice.other(DIVISIONS, current)
    user.emit(when)


def _phase_change(user: GeneratedUser, dice: Dice, when: int, _end: int) -> None:
    current = user.state["Audit_Phase__c"]
    if current is None:
        user.state["Audit_Phase__c"] = "Planning"
    elif current == "Closed" or dice.random() < 0.1:
        user.state["Audit_Phase__c"] = None if dice.random() < 0.5 else "Planning"
    else:
        user.state["Audit_Phase__c"] = AUDIT_PHASES[AUDIT_PHASES.index(current) + 1]
    user.emit(when)


def _revert(user: GeneratedUser, dice: Dice, when: int, end: int) -> None:
    field = dice.choice(["Division", "Audit_Phase__c"])
    options = DIVISIONS if field == "Division" else AUDIT_PHASES
    original = user.state[field]
    user.state[field] = dice.other(options, original)
    first = user.emit(when)
    back = first + dice.between(5, 48 * 60) * MINUTE
    user.state[field] = original
    user.emit(min(back, max(end, first + MS)))


def _burst(user: GeneratedUser, dice: Dice, when: int, _end: int) -> None:
    # Start early in a second so that all versions land inside it.
    when = when - when % SECOND + dice.between(0, 500) * MS
    if user.last is not None and when <= user.last:
        after = user.last + SECOND
        when = after - after % SECOND
    user.state["Audit_Phase__c"] = dice.other(AUDIT_PHASES, user.state["Audit_Phase__c"])
    when = user.emit(when)
    user.state["Division"] = dice.other(DIVISIONS, user.state["Division"])
    when = user.emit(when + dice.between(1, 150) * MS)
    if dice.random() < 0.5:
        user.state["Title"] = dice.other(TITLES, user.state["Title"])
        user.emit(when + dice.between(1, 150) * MS)


def _title_change(user: GeneratedUser, dice: Dice, when: int, _end: int) -> None:
    user.state["Title"] = dice.other(TITLES, user.state["Title"])
    user.emit(when)


def _touch(user: GeneratedUser, dice: Dice, when: int, _end: int) -> None:
    user.emit(when)  # LastModifiedDate and SystemModstamp move, nothing else


def _system_touch(user: GeneratedUser, dice: Dice, when: int, _end: int) -> None:
    user.emit(when, user_change=False)  # only SystemModstamp moves (a system process)


def _activation(user: GeneratedUser, dice: Dice, when: int, _end: int) -> None:
    user.state["IsActive"] = not user.state["IsActive"]
    user.emit(when)


_Event = Callable[[GeneratedUser, Dice, int, int], None]
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
_EVENT_CUMULATIVE = [sum(_EVENT_WEIGHTS[: i + 1]) for i in range(len(_EVENT_WEIGHTS))]


# --- scripts for the first users: every trait is present whatever the seed -------------------

_Script = Callable[[GeneratedUser, Dice, int, int, int], None]


def _script_division_revert(u: GeneratedUser, dice: Dice, start: int, low: int, high: int) -> None:
    u.state["Division"] = "EMEA"
    u.emit(max(low, start + DAY))  # whole hour: 08:00:00.000 on day 1
    u.state["Division"] = "APAC"
    u.emit(max(low, start + DAY + 2 * HOUR))
    u.state["Division"] = "EMEA"
    u.emit(max(low, start + 2 * DAY + HOUR))


def _script_burst(u: GeneratedUser, dice: Dice, start: int, low: int, high: int) -> None:
    when = max(low, start + DAY + 5 * HOUR + 17 * SECOND)
    _burst(u, dice, when - when % SECOND, high)


def _script_division_nulls(u: GeneratedUser, dice: Dice, start: int, low: int, high: int) -> None:
    u.state["Division"] = "LATAM"
    u.emit(max(low, start + 20 * HOUR))
    u.state["Division"] = None
    u.emit(max(low, start + DAY + 20 * HOUR))
    u.state["Division"] = "North America"
    u.emit(max(low, start + 3 * DAY + 6 * HOUR))


def _script_phase_nulls(u: GeneratedUser, dice: Dice, start: int, low: int, high: int) -> None:
    u.state["Audit_Phase__c"] = "Review"
    u.emit(max(low, start + 9 * HOUR + 30 * MINUTE))
    u.state["Audit_Phase__c"] = None
    u.emit(max(low, start + 2 * DAY + 3 * HOUR))
    u.state["Audit_Phase__c"] = "Planning"
    u.emit(max(low, start + 2 * DAY + 4 * HOUR))


def _script_other_fields(u: GeneratedUser, dice: Dice, start: int, low: int, high: int) -> None:
    u.state["Title"] = dice.other(TITLES, u.state["Title"])
    u.emit(max(low, start + 30 * HOUR))
    u.emit(max(low, start + 2 * DAY + 7 * HOUR))  # touch
    u.emit(max(low, start + 2 * DAY + 9 * HOUR), user_change=False)
    # Exactly on a whole hour, after Region__c appears: the clock can be put right on it.
    u.emit(max(low, start + _REGION_AFTER_MS + 2 * HOUR))


def _script_phase_revert(u: GeneratedUser, dice: Dice, start: int, low: int, high: int) -> None:
    u.state["Audit_Phase__c"] = "Fieldwork"
    u.emit(max(low, start + 4 * HOUR + 12 * MINUTE))
    u.state["Audit_Phase__c"] = "Review"
    u.emit(max(low, start + DAY + HOUR + 5 * MINUTE))
    u.state["Audit_Phase__c"] = "Fieldwork"
    u.emit(max(low, start + 4 * DAY + 3 * HOUR + 33 * MINUTE))


def _script_late_joiner(u: GeneratedUser, dice: Dice, start: int, low: int, high: int) -> None:
    _phase_change(u, dice, low + 3 * HOUR, high)


_SCRIPTS: dict[int, _Script] = {
    0: _script_division_revert,
    1: _script_burst,
    2: _script_division_nulls,
    3: _script_phase_nulls,
    4: _script_other_fields,
    5: _script_phase_revert,
    6: _script_late_joiner,
}
