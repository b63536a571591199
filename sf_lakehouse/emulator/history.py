"""The emulator's history file: JSON Lines, one version of one record per line.

Each line holds a record exactly as Salesforce returns it (API field names, datetimes like
``2026-03-01T08:00:00.000+0000``); a field that is missing on a line is null for that version.
``"attributes": {"type": "Account"}`` names the record's object; a line without ``attributes``
is a ``User``. Objects are the standard ones the emulator knows (``STANDARD_OBJECT_NAMES``) or
custom ones (API name ending ``__c``).

Versions of one ``Id`` must have strictly increasing ``SystemModstamp`` (lines may come in any
order; they are sorted on load) and all belong to one object. ``"IsDeleted": true`` deletes the
record from that version's SystemModstamp on; a later version without it (or with ``false``)
undeletes it. ``User`` has no IsDeleted field (Salesforce never deletes users).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OBJECT",
    "STANDARD_OBJECT_NAMES",
    "HistoryError",
    "Version",
    "check_history",
    "format_sf_datetime",
    "load_history",
    "object_of",
    "parse_sf_datetime",
]

DEFAULT_OBJECT = "User"
# The standard objects the emulator serves (their fields live in ``objects.py``).
STANDARD_OBJECT_NAMES = ("Account", "Contact", "Opportunity", "User")
_CUSTOM_OBJECT = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*__c")


class HistoryError(ValueError):
    """The history cannot be used; the message names the file, the line and the fix."""


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


def object_of(record: dict[str, Any]) -> str:
    """The object a history record belongs to: ``attributes.type``, or ``User`` without it.

    Handy for splitting a generated history, e.g. ``[r for r in h if object_of(r) == "User"]``.
    """
    attributes = record.get("attributes")
    if isinstance(attributes, dict) and isinstance(attributes.get("type"), str):
        return attributes["type"]
    return DEFAULT_OBJECT


@dataclass(frozen=True)
class Version:
    """One validated history version: its object, stamp and fields (``attributes`` removed)."""

    object_name: str
    stamp: datetime
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        return self.fields["Id"]

    @property
    def is_deleted(self) -> bool:
        return self.fields.get("IsDeleted") is True


def _object_name(record: dict[str, Any], where: str) -> str:
    if "attributes" not in record:
        return DEFAULT_OBJECT
    attributes = record["attributes"]
    example = 'Write it like "attributes": {"type": "Account"}, or leave it out for a User.'
    if not isinstance(attributes, dict) or not isinstance(attributes.get("type"), str):
        raise HistoryError(
            f"{where}: 'attributes' must be an object with a 'type' string naming the record's "
            f"object. {example}"
        )
    name = attributes["type"]
    if name in STANDARD_OBJECT_NAMES or _CUSTOM_OBJECT.fullmatch(name):
        return name
    known = ", ".join(STANDARD_OBJECT_NAMES)
    hint = next(
        (f" Did you mean '{s}'?" for s in STANDARD_OBJECT_NAMES if s.lower() == name.lower()), ""
    )
    raise HistoryError(
        f"{where}: unknown object {name!r} in attributes.type.{hint} Use one of the standard "
        f"objects ({known}) or a custom object API name ending in '__c' (e.g. 'Invoice__c')."
    )


def check_record(record: Any, where: str) -> Version:
    """Validate one history record; ``where`` (e.g. "file, line 3") prefixes every error."""
    if not isinstance(record, dict):
        raise HistoryError(f"{where}: expected a JSON object, got {type(record).__name__}.")
    object_name = _object_name(record, where)
    if not record.get("Id") or not isinstance(record["Id"], str):
        raise HistoryError(
            f"{where}: the record has no 'Id'. Add the record's 18-character Salesforce Id."
        )
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
    if "IsDeleted" in record:
        deleted = record["IsDeleted"]
        if object_name == DEFAULT_OBJECT:
            raise HistoryError(
                f"{where}: a User has no IsDeleted field (Salesforce deactivates users, it never "
                "deletes them). Remove IsDeleted, or set IsActive to false; if this is another "
                'object\'s record, name it with "attributes": {"type": "Account"}.'
            )
        if deleted is not None and not isinstance(deleted, bool):
            raise HistoryError(
                f"{where}: IsDeleted must be true or false, got {json.dumps(deleted)}. Write "
                "true to delete the record from this version on, false (or nothing) otherwise."
            )
    fields = {k: v for k, v in record.items() if k != "attributes"}
    return Version(object_name, parsed, fields)


def check_history(items: Iterable[tuple[Version, int]], name: Callable[[int], str]) -> None:
    """Cross-version rules: one object per Id, strictly increasing SystemModstamp per Id.

    ``items`` pairs each version with its position; ``name(position)`` says where it is.
    """
    ordered = sorted(items, key=lambda item: (item[0].id, item[0].stamp, item[1]))
    previous: tuple[Version, int] | None = None
    for version, position in ordered:
        if previous is not None and previous[0].id == version.id:
            other, other_position = previous
            if other.object_name != version.object_name:
                raise HistoryError(
                    f"{name(position)}: Id {version.id} belongs to {version.object_name} here "
                    f"but to {other.object_name} at {name(other_position)}. An Id names one "
                    "record of one object: fix attributes.type or the Id."
                )
            if other.stamp == version.stamp:
                raise HistoryError(
                    f"{name(position)}: Id {version.id} has two versions with SystemModstamp "
                    f"{format_sf_datetime(version.stamp)} (the other is at "
                    f"{name(other_position)}). Versions of one Id need strictly increasing "
                    "SystemModstamp: remove the duplicate or bump one of them by a millisecond."
                )
        previous = (version, position)


def load_history(path: Path) -> list[dict[str, Any]]:
    """Read and validate a history file; return its versions ordered by (SystemModstamp, Id).

    The records come back as written (``attributes`` included); ``object_of`` names their
    object.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the history file ({exc.strerror}).") from exc

    def where(line_no: int) -> str:
        return f"{path}, line {line_no}"

    items: list[tuple[Version, int]] = []
    records: dict[int, dict[str, Any]] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(
                f"{where(line_no)}: not valid JSON ({exc.msg}). Each line must be one JSON "
                "object holding one version of a record."
            ) from exc
        items.append((check_record(record, where(line_no)), line_no))
        records[line_no] = record
    check_history(items, where)
    items.sort(key=lambda item: (item[0].stamp, item[0].id))
    return [records[line_no] for _, line_no in items]
