"""The emulator's history file: JSON Lines, one version of a User record per line.

Each line holds a record exactly as Salesforce returns it (API field names, datetimes like
``2026-03-01T08:00:00.000+0000``); a field that is missing on a line is null for that version.
Versions of one ``Id`` must have strictly increasing ``SystemModstamp`` (lines may come in any
order; they are sorted on load).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["HistoryError", "format_sf_datetime", "load_history", "parse_sf_datetime"]


class HistoryError(ValueError):
    """The history file cannot be used; the message names the file, the line and the fix."""


def parse_sf_datetime(value: str) -> datetime:
    """Parse a Salesforce/ISO-8601 datetime into an aware UTC datetime.

    Accepts ``2026-03-01T08:00:00.000+0000`` (what Salesforce returns), ``...Z``, ``...+01:00``
    and, for convenience on the command line, naive values (taken as UTC).
    """
    if not isinstance(value, str) or "T" not in value:
        raise ValueError(f"not a datetime: {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_sf_datetime(value: datetime) -> str:
    """Format like the Salesforce REST API: ``2026-03-01T08:00:00.000+0000`` (UTC, milliseconds)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def load_history(path: Path) -> list[dict[str, Any]]:
    """Read and validate a history file; return its versions ordered by (SystemModstamp, Id)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the history file ({exc.strerror}).") from exc

    versions: list[tuple[datetime, int, dict[str, Any]]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(
                f"{where}: not valid JSON ({exc.msg}). Each line must be one JSON object "
                "holding one version of a User record."
            ) from exc
        if not isinstance(record, dict):
            raise HistoryError(f"{where}: expected a JSON object, got {type(record).__name__}.")
        if not record.get("Id"):
            raise HistoryError(f"{where}: the record has no 'Id'. Add the 18-character User Id.")
        stamp = record.get("SystemModstamp")
        if not stamp:
            raise HistoryError(
                f"{where}: the record has no 'SystemModstamp'. Add it, formatted like "
                "2026-03-01T08:00:00.000+0000."
            )
        try:
            parsed = parse_sf_datetime(stamp)
        except (TypeError, ValueError) as exc:
            raise HistoryError(
                f"{where}: SystemModstamp {stamp!r} is not a datetime. Use the Salesforce format "
                "2026-03-01T08:00:00.000+0000."
            ) from exc
        versions.append((parsed, line_no, record))

    # Check ordering per Id after sorting, because the file order is allowed to be arbitrary.
    last_seen: dict[str, tuple[datetime, int]] = {}
    for stamp, line_no, record in sorted(versions, key=lambda v: (v[2]["Id"], v[0], v[1])):
        previous = last_seen.get(record["Id"])
        if previous is not None and previous[0] == stamp:
            raise HistoryError(
                f"{path}, line {line_no}: Id {record['Id']} has two versions with SystemModstamp "
                f"{format_sf_datetime(stamp)} (the other is on line {previous[1]}). Versions of "
                "one Id need strictly increasing SystemModstamp: remove the duplicate or bump "
                "one of them by a millisecond."
            )
        last_seen[record["Id"]] = (stamp, line_no)

    versions.sort(key=lambda v: (v[0], v[2]["Id"]))
    return [record for _, _, record in versions]
