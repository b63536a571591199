"""The org the emulator serves: every object's record versions, seen through a clock.

Clock semantics: a version is visible when its SystemModstamp <= now; per Id, the latest
visible version is the record (deleted or not according to that version). ``query`` hides
deleted records, ``queryAll`` returns them with ``IsDeleted: true``. An object's fields at a
moment are its standard fields plus those of its visible versions (so a custom field appears in
describe when its first version becomes visible).

The standard objects exist whatever the history holds; a custom object exists when the history
has records of it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import soql
from .history import Version, check_history, check_record
from .objects import STANDARD_OBJECTS, Field, ObjectSpec, custom_object, fields_of

__all__ = ["Org", "Schema"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Schema:
    """An object's fields at one moment, for describe and for SOQL."""

    spec: ObjectSpec
    fields: tuple[Field, ...]
    soql: soql.ObjectSchema


class _ObjectHistory:
    """The versions of one object, indexed for "visible at t" lookups."""

    def __init__(self, spec: ObjectSpec, versions: list[Version]) -> None:
        self.spec = spec
        # Sorted by SystemModstamp, so "visible at t" is a prefix of these lists.
        versions = sorted(versions, key=lambda v: (v.stamp, v.id))
        self.stamps = [v.stamp for v in versions]
        self.records = [self._normalized(v) for v in versions]
        self.by_id: dict[str, tuple[list[datetime], list[dict[str, Any]]]] = {}
        for stamp, record in zip(self.stamps, self.records, strict=True):
            stamps, records = self.by_id.setdefault(record["Id"], ([], []))
            stamps.append(stamp)
            records.append(record)
        self.schemas: dict[int, Schema] = {}

    def _normalized(self, version: Version) -> dict[str, Any]:
        if self.spec.field("IsDeleted") is None:
            return version.fields
        # IsDeleted is never null in results: false unless the version says true.
        return {**version.fields, "IsDeleted": version.is_deleted}

    def visible_count(self, now: datetime) -> int:
        return bisect.bisect_right(self.stamps, now)

    def latest(self, now: datetime) -> Iterable[dict[str, Any]]:
        for stamps, records in self.by_id.values():
            index = bisect.bisect_right(stamps, now)
            if index:
                yield records[index - 1]


def _custom_prefixes(grouped: dict[str, list[Version]]) -> dict[str, str]:
    """A key prefix per custom object: its Ids' common prefix, else a free ``a0X`` one."""
    taken = {spec.key_prefix for spec in STANDARD_OBJECTS.values()}
    prefixes: dict[str, str] = {}
    pending: list[str] = []
    for name in sorted(n for n in grouped if n not in STANDARD_OBJECTS):
        common = {v.id[:3] for v in grouped[name]}
        prefix = common.pop() if len(common) == 1 else None
        if prefix is None or prefix in taken or not prefix.isalnum():
            pending.append(name)
            continue
        prefixes[name] = prefix
        taken.add(prefix)
    candidates = (f"a0{ch}" for ch in _BASE62 if f"a0{ch}" not in taken)
    for name in pending:
        prefixes[name] = next(candidates)
    return prefixes


class Org:
    """The org of a history: objects, their records at a moment, and SOQL over them."""

    def __init__(self, history: Iterable[dict[str, Any]]) -> None:
        versions = [
            check_record(record, f"history record {index}") for index, record in enumerate(history)
        ]
        check_history(((v, i) for i, v in enumerate(versions)), lambda i: f"history record {i}")
        grouped: dict[str, list[Version]] = {name: [] for name in STANDARD_OBJECTS}
        for version in versions:
            grouped.setdefault(version.object_name, []).append(version)
        self._prefixes = _custom_prefixes(grouped)
        self._objects: dict[str, _ObjectHistory] = {}
        for name in sorted(grouped):
            spec = STANDARD_OBJECTS.get(name) or custom_object(name, self._prefixes[name])
            self._objects[name.casefold()] = _ObjectHistory(spec, grouped[name])
        self._prefix_names = {h.spec.key_prefix: h.spec.name for h in self._objects.values()}
        self._lock = threading.Lock()
        self.version_count = len(versions)

    # --- objects and schemas -------------------------------------------------------------

    def objects(self) -> list[ObjectSpec]:
        """Every object of the org, by name."""
        return [history.spec for history in self._objects.values()]

    def find(self, name: str) -> ObjectSpec | None:
        """The object called ``name`` (case-insensitive, like Salesforce), or None."""
        history = self._objects.get(name.casefold())
        return history.spec if history is not None else None

    def record_counts(self) -> dict[str, int]:
        """Distinct Ids per object that has records."""
        return {h.spec.name: len(h.by_id) for h in self._objects.values() if h.by_id}

    def schema(self, name: str, now: datetime) -> Schema:
        history = self._objects[name.casefold()]
        count = history.visible_count(now)
        with self._lock:
            cached = history.schemas.get(count)
        if cached is not None:
            return cached
        # Fields in order of first appearance in the visible versions.
        seen: dict[str, list[Any]] = {}
        for record in history.records[:count]:
            for field_name, value in record.items():
                bucket = seen.setdefault(field_name, [])
                if value is not None:
                    bucket.append(value)
        fields = fields_of(history.spec, seen.items(), self._prefix_names)
        schema = Schema(
            history.spec,
            fields,
            soql.ObjectSchema(
                history.spec.name, tuple(soql.FieldDef(f.name, f.type) for f in fields)
            ),
        )
        with self._lock:
            history.schemas[count] = schema
        return schema

    # --- records -------------------------------------------------------------------------

    def records(
        self, name: str, now: datetime, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """The latest visible version of each record; deleted ones only if asked."""
        latest = self._objects[name.casefold()].latest(now)
        if include_deleted:
            return list(latest)
        return [record for record in latest if record.get("IsDeleted") is not True]

    def record(self, name: str, record_id: str, now: datetime) -> dict[str, Any] | None:
        """The latest visible version of one record (15- or 18-character Id), or None."""
        history = self._objects[name.casefold()]
        match = history.by_id.get(record_id)
        if match is None and len(record_id) == 15:
            match = next((v for k, v in history.by_id.items() if k[:15] == record_id), None)
        if match is None:
            return None
        index = bisect.bisect_right(match[0], now)
        return match[1][index - 1] if index else None

    def query(
        self, text: str, now: datetime, *, include_deleted: bool = False
    ) -> tuple[ObjectSpec, soql.QueryResult]:
        """Run SOQL at ``now``: ``query`` (deleted hidden) or ``queryAll`` (deleted shown)."""
        parsed = soql.parse(text)
        spec = self.find(parsed.object_name.name)
        if spec is None:
            raise soql.unsupported_object(parsed.object_name.name)
        schema = self.schema(spec.name, now)
        rows = self.records(spec.name, now, include_deleted=include_deleted)
        return spec, soql.execute(parsed, schema.soql, rows)
