"""The Opportunities of the synthetic org: stages, amounts, close dates, owners, deletes and the
cascade from their account (see ``sales`` for the traits and the shared machinery)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from .common import DAY, HOUR, MINUTE, MS, SECOND, Dice, date_text, salesforce_id, stamp_text
from .sales import (
    OPEN_STAGES,
    PRODUCTS,
    STAGE_PROBABILITY,
    Action,
    Context,
    SalesRecord,
    cumulative,
    delete,
    delete_for_good,
    owner_change,
    play,
    random_events,
    touch,
)

__all__ = ["iter_opportunities"]


def _set_stage(state: dict[str, Any], stage: str, when: int) -> None:
    state["StageName"] = stage
    state["Probability"] = STAGE_PROBABILITY[stage]
    state["IsClosed"] = stage not in OPEN_STAGES
    state["IsWon"] = stage == "Closed Won"
    if state["IsClosed"]:
        state["CloseDate"] = date_text(when)


def _revised(dice: Dice, amount: float | None) -> float:
    if amount is None:
        return float(dice.between(10, 900) * 500)
    factor = 1 + dice.choice([-1, 1]) * dice.between(5, 31) / 100
    return float(max(round(amount * factor / 500), 1) * 500)


def _stage_change(record: SalesRecord, ctx: Context, when: int) -> None:
    state, dice = record.state, ctx.dice
    stage = state["StageName"]
    if stage not in OPEN_STAGES:
        _amount_change(record, ctx, when)  # closed deals only see their amount revised
        return
    index, roll = OPEN_STAGES.index(stage), dice.random()
    if roll < 0.12:
        new = "Closed Lost"
    elif roll < 0.2 and index > 0:
        new = OPEN_STAGES[index - 1]  # slipped back a stage
    elif stage == "Negotiation":
        new = "Closed Won" if dice.random() < 0.65 else "Closed Lost"
    else:
        new = OPEN_STAGES[index + 1]
    _set_stage(state, new, when)
    if dice.random() < 0.3:
        state["Amount"] = _revised(dice, state["Amount"])
    record.emit(when)


def _advance(record: SalesRecord, ctx: Context, when: int) -> None:
    stage = record.state["StageName"]
    if stage in OPEN_STAGES[:-1]:
        _set_stage(record.state, OPEN_STAGES[OPEN_STAGES.index(stage) + 1], when)
    record.emit(when)


def _win(record: SalesRecord, ctx: Context, when: int) -> None:
    _set_stage(record.state, "Closed Won", when)
    record.emit(when)


def _lose(record: SalesRecord, ctx: Context, when: int) -> None:
    _set_stage(record.state, "Closed Lost", when)
    record.emit(when)


def _amount_change(record: SalesRecord, ctx: Context, when: int) -> None:
    state, dice = record.state, ctx.dice
    if state["Amount"] is not None and dice.random() < 0.04:
        state["Amount"] = None
    else:
        state["Amount"] = _revised(dice, state["Amount"])
    record.emit(when)


def _close_date_push(record: SalesRecord, ctx: Context, when: int) -> None:
    state = record.state
    if state["IsClosed"]:
        touch(record, ctx, when)
        return
    pushed = date.fromisoformat(state["CloseDate"]) + timedelta(days=ctx.dice.between(7, 46))
    state["CloseDate"] = pushed.isoformat()
    record.emit(when)


_ACTIONS: dict[str, Action] = {
    "stage": _stage_change,
    "amount": _amount_change,
    "closedate": _close_date_push,
    "owner": owner_change,
    "touch": touch,
    "delete": delete,
    "delete!": delete_for_good,
    "advance": _advance,
    "win": _win,
    "lose": _lose,
}
_KINDS = ["stage", "amount", "closedate", "owner", "touch", "delete"]
_CUMULATIVE = cumulative([4.0, 2.5, 1.0, 0.7, 1.0, 0.25])
_COUNTS = [1, 2, 2, 3, 3, 4, 4, 5]
_STAGE_CUMULATIVE = cumulative([35.0, 30.0, 20.0, 15.0])


def _script(index: int, ctx: Context, low: int) -> list[tuple[int, str]] | None:
    at = ctx.at
    if index == 0:  # deleted and undeleted on day one
        return [
            (at(low, 6 * HOUR), "delete!"),
            (at(low, 20 * HOUR), "undelete"),
            (at(low, DAY + 8 * HOUR), "amount"),
        ]
    if index == 1:  # the whole way from Prospecting to Closed Won, amount revised
        return [
            (at(low, 5 * HOUR), "advance"),
            (at(low, DAY), "advance"),
            (at(low, DAY + 4 * HOUR), "amount"),
            (at(low, 2 * DAY + 2 * HOUR), "advance"),
            (at(low, 3 * DAY + HOUR), "win"),
        ]
    if index == 2:  # moved on, then deleted for good on day two
        return [(at(low, 2 * HOUR), "stage"), (at(low, DAY + 3 * HOUR), "delete!")]
    if index == 3:  # revised, reassigned, then lost
        return [
            (at(low, 9 * HOUR), "amount"),
            (at(low, DAY + 6 * HOUR), "owner"),
            (at(low, 2 * DAY + 6 * HOUR), "lose"),
        ]
    return None


def _pick_account(
    ctx: Context, accounts: list[SalesRecord], when: int
) -> tuple[SalesRecord | None, int]:
    """A random account that exists and is not deleted at ``when`` (or a little later)."""
    for _ in range(40 if accounts else 0):
        account = ctx.dice.choice(accounts)
        moment = max(when, account.first + SECOND)
        if account.alive_at(moment):
            return account, moment
    return None, when


def iter_opportunities(
    ctx: Context, count: int, accounts: list[SalesRecord]
) -> Iterator[SalesRecord]:
    """The opportunities, one after the other, on the given accounts."""
    dice, start = ctx.dice, ctx.start
    for index in range(count):
        scripted = index < 4
        late = not scripted and dice.random() < 0.15 and ctx.end - start > 10 * HOUR
        if late:
            wanted = dice.time(start + 6 * HOUR, ctx.end - 4 * HOUR)
        else:
            wanted = start if dice.random() < 0.2 else dice.time(start, start + 2 * HOUR)
        account: SalesRecord | None
        if scripted and len(accounts) > 2:
            # The scripted account 2 is never deleted: the scripts below play out in full.
            account = accounts[2]
            first_version = max(wanted, accounts[2].first + SECOND)
        else:
            account, first_version = _pick_account(ctx, accounts, wanted)
        if late:
            created = first_version
        else:
            low = max(start - 400 * DAY, account.created if account else start - 400 * DAY)
            created = dice.time(low, start - HOUR)
        if index in (1, 3):
            stage = OPEN_STAGES[index // 2]
        elif dice.random() < 0.92:
            stage = dice.weighted(OPEN_STAGES, _STAGE_CUMULATIVE)
        else:
            stage = dice.choice(["Closed Won", "Closed Lost"])
        owner = account.owner_at(first_version) if account else None
        if owner is None or dice.random() < 0.3 or not ctx.roster.available(owner, first_version):
            owner = ctx.roster.pick(dice, first_version)
        product = dice.choice(PRODUCTS)
        account_name = account.state["Name"] if account else None
        state: dict[str, Any] = {
            "Id": salesforce_id("006", index),
            "IsDeleted": False,
            "AccountId": account.state["Id"] if account else None,
            "Name": f"{account_name} - {product}" if account else product,
            "StageName": None,
            "Amount": None if dice.random() < 0.05 else float(dice.between(10, 900) * 500),
            "Probability": None,
            "CloseDate": date_text(first_version + dice.between(14, 150) * DAY),
            "OwnerId": owner,
            "IsClosed": False,
            "IsWon": False,
            "CreatedDate": stamp_text(created),
            "LastModifiedDate": None,
            "SystemModstamp": None,
        }
        _set_stage(state, stage, first_version - dice.between(1, 60) * DAY)
        opportunity = SalesRecord("Opportunity", state, created)
        opportunity.emit(first_version)
        low = first_version + MINUTE
        events = _script(index, ctx, low)
        if events is None:
            events = random_events(ctx, low, _COUNTS, _KINDS, _CUMULATIVE)
        # Salesforce's cascade: the account's deletes and undeletes reach its opportunities.
        for deleted, undeleted in account.deletions if account else []:
            if deleted is not None and deleted > first_version:
                events.append((deleted + dice.between(1, 500) * MS, "cascade_delete"))
                if undeleted is not None:
                    events.append((undeleted + dice.between(1, 500) * MS, "cascade_undelete"))
        play(opportunity, ctx, events, _ACTIONS)
        yield opportunity
