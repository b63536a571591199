"""The sales part of the synthetic org: Accounts and Opportunities related to the users.

- **Relations**: every Account.OwnerId and Opportunity.OwnerId is a generated user that exists
  and is active at that version; every Opportunity.AccountId is a generated account that
  exists (and is not deleted) when the opportunity is created. An opportunity is usually owned
  by its account's owner.
- **Account changes**: Type (e.g. Prospect -> Customer - Direct, sometimes to or from null)
  and OwnerId (reassignment) change over time; Industry, AnnualRevenue and NumberOfEmployees
  change too (other-field changes), and some versions are touches.
- **Opportunity changes**: StageName progresses Prospecting -> Qualification -> Proposal ->
  Negotiation -> Closed Won / Closed Lost (sometimes slipping back a stage, or lost early),
  with Probability, IsClosed, IsWon and CloseDate following; Amount is revised (sometimes from
  or to null); CloseDate is pushed out; owners change.
- **Deletes and undeletes**: some records are deleted (``IsDeleted: true``) and some of those
  undeleted later. Deleting an account deletes its live opportunities in the same second, and
  undeleting it restores them, as Salesforce's cascade does. Scripted records make sure deletes
  and undeletes of both objects happen in the first two days for any seed.
- Every version carries ``"attributes": {"type": ...}`` and ``IsDeleted``; Ids have the
  standard prefixes (Account ``001``, Opportunity ``006``).

This module holds the shared machinery (``Roster``, ``SalesRecord``, ``play``) and the Accounts;
``opportunities`` the Opportunities.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..objects import ACCOUNT_TYPES, INDUSTRIES
from .common import DAY, HOUR, MINUTE, MS, Dice, ascii_slug, salesforce_id, scaled, stamp_text

__all__ = [
    "OPEN_STAGES",
    "PRODUCTS",
    "STAGE_PROBABILITY",
    "Context",
    "Roster",
    "SalesRecord",
    "cumulative",
    "iter_accounts",
    "play",
    "random_events",
]

COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Soylent",
    "Nordlicht",
    "Ångström",
    "Zürich Re",
    "Sakura",
    "Tōkai",
    "L'Étoile",
    "O'Malley",
    "Nguyễn",
    "Crédit Alpin",
    "Bergström",
    "Pacífico",
    "Kowalczyk",
    "Hanse",
    "Maple Leaf",
    "Southern Cross",
]
COMPANY_KINDS = ["Holdings", "Logistics", "Bank", "Energy", "Foods", "Systems", "Insurance"]
COMPANY_SUFFIXES = ["Inc.", "GmbH", "S.A.", "Ltd", "AB", "K.K.", "plc", "LLC"]
COUNTRIES = [
    ("United States", "1"),
    ("Germany", "49"),
    ("France", "33"),
    ("Japan", "81"),
    ("Brazil", "55"),
    ("India", "91"),
    ("Sweden", "46"),
    ("Ireland", "353"),
    ("Viet Nam", "84"),
    ("Switzerland", "41"),
]
PRODUCTS = [
    "Annual Audit",
    "SOX Readiness",
    "Risk Assessment",
    "Data Migration",
    "Platform Renewal",
    "Advisory Retainer",
    "Controls Testing",
    "ESG Reporting",
]
OPEN_STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation"]
STAGE_PROBABILITY = {
    "Prospecting": 10.0,
    "Qualification": 20.0,
    "Proposal": 50.0,
    "Negotiation": 75.0,
    "Closed Won": 100.0,
    "Closed Lost": 0.0,
}
_TYPE_DRAW = [*ACCOUNT_TYPES, None]
_TYPE_WEIGHTS = [30.0, 35.0, 12.0, 6.0, 4.0, 4.0, 4.0, 5.0]


class Roster:
    """The users by time: who exists and is active at an instant (owners must be)."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._stamps = array("q")
        self._active = bytearray()
        self._offsets = array("q", [0])

    def add(self, user_id: str, stamps: list[int], active: list[bool]) -> None:
        """A user's versions: their (strictly increasing) stamps and whether active then."""
        self._index[user_id] = len(self._ids)
        self._ids.append(user_id)
        self._stamps.extend(stamps)
        self._active.extend(active)
        self._offsets.append(len(self._stamps))

    def available(self, user_id: str, when: int) -> bool:
        index = self._index.get(user_id)
        if index is None:
            return False
        low, high = self._offsets[index], self._offsets[index + 1]
        position = bisect.bisect_right(self._stamps, when, low, high)
        return position > low and bool(self._active[position - 1])

    def pick(self, dice: Dice, when: int, exclude: str | None = None) -> str:
        for _ in range(40):
            candidate = dice.choice(self._ids)
            if candidate != exclude and self.available(candidate, when):
                return candidate
        fallback = (u for u in self._ids if u != exclude and self.available(u, when))
        return next(fallback, self._ids[0])


class SalesRecord:
    """One record's evolving state, the versions emitted so far and its deletions."""

    __slots__ = (
        "created",
        "deleted",
        "deleted_by",
        "deletions",
        "object_name",
        "owners",
        "stamps",
        "state",
        "versions",
    )

    def __init__(self, object_name: str, state: dict[str, Any], created: int) -> None:
        self.object_name = object_name
        self.state = state
        self.created = created
        self.versions: list[dict[str, Any]] = []
        self.stamps: list[int] = []
        self.owners: list[Any] = []
        self.deleted: list[bool] = []
        self.deleted_by: str | None = None  # "own", "cascade" or "locked" while deleted
        self.deletions: list[list[int | None]] = []  # [deleted at, undeleted at or None]

    @property
    def first(self) -> int:
        return self.stamps[0]

    def emit(self, when: int) -> int:
        """Record a version at ``when`` (bumped to stay strictly after the previous one)."""
        if self.stamps and when <= self.stamps[-1]:
            when = self.stamps[-1] + MS
        state = self.state
        state["LastModifiedDate"] = state["SystemModstamp"] = stamp_text(when)
        self.versions.append({"attributes": {"type": self.object_name}, **state})
        self.stamps.append(when)
        self.owners.append(state["OwnerId"])
        self.deleted.append(state["IsDeleted"])
        return when

    def delete(self, when: int, cause: str) -> None:
        self.state["IsDeleted"] = True
        self.deletions.append([self.emit(when), None])
        self.deleted_by = cause

    def undelete(self, when: int) -> None:
        self.state["IsDeleted"] = False
        self.deletions[-1][1] = self.emit(when)
        self.deleted_by = None

    def owner_at(self, when: int) -> Any:
        index = bisect.bisect_right(self.stamps, when)
        return self.owners[index - 1] if index else None

    def alive_at(self, when: int) -> bool:
        index = bisect.bisect_right(self.stamps, when)
        return bool(index) and not self.deleted[index - 1]


@dataclass
class Context:
    dice: Dice
    roster: Roster
    start: int
    end: int  # events stay before this (the history's end minus two hours)
    scale: float  # scripted offsets shrink with short histories

    def at(self, low: int, offset: int) -> int:
        """A scripted moment ``offset`` after start (scaled), not before ``low``."""
        return max(low, self.start + scaled(offset, self.scale))


# An action changes a live record and emits; it may return when to undelete it.
Action = Callable[[SalesRecord, Context, int], int | None]


def play(
    record: SalesRecord, ctx: Context, events: list[tuple[int, str]], actions: dict[str, Action]
) -> None:
    """Apply events in time order. Deleted records take no changes; cascades come from the
    parent account ("cascade_delete"/"cascade_undelete")."""
    heap = list(events)
    heapq.heapify(heap)
    while heap:
        when, kind = heapq.heappop(heap)
        if kind == "cascade_delete":
            if record.deleted_by is None:
                record.delete(when, "cascade")
            elif record.deleted_by == "own":
                record.deleted_by = "locked"  # already in the recycle bin: it stays there
        elif kind == "cascade_undelete":
            if record.deleted_by == "cascade":
                record.undelete(when)
        elif kind == "undelete":
            if record.deleted_by == "own":
                record.undelete(when)
        elif record.deleted_by is None:
            undelete_at = actions[kind](record, ctx, when)
            if undelete_at is not None:
                heapq.heappush(heap, (undelete_at, "undelete"))


def random_events(
    ctx: Context, low: int, counts: list[int], kinds: list[str], cumulative: list[float]
) -> list[tuple[int, str]]:
    if ctx.end <= low:
        return []
    dice = ctx.dice
    events = []
    for _ in range(dice.choice(counts)):
        when = dice.time(low, ctx.end)
        if dice.random() < 0.05:
            # Snap to the whole hour so the clock can land exactly on it.
            when = max(when - when % HOUR, low)
        events.append((when, dice.weighted(kinds, cumulative)))
    return events


def cumulative(weights: list[float]) -> list[float]:
    """Running sums, as ``random.choices`` makes them from weights."""
    out, total = [], 0.0
    for weight in weights:
        total += weight
        out.append(total)
    return out


# --- actions common to both objects -----------------------------------------------------------


def touch(record: SalesRecord, ctx: Context, when: int) -> None:
    record.emit(when)  # LastModifiedDate and SystemModstamp move, nothing else


def delete(record: SalesRecord, ctx: Context, when: int) -> int | None:
    """Delete; half of the deleted records come back from the recycle bin later."""
    record.delete(when, "own")
    if ctx.dice.random() < 0.5:
        back = record.stamps[-1] + ctx.dice.between(30, 36 * 60) * MINUTE
        if back < ctx.end:
            return back
    return None


def delete_for_good(record: SalesRecord, ctx: Context, when: int) -> None:
    record.delete(when, "own")


def owner_change(record: SalesRecord, ctx: Context, when: int) -> None:
    record.state["OwnerId"] = ctx.roster.pick(ctx.dice, when, exclude=record.state["OwnerId"])
    record.emit(when)


# --- accounts -----------------------------------------------------------------------------


def _account_type(record: SalesRecord, ctx: Context, when: int) -> None:
    current, dice = record.state["Type"], ctx.dice
    if current == "Prospect" and dice.random() < 0.7:
        record.state["Type"] = dice.choice(["Customer - Direct", "Customer - Channel"])
    elif dice.random() < 0.08:
        record.state["Type"] = None if current is not None else "Prospect"
    else:
        record.state["Type"] = dice.other(ACCOUNT_TYPES, current)
    record.emit(when)


def _account_other(record: SalesRecord, ctx: Context, when: int) -> None:
    state, dice = record.state, ctx.dice
    field = dice.choice(["Industry", "AnnualRevenue", "NumberOfEmployees"])
    if field == "Industry":
        state["Industry"] = dice.other(INDUSTRIES, state["Industry"])
    elif field == "AnnualRevenue":
        state["AnnualRevenue"] = float(dice.between(1, 2000) * 50_000)
    else:
        state["NumberOfEmployees"] = dice.between(5, 50_000)
    record.emit(when)


_ACCOUNT_ACTIONS: dict[str, Action] = {
    "type": _account_type,
    "owner": owner_change,
    "other": _account_other,
    "touch": touch,
    "delete": delete,
    "delete!": delete_for_good,
}
_ACCOUNT_KINDS = ["type", "owner", "other", "touch", "delete"]
_ACCOUNT_CUMULATIVE = cumulative([3.0, 2.5, 1.5, 1.0, 0.3])
_ACCOUNT_COUNTS = [1, 2, 2, 3, 3, 4]
_TYPE_CUMULATIVE = cumulative(_TYPE_WEIGHTS)


def _account_script(index: int, ctx: Context, low: int) -> list[tuple[int, str]] | None:
    at = ctx.at
    if index == 0:  # deleted on day one, undeleted on day two
        return [
            (at(low, 4 * HOUR), "delete!"),
            (at(low, DAY + 2 * HOUR), "undelete"),
            (at(low, 2 * DAY + 5 * HOUR), "type"),
        ]
    if index == 1:  # a type change exactly on a whole hour, then deleted for good
        return [(at(low, DAY), "type"), (at(low, DAY + 5 * HOUR), "delete!")]
    if index == 2:  # reassigned twice, converted once
        return [
            (at(low, 10 * HOUR), "owner"),
            (at(low, 2 * DAY + 3 * HOUR), "type"),
            (at(low, 3 * DAY), "owner"),
        ]
    return None


def iter_accounts(ctx: Context, count: int) -> Iterator[SalesRecord]:
    """The accounts, one after the other."""
    dice, start = ctx.dice, ctx.start
    used_names: set[str] = set()
    for index in range(count):
        words = (
            dice.choice(COMPANY_WORDS),
            dice.choice(COMPANY_KINDS),
            dice.choice(COMPANY_SUFFIXES),
        )
        name = " ".join(words)
        while name in used_names:
            name = f"{name.rsplit(' ', 1)[0]} {dice.choice(COMPANY_SUFFIXES)} {len(used_names)}"
        used_names.add(name)
        late = index >= 3 and dice.random() < 0.1 and ctx.end - start > 10 * HOUR
        if late:
            created = first_version = dice.time(start + 6 * HOUR, ctx.end - 4 * HOUR)
        else:
            created = dice.time(start - 1500 * DAY, start - DAY)
            whole_hour = index == 0 or dice.random() < 0.25
            first_version = start if whole_hour else dice.time(start, start + 2 * HOUR)
        country, calling_code = dice.choice(COUNTRIES)
        state: dict[str, Any] = {
            "Id": salesforce_id("001", index),
            "IsDeleted": False,
            "Name": name,
            "Type": dice.weighted(_TYPE_DRAW, _TYPE_CUMULATIVE),
            "Industry": dice.choice(INDUSTRIES),
            "BillingCountry": country,
            "Phone": f"+{calling_code} {dice.between(100, 999)} {dice.between(1000, 9999)}",
            "Website": f"https://www.{ascii_slug(name.split(' ')[0])}.example",
            "OwnerId": ctx.roster.pick(dice, first_version),
            "AnnualRevenue": None if dice.random() < 0.1 else float(dice.between(1, 2000) * 50_000),
            "NumberOfEmployees": None if dice.random() < 0.1 else dice.between(5, 50_000),
            "CreatedDate": stamp_text(created),
            "LastModifiedDate": None,
            "SystemModstamp": None,
        }
        account = SalesRecord("Account", state, created)
        account.emit(first_version)
        low = first_version + MINUTE
        events = _account_script(index, ctx, low)
        if events is None:
            events = random_events(ctx, low, _ACCOUNT_COUNTS, _ACCOUNT_KINDS, _ACCOUNT_CUMULATIVE)
        play(account, ctx, events, _ACCOUNT_ACTIONS)
        yield account
