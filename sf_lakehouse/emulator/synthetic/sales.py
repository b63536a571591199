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
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..history import format_sf_datetime, parse_sf_datetime
from ..objects import ACCOUNT_TYPES, INDUSTRIES
from .common import MS, ascii_slug, other, random_time, salesforce_id

__all__ = ["OPEN_STAGES", "STAGE_PROBABILITY", "Roster", "generate_sales"]

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
_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)


class Roster:
    """The users by time: who exists and is active at an instant (owners must be)."""

    def __init__(self, user_versions: list[dict[str, Any]]) -> None:
        timeline: dict[str, list[tuple[datetime, bool]]] = {}
        for version in user_versions:
            stamp = parse_sf_datetime(version["SystemModstamp"])
            timeline.setdefault(version["Id"], []).append((stamp, version.get("IsActive") is True))
        self._ids = list(timeline)
        self._stamps = {k: [s for s, _ in sorted(v)] for k, v in timeline.items()}
        self._active = {k: [a for _, a in sorted(v)] for k, v in timeline.items()}

    def available(self, user_id: str, when: datetime) -> bool:
        index = bisect.bisect_right(self._stamps.get(user_id, []), when)
        return bool(index) and self._active[user_id][index - 1]

    def pick(self, rng: random.Random, when: datetime, exclude: str | None = None) -> str:
        for _ in range(40):
            candidate = rng.choice(self._ids)
            if candidate != exclude and self.available(candidate, when):
                return candidate
        fallback = [u for u in self._ids if u != exclude and self.available(u, when)]
        return fallback[0] if fallback else self._ids[0]


class _Record:
    """One record's evolving state, the versions emitted so far and its deletions."""

    def __init__(self, object_name: str, state: dict[str, Any], created: datetime) -> None:
        self.object_name = object_name
        self.state = state
        self.created = created
        self.versions: list[dict[str, Any]] = []
        self.stamps: list[datetime] = []
        self.deleted_by: str | None = None  # "own", "cascade" or "locked" while deleted
        self.deletions: list[list[datetime | None]] = []  # [deleted at, undeleted at or None]

    @property
    def first(self) -> datetime:
        return self.stamps[0]

    def emit(self, when: datetime) -> datetime:
        """Record a version at ``when`` (bumped to stay strictly after the previous one)."""
        if self.stamps and when <= self.stamps[-1]:
            when = self.stamps[-1] + MS
        stamp = format_sf_datetime(when)
        self.state["LastModifiedDate"] = self.state["SystemModstamp"] = stamp
        self.versions.append({"attributes": {"type": self.object_name}, **self.state})
        self.stamps.append(when)
        return when

    def delete(self, when: datetime, cause: str) -> None:
        self.state["IsDeleted"] = True
        self.deletions.append([self.emit(when), None])
        self.deleted_by = cause

    def undelete(self, when: datetime) -> None:
        self.state["IsDeleted"] = False
        self.deletions[-1][1] = self.emit(when)
        self.deleted_by = None

    def value_at(self, name: str, when: datetime) -> Any:
        index = bisect.bisect_right(self.stamps, when)
        return self.versions[index - 1][name] if index else None

    def alive_at(self, when: datetime) -> bool:
        index = bisect.bisect_right(self.stamps, when)
        return bool(index) and not self.versions[index - 1]["IsDeleted"]


@dataclass
class _Context:
    rng: random.Random
    roster: Roster
    start: datetime
    end: datetime  # events stay before this (the history's end minus two hours)
    scale: float  # scripted offsets shrink with short histories

    def at(self, low: datetime, offset: timedelta) -> datetime:
        """A scripted moment ``offset`` after start (scaled), not before ``low``."""
        return max(low, self.start + offset * self.scale)


# An action changes a live record and emits; it may return when to undelete it.
_Action = Callable[[_Record, _Context, datetime], datetime | None]


def _play(
    record: _Record, ctx: _Context, events: list[tuple[datetime, str]], actions: dict[str, _Action]
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


def _random_events(
    ctx: _Context, low: datetime, counts: list[int], kinds: list[str], weights: list[float]
) -> list[tuple[datetime, str]]:
    if ctx.end <= low:
        return []
    events = []
    for _ in range(ctx.rng.choice(counts)):
        when = random_time(ctx.rng, low, ctx.end)
        if ctx.rng.random() < 0.05:
            # Snap to the whole hour so the clock can land exactly on it.
            when = max(when.replace(minute=0, second=0, microsecond=0), low)
        events.append((when, ctx.rng.choices(kinds, weights=weights)[0]))
    return events


# --- actions common to both objects -----------------------------------------------------------


def _touch(record: _Record, ctx: _Context, when: datetime) -> None:
    record.emit(when)  # LastModifiedDate and SystemModstamp move, nothing else


def _delete(record: _Record, ctx: _Context, when: datetime) -> datetime | None:
    """Delete; half of the deleted records come back from the recycle bin later."""
    record.delete(when, "own")
    if ctx.rng.random() < 0.5:
        back = record.stamps[-1] + timedelta(minutes=ctx.rng.randrange(30, 36 * 60))
        if back < ctx.end:
            return back
    return None


def _delete_for_good(record: _Record, ctx: _Context, when: datetime) -> None:
    record.delete(when, "own")


def _owner_change(record: _Record, ctx: _Context, when: datetime) -> None:
    record.state["OwnerId"] = ctx.roster.pick(ctx.rng, when, exclude=record.state["OwnerId"])
    record.emit(when)


# --- accounts -----------------------------------------------------------------------------


def _account_type(record: _Record, ctx: _Context, when: datetime) -> None:
    current, rng = record.state["Type"], ctx.rng
    if current == "Prospect" and rng.random() < 0.7:
        record.state["Type"] = rng.choice(["Customer - Direct", "Customer - Channel"])
    elif rng.random() < 0.08:
        record.state["Type"] = None if current is not None else "Prospect"
    else:
        record.state["Type"] = other(rng, ACCOUNT_TYPES, current)
    record.emit(when)


def _account_other(record: _Record, ctx: _Context, when: datetime) -> None:
    state, rng = record.state, ctx.rng
    field = rng.choice(["Industry", "AnnualRevenue", "NumberOfEmployees"])
    if field == "Industry":
        state["Industry"] = other(rng, INDUSTRIES, state["Industry"])
    elif field == "AnnualRevenue":
        state["AnnualRevenue"] = float(rng.randrange(1, 2000) * 50_000)
    else:
        state["NumberOfEmployees"] = rng.randrange(5, 50_000)
    record.emit(when)


_ACCOUNT_ACTIONS: dict[str, _Action] = {
    "type": _account_type,
    "owner": _owner_change,
    "other": _account_other,
    "touch": _touch,
    "delete": _delete,
    "delete!": _delete_for_good,
}
_ACCOUNT_KINDS = ["type", "owner", "other", "touch", "delete"]
_ACCOUNT_WEIGHTS = [3.0, 2.5, 1.5, 1.0, 0.3]


def _account_script(index: int, ctx: _Context, low: datetime) -> list[tuple[datetime, str]] | None:
    at = ctx.at
    if index == 0:  # deleted on day one, undeleted on day two
        return [
            (at(low, 4 * _HOUR), "delete!"),
            (at(low, _DAY + 2 * _HOUR), "undelete"),
            (at(low, 2 * _DAY + 5 * _HOUR), "type"),
        ]
    if index == 1:  # a type change exactly on a whole hour, then deleted for good
        return [(at(low, _DAY), "type"), (at(low, _DAY + 5 * _HOUR), "delete!")]
    if index == 2:  # reassigned twice, converted once
        return [
            (at(low, 10 * _HOUR), "owner"),
            (at(low, 2 * _DAY + 3 * _HOUR), "type"),
            (at(low, 3 * _DAY), "owner"),
        ]
    return None


def generate_accounts(ctx: _Context, count: int) -> list[_Record]:
    rng, start = ctx.rng, ctx.start
    used_names: set[str] = set()
    accounts = []
    for index in range(count):
        words = (rng.choice(COMPANY_WORDS), rng.choice(COMPANY_KINDS), rng.choice(COMPANY_SUFFIXES))
        name = " ".join(words)
        while name in used_names:
            name = f"{name.rsplit(' ', 1)[0]} {rng.choice(COMPANY_SUFFIXES)} {len(used_names)}"
        used_names.add(name)
        late = index >= 3 and rng.random() < 0.1 and ctx.end - start > 10 * _HOUR
        if late:
            created = first_version = random_time(rng, start + 6 * _HOUR, ctx.end - 4 * _HOUR)
        else:
            created = random_time(rng, start - 1500 * _DAY, start - _DAY)
            whole_hour = index == 0 or rng.random() < 0.25
            first_version = start if whole_hour else random_time(rng, start, start + 2 * _HOUR)
        country, calling_code = rng.choice(COUNTRIES)
        state: dict[str, Any] = {
            "Id": salesforce_id("001", index),
            "IsDeleted": False,
            "Name": name,
            "Type": rng.choices([*ACCOUNT_TYPES, None], weights=[30, 35, 12, 6, 4, 4, 4, 5])[0],
            "Industry": rng.choice(INDUSTRIES),
            "BillingCountry": country,
            "Phone": f"+{calling_code} {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}",
            "Website": f"https://www.{ascii_slug(name.split(' ')[0])}.example",
            "OwnerId": ctx.roster.pick(rng, first_version),
            "AnnualRevenue": None if rng.random() < 0.1 else float(rng.randrange(1, 2000) * 50_000),
            "NumberOfEmployees": None if rng.random() < 0.1 else rng.randrange(5, 50_000),
            "CreatedDate": format_sf_datetime(created),
            "LastModifiedDate": None,
            "SystemModstamp": None,
        }
        account = _Record("Account", state, created)
        account.emit(first_version)
        low = first_version + timedelta(minutes=1)
        events = _account_script(index, ctx, low)
        if events is None:
            events = _random_events(ctx, low, [1, 2, 2, 3, 3, 4], _ACCOUNT_KINDS, _ACCOUNT_WEIGHTS)
        _play(account, ctx, events, _ACCOUNT_ACTIONS)
        accounts.append(account)
    return accounts


# --- opportunities ------------------------------------------------------------------------


def _set_stage(state: dict[str, Any], stage: str, when: datetime) -> None:
    state["StageName"] = stage
    state["Probability"] = STAGE_PROBABILITY[stage]
    state["IsClosed"] = stage not in OPEN_STAGES
    state["IsWon"] = stage == "Closed Won"
    if state["IsClosed"]:
        state["CloseDate"] = when.date().isoformat()


def _revised(rng: random.Random, amount: float | None) -> float:
    if amount is None:
        return float(rng.randrange(10, 900) * 500)
    factor = 1 + rng.choice([-1, 1]) * rng.randrange(5, 31) / 100
    return float(max(round(amount * factor / 500), 1) * 500)


def _stage_change(record: _Record, ctx: _Context, when: datetime) -> None:
    state, rng = record.state, ctx.rng
    stage = state["StageName"]
    if stage not in OPEN_STAGES:
        _amount_change(record, ctx, when)  # closed deals only see their amount revised
        return
    index, roll = OPEN_STAGES.index(stage), rng.random()
    if roll < 0.12:
        new = "Closed Lost"
    elif roll < 0.2 and index > 0:
        new = OPEN_STAGES[index - 1]  # slipped back a stage
    elif stage == "Negotiation":
        new = "Closed Won" if rng.random() < 0.65 else "Closed Lost"
    else:
        new = OPEN_STAGES[index + 1]
    _set_stage(state, new, when)
    if rng.random() < 0.3:
        state["Amount"] = _revised(rng, state["Amount"])
    record.emit(when)


def _advance(record: _Record, ctx: _Context, when: datetime) -> None:
    stage = record.state["StageName"]
    if stage in OPEN_STAGES[:-1]:
        _set_stage(record.state, OPEN_STAGES[OPEN_STAGES.index(stage) + 1], when)
    record.emit(when)


def _win(record: _Record, ctx: _Context, when: datetime) -> None:
    _set_stage(record.state, "Closed Won", when)
    record.emit(when)


def _lose(record: _Record, ctx: _Context, when: datetime) -> None:
    _set_stage(record.state, "Closed Lost", when)
    record.emit(when)


def _amount_change(record: _Record, ctx: _Context, when: datetime) -> None:
    state, rng = record.state, ctx.rng
    if state["Amount"] is not None and rng.random() < 0.04:
        state["Amount"] = None
    else:
        state["Amount"] = _revised(rng, state["Amount"])
    record.emit(when)


def _close_date_push(record: _Record, ctx: _Context, when: datetime) -> None:
    state = record.state
    if state["IsClosed"]:
        _touch(record, ctx, when)
        return
    pushed = datetime.fromisoformat(state["CloseDate"]) + timedelta(days=ctx.rng.randrange(7, 46))
    state["CloseDate"] = pushed.date().isoformat()
    record.emit(when)


_OPPORTUNITY_ACTIONS: dict[str, _Action] = {
    "stage": _stage_change,
    "amount": _amount_change,
    "closedate": _close_date_push,
    "owner": _owner_change,
    "touch": _touch,
    "delete": _delete,
    "delete!": _delete_for_good,
    "advance": _advance,
    "win": _win,
    "lose": _lose,
}
_OPPORTUNITY_KINDS = ["stage", "amount", "closedate", "owner", "touch", "delete"]
_OPPORTUNITY_WEIGHTS = [4.0, 2.5, 1.0, 0.7, 1.0, 0.25]


def _opportunity_script(
    index: int, ctx: _Context, low: datetime
) -> list[tuple[datetime, str]] | None:
    at = ctx.at
    if index == 0:  # deleted and undeleted on day one
        return [
            (at(low, 6 * _HOUR), "delete!"),
            (at(low, 20 * _HOUR), "undelete"),
            (at(low, _DAY + 8 * _HOUR), "amount"),
        ]
    if index == 1:  # the whole way from Prospecting to Closed Won, amount revised
        return [
            (at(low, 5 * _HOUR), "advance"),
            (at(low, _DAY), "advance"),
            (at(low, _DAY + 4 * _HOUR), "amount"),
            (at(low, 2 * _DAY + 2 * _HOUR), "advance"),
            (at(low, 3 * _DAY + _HOUR), "win"),
        ]
    if index == 2:  # moved on, then deleted for good on day two
        return [(at(low, 2 * _HOUR), "stage"), (at(low, _DAY + 3 * _HOUR), "delete!")]
    if index == 3:  # revised, reassigned, then lost
        return [
            (at(low, 9 * _HOUR), "amount"),
            (at(low, _DAY + 6 * _HOUR), "owner"),
            (at(low, 2 * _DAY + 6 * _HOUR), "lose"),
        ]
    return None


def _pick_account(
    ctx: _Context, accounts: list[_Record], when: datetime
) -> tuple[_Record | None, datetime]:
    """A random account that exists and is not deleted at ``when`` (or a little later)."""
    for _ in range(40 if accounts else 0):
        account = ctx.rng.choice(accounts)
        moment = max(when, account.first + timedelta(seconds=1))
        if account.alive_at(moment):
            return account, moment
    return None, when


def generate_opps(ctx: _Context, count: int, accounts: list[_Record]) -> list[_Record]:
    rng, start = ctx.rng, ctx.start
    opportunities = []
    for index in range(count):
        scripted = index < 4
        late = not scripted and rng.random() < 0.15 and ctx.end - start > 10 * _HOUR
        if late:
            wanted = random_time(rng, start + 6 * _HOUR, ctx.end - 4 * _HOUR)
        else:
            wanted = start if rng.random() < 0.2 else random_time(rng, start, start + 2 * _HOUR)
        if scripted and len(accounts) > 2:
            # The scripted account 2 is never deleted: the scripts below play out in full.
            account: _Record | None = accounts[2]
            first_version = max(wanted, accounts[2].first + timedelta(seconds=1))
        else:
            account, first_version = _pick_account(ctx, accounts, wanted)
        if late:
            created = first_version
        else:
            low = max(start - 400 * _DAY, account.created if account else start - 400 * _DAY)
            created = random_time(rng, low, start - _HOUR)
        if index in (1, 3):
            stage = OPEN_STAGES[index // 2]
        elif rng.random() < 0.92:
            stage = rng.choices(OPEN_STAGES, weights=[35, 30, 20, 15])[0]
        else:
            stage = rng.choice(["Closed Won", "Closed Lost"])
        owner = account.value_at("OwnerId", first_version) if account else None
        if owner is None or rng.random() < 0.3 or not ctx.roster.available(owner, first_version):
            owner = ctx.roster.pick(rng, first_version)
        product = rng.choice(PRODUCTS)
        state: dict[str, Any] = {
            "Id": salesforce_id("006", index),
            "IsDeleted": False,
            "AccountId": account.state["Id"] if account else None,
            "Name": f"{account.state['Name']} - {product}" if account else product,
            "StageName": None,
            "Amount": None if rng.random() < 0.05 else float(rng.randrange(10, 900) * 500),
            "Probability": None,
            "CloseDate": (
                first_version.date() + timedelta(days=rng.randrange(14, 150))
            ).isoformat(),
            "OwnerId": owner,
            "IsClosed": False,
            "IsWon": False,
            "CreatedDate": format_sf_datetime(created),
            "LastModifiedDate": None,
            "SystemModstamp": None,
        }
        _set_stage(state, stage, first_version - rng.randrange(1, 60) * _DAY)
        opportunity = _Record("Opportunity", state, created)
        opportunity.emit(first_version)
        low = first_version + timedelta(minutes=1)
        events = _opportunity_script(index, ctx, low)
        if events is None:
            events = _random_events(
                ctx, low, [1, 2, 2, 3, 3, 4, 4, 5], _OPPORTUNITY_KINDS, _OPPORTUNITY_WEIGHTS
            )
        # Salesforce's cascade: the account's deletes and undeletes reach its opportunities.
        for deleted, undeleted in account.deletions if account else []:
            if deleted is not None and deleted > first_version:
                events.append((deleted + rng.randrange(1, 500) * MS, "cascade_delete"))
                if undeleted is not None:
                    events.append((undeleted + rng.randrange(1, 500) * MS, "cascade_undelete"))
        _play(opportunity, ctx, events, _OPPORTUNITY_ACTIONS)
        opportunities.append(opportunity)
    return opportunities


def generate_sales(
    rng: random.Random,
    user_versions: list[dict[str, Any]],
    accounts: int,
    opportunities: int,
    start: datetime,
    days: int,
) -> list[dict[str, Any]]:
    """Account and Opportunity histories (unsorted) owned by the given users."""
    ctx = _Context(
        rng=rng,
        roster=Roster(user_versions),
        start=start,
        end=start + timedelta(days=days) - 2 * _HOUR,
        scale=min(1.0, days / 6),
    )
    account_records = generate_accounts(ctx, accounts)
    opportunity_records = generate_opps(ctx, opportunities, account_records)
    return [v for record in (*account_records, *opportunity_records) for v in record.versions]
