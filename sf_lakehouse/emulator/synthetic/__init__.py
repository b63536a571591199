"""A deterministic synthetic Salesforce org: User, Account and Opportunity histories.

``generate_org(users, seed, start, days, accounts=..., opportunities=...)`` returns history
versions (the emulator's history format, ordered by (SystemModstamp, Id)) using only random
generators seeded from ``seed``: the same arguments always give identical output.

- ``users.py``: the Users (no ``attributes``, as a history line without it is a User); their
  traits exercise the SCD2 rule (division and audit-phase changes, nulls, reverts, bursts,
  touches, late joiners, a custom field appearing on day three, whole-hour versions, names
  with accents and apostrophes). This part is the same for a seed whatever the other objects.
- ``sales.py``: Accounts and Opportunities (``"attributes": {"type": ...}``, ``IsDeleted``)
  owned by those users, Opportunities belonging to those Accounts, with type, owner, stage and
  amount changes and deletes/undeletes (cascading from an account to its opportunities).
- ``traits.py``: ``trait_summary`` counts every trait from the records themselves.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import salesforce_id
from .sales import generate_sales
from .traits import trait_summary
from .users import generate_users

__all__ = ["generate_org", "salesforce_id", "trait_summary", "write_history"]


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
    if users < 1 or days < 1:
        raise ValueError("users and days must be at least 1")
    accounts = max(3, users // 3) if accounts is None else accounts
    opportunities = max(4, users // 2) if opportunities is None else opportunities
    if accounts < 0 or opportunities < 0:
        raise ValueError("accounts and opportunities cannot be negative")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    user_versions = generate_users(random.Random(seed), users, start, days)
    # A generator of its own, so the User part of a seed never depends on the other objects.
    sales_rng = random.Random(f"sf-lakehouse-sales:{seed}")
    sales = generate_sales(sales_rng, user_versions, accounts, opportunities, start, days)
    versions = [*user_versions, *sales]
    versions.sort(key=lambda v: (v["SystemModstamp"], v["Id"]))
    return versions


def write_history(records: Iterable[dict[str, Any]], path: Path) -> None:
    """Write versions as JSON Lines (UTF-8, one version per line) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
