"""The org the emulator serves: every object's record versions, held as columns, seen at a clock.

Clock semantics: a version is visible when its SystemModstamp <= now; per Id, the latest
visible version is the record (deleted or not according to that version). ``query`` hides
deleted records, ``queryAll`` returns them with ``IsDeleted: true``. An object's fields at a
moment are its standard fields plus those of its visible versions (so a custom field appears in
describe when its first version becomes visible); a field's type is inferred from all its values.

The standard objects exist whatever the history holds; a custom object exists when the history
has records of it. The history comes from a JSON Lines file (``Org.from_file``, read in columns
without a dict per line) or from in-memory records (``Org(records)``); both are validated the
same way (``HistoryError`` names the line or record and the fix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import soql
from .engine import Selection, run
from .history import Version, check_history
from .loader import LINE, STAMP, ObjectPart, read_file, read_records
from .objects import STANDARD_OBJECTS, ObjectSpec, custom_object
from .store import ObjectHistory, Schema

__all__ = ["Org", "Schema"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _custom_prefixes(parts: dict[str, list[ObjectPart]]) -> dict[str, str]:
    """A key prefix per custom object: its Ids' common prefix, else a free ``a0X`` one."""
    taken = {spec.key_prefix for spec in STANDARD_OBJECTS.values()}
    prefixes: dict[str, str] = {}
    pending: list[str] = []
    for name in sorted(n for n in parts if n not in STANDARD_OBJECTS):
        common: set[str] = set()
        for part in parts[name]:
            ids = part.columns["Id"]
            distinct = ids.dictionary if pa.types.is_dictionary(ids.type) else ids
            common |= set(pc.unique(pc.utf8_slice_codeunits(distinct, 0, 3)).to_pylist())
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


def _plain(values: pa.Array) -> pa.Array:
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


class Org:
    """The org of a history: objects, their records at a moment, and SOQL over them."""

    def __init__(self, history: Iterable[dict[str, Any]] = ()) -> None:
        parts, _ = read_records(history)
        self._build(parts, lambda index: f"history record {index}")

    @classmethod
    def from_file(cls, path: Path) -> Org:
        """The org of a JSON Lines history file (read in columns, validated line by line)."""
        org = cls.__new__(cls)
        parts, _ = read_file(Path(path))
        org._build(parts, lambda line_no: f"{path}, line {line_no}")
        return org

    def _build(self, parts: dict[str, list[ObjectPart]], where: Callable[[int], str]) -> None:
        prefixes = _custom_prefixes(parts)
        self._objects: dict[str, ObjectHistory] = {}
        for name in sorted(set(STANDARD_OBJECTS) | set(parts)):
            spec = STANDARD_OBJECTS.get(name) or custom_object(name, prefixes[name])
            self._objects[name.casefold()] = ObjectHistory(spec, parts.pop(name, []))
        self._check_versions(where)
        for history in self._objects.values():
            history.drop_lines()
        self._prefix_names = {h.spec.key_prefix: h.spec.name for h in self._objects.values()}
        self.version_count = sum(h.version_count for h in self._objects.values())

    def _check_versions(self, where: Callable[[int], str]) -> None:
        """One object per Id, strictly increasing SystemModstamp per Id (``check_history``)."""
        suspects: set[str] = set()
        distinct: list[pa.Array] = []
        for history in self._objects.values():
            duplicates = history.duplicate_rows()
            if len(duplicates):
                suspects |= set(_plain(history.column("Id", duplicates)).to_pylist())
            ids = history.columns["Id"]
            distinct.append(ids.dictionary if pa.types.is_dictionary(ids.type) else ids)
        for i, left in enumerate(distinct):
            for right in distinct[i + 1 :]:
                clash = pc.is_in(left, value_set=right)
                if pc.any(clash).as_py():
                    suspects |= set(left.filter(clash).to_pylist())
        if not suspects:
            return
        # Only the suspects' versions: the first violation check_history finds is among them.
        items: list[tuple[Version, int]] = []
        wanted = pa.array(sorted(suspects), pa.string())
        for history in self._objects.values():
            ids = history.columns["Id"]
            rows = pc.indices_nonzero(pc.is_in(ids, value_set=wanted))
            names = _plain(history.column("Id", rows)).to_pylist()
            stamps = history.column(STAMP, rows).to_pylist()
            lines = history.column(LINE, rows).to_pylist()
            for record_id, stamp, line in zip(names, stamps, lines, strict=True):
                items.append((Version(history.spec.name, stamp, {"Id": record_id}), line))
        check_history(items, where)

    # --- objects and schemas -------------------------------------------------------------

    def objects(self) -> list[ObjectSpec]:
        """Every object of the org, by name."""
        return [history.spec for history in self._objects.values()]

    def find(self, name: str) -> ObjectSpec | None:
        """The object called ``name`` (case-insensitive, like Salesforce), or None."""
        history = self._objects.get(name.casefold())
        return history.spec if history is not None else None

    def history(self, name: str) -> ObjectHistory:
        return self._objects[name.casefold()]

    def record_counts(self) -> dict[str, int]:
        """Distinct Ids per object that has records."""
        return {h.spec.name: h.record_count for h in self._objects.values() if h.version_count}

    def schema(self, name: str, now: datetime) -> Schema:
        return self._objects[name.casefold()].schema(now, self._prefix_names)

    # --- records -------------------------------------------------------------------------

    def record(self, name: str, record_id: str, now: datetime) -> Selection | None:
        """The latest visible version of one record (15- or 18-character Id), every field."""
        history = self._objects[name.casefold()]
        row = history.find(record_id, now)
        if row is None:
            return None
        schema = self.schema(name, now)
        return Selection(history, pa.array([row], pa.uint64()), schema.soql.fields, False)

    def query(
        self, text: str, now: datetime, *, include_deleted: bool = False
    ) -> tuple[ObjectSpec, Selection]:
        """Run SOQL at ``now``: ``query`` (deleted hidden) or ``queryAll`` (deleted shown)."""
        parsed = soql.parse(text)
        spec = self.find(parsed.object_name.name)
        if spec is None:
            raise soql.unsupported_object(parsed.object_name.name)
        schema = self.schema(spec.name, now)
        history = self._objects[spec.name.casefold()]
        return spec, run(parsed, history, schema.soql, now, include_deleted=include_deleted)
