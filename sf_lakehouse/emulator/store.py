"""One object's history held as columns: versions sorted by (Id, SystemModstamp) in Arrow arrays.

Each version carries the stamp of the next version of its Id (``_next``), so "the latest version
of each Id visible at t" is one vectorised filter: ``_stamp <= t < _next``. Text is
dictionary-encoded, datetimes are ``timestamp[us, UTC]``, dates ``date32``.

Fields: the object's standard fields (``objects.py``) plus each other field of its history, whose
type is inferred from all its values in the history (vectorised ``infer_type``) and which exists
from the first version that has it as a key (``Presence``).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from . import soql
from .loader import LINE, STAMP, ObjectPart, Presence
from .objects import Field, ObjectSpec
from .vectors import TIMESTAMP, parse_dates, parse_datetimes, timestamp_scalar

__all__ = ["NEXT", "ObjectHistory", "Schema", "dense_ranks", "unify"]

NEXT = "_next"
_ID_LIKE = r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$"
_VISIBLE_CACHE = 8


@dataclass(frozen=True)
class Schema:
    """An object's fields at one moment, for describe and for SOQL."""

    spec: ObjectSpec
    fields: tuple[Field, ...]
    soql: soql.ObjectSchema


def dense_ranks(values: pa.Array) -> pa.Array:
    """Sortable stand-ins for any array: dictionary arrays become the ranks of their values."""
    if pa.types.is_dictionary(values.type):
        ranks = pc.rank(values.dictionary, sort_keys="ascending", tiebreaker="dense")
        return pc.take(ranks, values.indices)
    return values


def _value_type(array: pa.Array) -> pa.DataType:
    return array.type.value_type if pa.types.is_dictionary(array.type) else array.type


def _as_text(array: pa.Array) -> pa.Array:
    """Any array as text: strings as they are, other values as JSON."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_boolean(array.type):
        return pc.if_else(array, "true", "false")
    values = array.to_pylist()
    return pa.array(
        [
            v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for v in values
        ],
        pa.string(),
    )


def _encode(array: pa.Array) -> pa.Array:
    return pc.dictionary_encode(array.cast(pa.string()))


def _nulls(size: int, kind: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(kind):  # an empty dictionary: Arrow cannot unify null entries
        return pa.DictionaryArray.from_arrays(
            pa.nulls(size, kind.index_type), pa.array([], kind.value_type)
        )
    return pa.nulls(size, kind)


def unify(arrays: list[pa.Array]) -> pa.Array:
    """One array of the parts' arrays: nulls fill in, ints widen to doubles, else text."""
    kinds = {_value_type(a) for a in arrays if not pa.types.is_null(a.type)}
    if not kinds:
        return pa.nulls(sum(len(a) for a in arrays), pa.string())
    if len(kinds) == 1:
        kind = kinds.pop()
    elif kinds <= {pa.int64(), pa.float64()}:
        kind = pa.float64()
    else:
        kind = pa.string()
        arrays = [_as_text(a) for a in arrays]
    if pa.types.is_nested(kind):
        kind, arrays = pa.string(), [_as_text(a) for a in arrays]
    if pa.types.is_string(kind):
        arrays = [
            a if pa.types.is_dictionary(a.type) or pa.types.is_null(a.type) else _encode(a)
            for a in arrays
        ]
        target = pa.dictionary(pa.int32(), pa.string())
    else:
        arrays = [a.dictionary_decode() if pa.types.is_dictionary(a.type) else a for a in arrays]
        target = kind
    filled = [_nulls(len(a), target) if pa.types.is_null(a.type) else a for a in arrays]
    filled = [a if a.type == target else a.cast(target) for a in filled]
    return pa.concat_arrays(filled) if len(filled) > 1 else filled[0]


def infer_type(name: str, values: pa.Array) -> str:
    """Salesforce describe type of a field unknown to the catalogue, from all its values."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary  # every distinct value, once
    values = values.drop_null()
    kind = values.type
    if len(values) == 0:
        return "string"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "int"
    if pa.types.is_floating(kind):
        return "double"
    if not pa.types.is_string(kind):
        return "string"
    long_with_t = pc.and_(
        pc.greater_equal(pc.utf8_length(values), 19), pc.match_substring(values, "T")
    )
    if pc.all(long_with_t).as_py() and parse_datetimes(values).null_count == 0:
        return "datetime"
    if pc.all(pc.equal(pc.utf8_length(values), 10)).as_py() and parse_dates(values).null_count == 0:
        return "date"
    if name.endswith("Id") and pc.all(pc.match_substring_regex(values, _ID_LIKE)).as_py():
        return "reference"
    return "string"


class ObjectHistory:
    """The versions of one object, indexed for "visible at t" lookups."""

    def __init__(self, spec: ObjectSpec, parts: list[ObjectPart]) -> None:
        self.spec = spec
        names: dict[str, None] = {}
        for part in parts:
            names.update(dict.fromkeys(part.columns))
        columns = {
            name: unify([part.columns.get(name, pa.nulls(_rows(part))) for part in parts])
            for name in names
        } or {"Id": pa.array([], pa.string()), STAMP: pa.array([], TIMESTAMP)}
        columns.setdefault(LINE, pa.array([], pa.int32()))
        order = pc.sort_indices(
            pa.table({"id": dense_ranks(columns["Id"]), "stamp": columns[STAMP]}),
            sort_keys=[("id", "ascending"), ("stamp", "ascending")],
        )
        self.columns: dict[str, pa.Array] = {n: c.take(order) for n, c in columns.items()}
        ids, stamps = self._id_keys(), self.columns[STAMP]
        same_id = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)) if len(ids) else ids
        nxt = (
            pc.if_else(same_id, stamps.slice(1), pa.scalar(None, TIMESTAMP)) if len(ids) else stamps
        )
        self.columns[NEXT] = pa.concat_arrays([nxt, pa.nulls(min(len(ids), 1), TIMESTAMP)])
        self._same_id = same_id
        self.presence: dict[str, Presence] = {}
        for part in parts:
            for name, seen in part.presence.items():
                known = self.presence.get(name)
                if known is None or (seen.stamp, seen.record_id) < (known.stamp, known.record_id):
                    self.presence[name] = seen
        self.extra: dict[str, str] = {
            name: infer_type(name, self.columns[name])
            for name in self.presence
            if name in self.columns
        }
        self.extra.update({n: "string" for n in self.presence if n not in self.columns})
        self._convert_columns()
        self._lock = threading.Lock()
        self._visible: OrderedDict[int, pa.Array] = OrderedDict()
        self._schemas: dict[tuple[str, ...], Schema] = {}

    # --- building ------------------------------------------------------------------------

    def _id_keys(self) -> pa.Array:
        ids = self.columns["Id"]
        return ids.indices if pa.types.is_dictionary(ids.type) else ids

    def duplicate_rows(self) -> pa.Array:
        """Rows whose version has the same SystemModstamp as the previous one of its Id."""
        stamps = self.columns[STAMP]
        if len(stamps) < 2:
            return pa.array([], pa.uint64())
        same = pc.and_(self._same_id, pc.equal(stamps.slice(1), stamps.slice(0, len(stamps) - 1)))
        return pc.add(pc.indices_nonzero(same), 1)

    def drop_lines(self) -> None:
        self.columns.pop(LINE, None)
        del self._same_id

    def _convert_columns(self) -> None:
        types = {f.name: f.type for f in self.spec.fields} | self.extra
        for name, ftype in types.items():
            column = self.columns.get(name)
            if column is None or name == "SystemModstamp":
                continue
            if ftype in ("datetime", "date") and not pa.types.is_null(column.type):
                parsed = (parse_datetimes if ftype == "datetime" else parse_dates)(column)
                if parsed.null_count == column.null_count:
                    self.columns[name] = parsed  # else: odd values stay text, as written
        self.columns["SystemModstamp"] = self.columns[STAMP]
        if self.spec.field("IsDeleted") is not None:
            deleted = self.columns.get("IsDeleted")
            if deleted is None or not pa.types.is_boolean(deleted.type):
                deleted = pa.nulls(len(self.columns[STAMP]), pa.bool_())
            # IsDeleted is never null in results: false unless the version says true.
            self.columns["IsDeleted"] = deleted.fill_null(False)

    # --- what is there -------------------------------------------------------------------

    @property
    def version_count(self) -> int:
        return len(self.columns[STAMP])

    @property
    def record_count(self) -> int:
        return len(pc.unique(self.columns["Id"])) if self.version_count else 0

    def id_prefixes(self) -> set[str]:
        ids = self.columns["Id"]
        distinct = ids.dictionary if pa.types.is_dictionary(ids.type) else pc.unique(ids)
        return set(pc.unique(pc.utf8_slice_codeunits(distinct, 0, 3)).to_pylist())

    def column(self, name: str, rows: pa.Array) -> pa.Array:
        """The values of a field at ``rows`` (nulls for a field the history never has)."""
        column = self.columns.get(name)
        if column is None:
            return pa.nulls(len(rows), pa.string())
        return column.take(rows)

    def field_type(self, name: str) -> pa.DataType | None:
        column = self.columns.get(name)
        return None if column is None else column.type

    # --- the clock -----------------------------------------------------------------------

    def visible(self, now: datetime) -> pa.Array:
        """Row of the latest version of each Id with SystemModstamp <= now, in Id order."""
        moment = timestamp_scalar(now)
        key = moment.value
        with self._lock:
            cached = self._visible.get(key)
            if cached is not None:
                self._visible.move_to_end(key)
                return cached
        stamps, nxt = self.columns[STAMP], self.columns[NEXT]
        mask = pc.and_(pc.less_equal(stamps, moment), pc.greater(nxt, moment).fill_null(True))
        rows = pc.indices_nonzero(mask)
        with self._lock:
            self._visible[key] = rows
            while len(self._visible) > _VISIBLE_CACHE:
                self._visible.popitem(last=False)
        return rows

    def live(self, rows: pa.Array) -> pa.Array:
        """Those of ``rows`` whose version is not deleted."""
        deleted = self.columns.get("IsDeleted")
        if deleted is None or self.spec.field("IsDeleted") is None:
            return rows
        return rows.filter(pc.invert(deleted.take(rows)))

    def find(self, record_id: str, now: datetime) -> int | None:
        """The visible row of one record (15- or 18-character Id), or None."""
        ids = self.columns["Id"]
        distinct = ids.dictionary if pa.types.is_dictionary(ids.type) else ids
        if len(record_id) == 15:
            hits = pc.equal(pc.utf8_slice_codeunits(distinct, 0, 15), record_id)
        else:
            hits = pc.equal(distinct, record_id)
        if pa.types.is_dictionary(ids.type):
            hits = pc.take(hits, ids.indices)
        rows = pc.indices_nonzero(hits.fill_null(False))
        if len(rows) == 0:
            return None
        visible = self.visible(now)
        chosen = pc.is_in(rows, value_set=visible)
        found = rows.filter(chosen)
        return found[0].as_py() if len(found) else None

    def schema(self, now: datetime, prefixes: dict[str, str]) -> Schema:
        """The object's fields at ``now``: standard ones, then those of visible versions."""
        moment = timestamp_scalar(now).value
        seen = sorted(
            (p.stamp, p.record_id, p.order, name)
            for name, p in self.presence.items()
            if p.stamp <= moment and self.spec.field(name) is None
        )
        key = tuple(name for *_, name in seen)
        with self._lock:
            cached = self._schemas.get(key)
        if cached is not None:
            return cached
        fields = list(self.spec.fields)
        for name in key:
            fields.append(self._extra_field(name, prefixes))
        schema = Schema(
            self.spec,
            tuple(fields),
            soql.ObjectSchema(self.spec.name, tuple(soql.FieldDef(f.name, f.type) for f in fields)),
        )
        with self._lock:
            self._schemas[key] = schema
        return schema

    def _extra_field(self, name: str, prefixes: dict[str, str]) -> Field:
        ftype = self.extra.get(name, "string")
        reference_to: tuple[str, ...] = ()
        if ftype == "reference":
            column = self.columns[name]
            distinct = column.dictionary if pa.types.is_dictionary(column.type) else column
            heads = pc.unique(pc.utf8_slice_codeunits(distinct.drop_null(), 0, 3)).to_pylist()
            reference_to = tuple(sorted({prefixes[h] for h in heads if h in prefixes}))
        return Field(name, ftype, reference_to=reference_to)


def _rows(part: ObjectPart) -> int:
    return len(part.columns[STAMP])
