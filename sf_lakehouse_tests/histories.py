"""Builders of emulator histories (one dict per record version, as Salesforce returns it), shared
by the tests: one place to say what a User, Account or Opportunity version looks like."""

from __future__ import annotations

import datetime as dt
from typing import Any

BASE = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def sf_datetime(moment: dt.datetime) -> str:
    """`2026-03-01T08:00:00.000+0000`, as the REST API writes datetimes."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def at(minutes: float) -> dt.datetime:
    return BASE + dt.timedelta(minutes=minutes)


def _stamps(stamp: dt.datetime) -> dict[str, str]:
    text = sf_datetime(stamp)
    return {"CreatedDate": text, "LastModifiedDate": text, "SystemModstamp": text}


def user(
    user_id: str,
    stamp: dt.datetime | float,
    division: str | None,
    phase: str | None = "Planning",
    **fields: Any,
) -> dict[str, Any]:
    """A User version (no `attributes`: a line without a type is a User)."""
    moment = at(stamp) if isinstance(stamp, int | float) else stamp
    return {
        "Id": user_id,
        "Username": f"{user_id}@acme.example",
        "Name": "Chloé O'Neil",
        "FirstName": "Chloé",
        "LastName": "O'Neil",
        "Email": f"{user_id}@acme.example",
        "IsActive": True,
        "Division": division,
        "Audit_Phase__c": phase,
        "Title": "Auditor",
        "Department": "Audit",
        **_stamps(moment),
        **fields,
    }


def account(
    account_id: str,
    stamp: dt.datetime | float,
    account_type: str | None,
    owner_id: str,
    *,
    deleted: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    moment = at(stamp) if isinstance(stamp, int | float) else stamp
    return {
        "attributes": {"type": "Account"},
        "Id": account_id,
        "Name": f"Account {account_id[-3:]}",
        "Type": account_type,
        "Industry": "Banking",
        "BillingCountry": "Ireland",
        "OwnerId": owner_id,
        "IsDeleted": deleted,
        **_stamps(moment),
        **fields,
    }


def opportunity(
    opportunity_id: str,
    stamp: dt.datetime | float,
    stage: str,
    amount: float | None,
    account_id: str,
    owner_id: str,
    *,
    deleted: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    moment = at(stamp) if isinstance(stamp, int | float) else stamp
    return {
        "attributes": {"type": "Opportunity"},
        "Id": opportunity_id,
        "Name": f"Deal {opportunity_id[-3:]}",
        "AccountId": account_id,
        "StageName": stage,
        "Amount": amount,
        "CloseDate": "2026-06-30",
        "OwnerId": owner_id,
        "IsDeleted": deleted,
        **_stamps(moment),
        **fields,
    }


def record_type(version: dict[str, Any]) -> str:
    return (version.get("attributes") or {}).get("type", "User")
