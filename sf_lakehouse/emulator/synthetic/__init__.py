"""A deterministic synthetic Salesforce org: User, Account and Opportunity histories.

``generate_org(users, seed, start, days, accounts=..., opportunities=...)`` returns history
versions (the emulator's history format, ordered by (SystemModstamp, Id)) using only random
generators seeded from ``seed``: the same arguments always give identical output.
``write_org(path, ...)`` writes the same versions as JSON Lines without holding them (a million
users in a couple of minutes): grouped by object and record, each record's versions in time
order (a history file may list its lines in any order; the emulator sorts them on load).

- ``users.py``: the Users (no ``attributes``, as a history line without it is a User); their
  traits exercise the SCD2 rule (division and audit-phase changes, nulls, reverts, bursts,
  touches, late joiners, a custom field appearing on day three, whole-hour versions, names
  with accents and apostrophes). This part is the same for a seed whatever the other objects.
- ``sales.py`` / ``opportunities.py``: Accounts and Opportunities (``"attributes": {"type":
  ...}``, ``IsDeleted``) owned by those users, Opportunities belonging to those Accounts, with
  type, owner, stage and amount changes and deletes/undeletes (cascading from an account to its
  opportunities).
- ``traits.py``: ``trait_summary`` counts every trait from the records themselves.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import DAY, HOUR, Dice, micros, salesforce_id
from .opportunities import iter_opportunities
from .sales import Context, Roster, SalesRecord, iter_accounts
from .traits import trait_summary
from .users import iter_users

try:  # a dependency of dagster-dbt; ten times faster than json for the big files
    import orjson
except ImportError:  # pragma: no cover - the standard library does the same, slower
    orjson = None

__all__ = [
    "generate_org",
    "iter_org",
    "salesforce_id",
    "trait_summary",
    "write_history",
    "write_org",
]


def _counts(users: int, days: int, accounts: int | None, opportunities: int | None) -> tuple:
    if users < 1 or days < 1:
        raise ValueError("users and days must be at least 1")
    accounts = max(3, users // 3) if accounts is None else accounts
    opportunities = max(4, users // 2) if opportunities is None else opportunities
    if accounts < 0 or opportunities < 0:
        raise ValueError("accounts and opportunities cannot be negative")
    return accounts, opportunities


def iter_org(
    users: int = 300,
    seed: int = 7,
    start: datetime = datetime(2026, 3, 1, 8, tzinfo=UTC),
    days: int = 6,
    *,
    accounts: int | None = None,
    opportunities: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The org's records one at a time: the versions of each User, Account, Opportunity.

    The versions are those of ``generate_org`` (which sorts them); nothing but the accounts'
    owners and deletions (for their opportunities) is kept between records.
    """
    accounts, opportunities = _counts(users, days, accounts, opportunities)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    begin = micros(start.astimezone(UTC))
    roster = Roster()
    for user in iter_users(Dice(random.Random(seed)), users, begin, days):
        roster.add(user.state["Id"], user.stamps, user.active)
        yield user.versions
    # A generator of its own, so the User part of a seed never depends on the other objects.
    ctx = Context(
        dice=Dice(random.Random(f"sf-lakehouse-sales:{seed}")),
        roster=roster,
        start=begin,
        end=begin + days * DAY - 2 * HOUR,
        scale=min(1.0, days / 6),
    )
    kept: list[SalesRecord] = []
    for account in iter_accounts(ctx, accounts):
        yield account.versions
        account.versions = []  # what the opportunities need stays: stamps, owners, deletions
        kept.append(account)
    for opportunity in iter_opportunities(ctx, opportunities, kept):
        yield opportunity.versions


def generate_org(
    users: int = 300,
    seed: int = 7,
    start: datetime = datetime(2026, 3, 1, 8, tzinfo=UTC),
    days: int = 6,
    *,
    accounts: int | None = None,
    opportunities: int | None = None,
) -> list[dict[str, Any]]:
    """Generate the org's history: versions of every object, ordered by (SystemModstamp, Id).

    ``accounts`` defaults to ``max(3, users // 3)`` and ``opportunities`` to
    ``max(4, users // 2)``; pass 0 for a history of Users alone.
    """
    records = iter_org(users, seed, start, days, accounts=accounts, opportunities=opportunities)
    versions = [version for record in records for version in record]
    versions.sort(key=lambda v: (v["SystemModstamp"], v["Id"]))
    return versions


def write_history(records: Iterable[dict[str, Any]], path: Path) -> None:
    """Write versions as JSON Lines (UTF-8, one version per line) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_org(path: Path, **options: Any) -> dict[str, int]:
    """Write ``iter_org(**options)`` to ``path`` as JSON Lines, record by record; return counts
    (``versions``, ``users``, ``accounts``, ``opportunities`` and the deletions and undeletes
    of accounts and opportunities, as ``trait_summary`` names them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    keys = {"User": "users", "Account": "accounts", "Opportunity": "opportunities"}
    if orjson is not None:
        encode = orjson.dumps
    else:
        text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        encode = lambda value: text(value).encode("utf-8")  # noqa: E731
    with path.open("wb") as handle:
        for versions in iter_org(**options):
            kind = versions[0].get("attributes", {}).get("type", "User")
            counts[keys[kind]] += 1
            counts["versions"] += len(versions)
            handle.write(b"".join([encode(v) + b"\n" for v in versions]))
            if kind != "User":
                key = "account" if kind == "Account" else "opportunity"
                was = False
                for version in versions:
                    now = version["IsDeleted"] is True
                    counts[f"{key}_deletions"] += now and not was
                    counts[f"{key}_undeletes"] += was and not now
                    was = now
    names = ["versions", "users", "accounts", "opportunities"]
    names += [f"{k}_{e}" for k in ("account", "opportunity") for e in ("deletions", "undeletes")]
    return {name: counts[name] for name in names}
