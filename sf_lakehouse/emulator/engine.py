"""SOQL over an object's columns, vectorised: WHERE, ORDER BY, LIMIT/OFFSET and COUNT().

``run`` answers a parsed query from an ``ObjectHistory`` at a clock with the same semantics as
the dict evaluator (``soql.execute``), which stays the reference: the same checks raise the same
Salesforce errors (``soql.Compiler``), text compares without case, Ids by their first 15
characters, ``!=`` matches nulls, range comparisons never do, rows without ORDER BY come in Id
order. The result is a ``Selection``: row numbers into the history's columns, never records;
pages are rendered from it (``render``). A comparison Arrow cannot make (a field whose values do
not have its type) falls back to the dict evaluator for that query's WHERE.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .soql import (
    ID_TYPES,
    STRING_TYPES,
    And,
    Comparison,
    Compiler,
    Expr,
    FieldDef,
    InList,
    Like,
    Literal,
    Not,
    ObjectSchema,
    Or,
    SelectQuery,
    SoqlError,
    TokenKind,
    comparable_value,
    like_regex,
    unsupported_object,
)
from .store import ObjectHistory, dense_ranks
from .vectors import map_values, timestamp_scalar

__all__ = ["Selection", "run"]

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


@dataclass(frozen=True)
class Selection:
    """A query's answer: rows of ``history`` in result order, and the selected fields."""

    history: ObjectHistory
    rows: pa.Array
    fields: tuple[FieldDef, ...]
    is_count: bool

    @property
    def total_size(self) -> int:
        return len(self.rows)


def _is_text(values: pa.Array) -> bool:
    kind = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _re2_escape(text: str) -> str:
    return "".join(c if c.isalnum() or not c.isascii() else f"\\x{ord(c):02x}" for c in text)


class _Where:
    """Evaluates a WHERE expression over the given rows of a history, column by column."""

    def __init__(self, history: ObjectHistory, rows: pa.Array, compiler: Compiler) -> None:
        self.history = history
        self.rows = rows
        self.compiler = compiler
        self._columns: dict[str, pa.Array] = {}

    def values(self, field: FieldDef) -> pa.Array:
        """The field's values as compared: text lower-cased, Ids cut to 15 characters."""
        cached = self._columns.get(field.name)
        if cached is None:
            cached = self.history.column(field.name, self.rows)
            if _is_text(cached) and field.type in ID_TYPES:
                cached = map_values(cached, lambda a: pc.utf8_slice_codeunits(a, 0, 15))
            elif _is_text(cached) and field.type in STRING_TYPES:
                cached = map_values(cached, pc.utf8_lower)
            self._columns[field.name] = cached
        return cached

    @staticmethod
    def literal(field: FieldDef, literal: Literal) -> Any:
        if literal.kind is TokenKind.NULL:
            return None
        value = literal.value
        if field.type in ID_TYPES:
            return value[:15]
        if field.type in STRING_TYPES:
            return value.lower()
        if field.type == "datetime":
            return timestamp_scalar(value)
        return value

    def mask(self, expr: Expr) -> pa.Array:
        """A boolean array without nulls: which rows satisfy ``expr``."""
        if isinstance(expr, And | Or):
            combine = pc.and_ if isinstance(expr, And) else pc.or_
            result = self.mask(expr.operands[0])
            for operand in expr.operands[1:]:
                result = combine(result, self.mask(operand))
            return result
        if isinstance(expr, Not):
            return pc.invert(self.mask(expr.operand))
        field = self.compiler.resolve(expr.field)
        values = self.values(field)
        if isinstance(expr, Comparison):
            return self._compare(values, expr.op, self.literal(field, expr.value))
        if isinstance(expr, InList):
            wanted = [self.literal(field, v) for v in expr.values]
            present = [v.as_py() if isinstance(v, pa.Scalar) else v for v in wanted]
            value_type = values.type.value_type if _is_text(values) else values.type
            if pa.types.is_null(value_type):  # a field without values: only null matches
                found = _all(len(values), None in present)
            else:
                value_set = pa.array([v for v in present if v is not None], value_type)
                found = map_values(values, lambda a: pc.is_in(a, value_set=value_set))
                found = found.fill_null(False)
                if None in present:
                    found = pc.or_(found, pc.is_null(values))
            return pc.invert(found) if expr.negated else found
        return self._like(values, expr)

    @staticmethod
    def _compare(values: pa.Array, op: str, value: Any) -> pa.Array:
        if value is None:
            if op == "=":
                return pc.is_null(values)
            if op == "!=":
                return pc.is_valid(values)
            return _none(len(values))  # a range never matches a null
        if pa.types.is_null(values.type):
            return _all(len(values), op == "!=")
        function = {
            "=": pc.equal,
            "!=": pc.not_equal,
            "<": pc.less,
            "<=": pc.less_equal,
            ">": pc.greater,
            ">=": pc.greater_equal,
        }[op]
        result = map_values(values, lambda a: function(a, value))
        return result.fill_null(op == "!=")

    @staticmethod
    def _like(values: pa.Array, expr: Like) -> pa.Array:
        if not _is_text(values):
            return _none(len(values))
        pattern = "^(?s:" + like_regex(expr.pattern.token.text[1:-1], _re2_escape) + ")$"
        found = map_values(values, lambda a: pc.match_substring_regex(a, pattern, ignore_case=True))
        return found.fill_null(False)


def _none(size: int) -> pa.Array:
    return _all(size, False)


def _all(size: int, value: bool) -> pa.Array:
    return pa.nulls(size, pa.bool_()).fill_null(value)


def _plain(values: pa.Array) -> pa.Array:
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def _fields_in(expr: Expr) -> Iterator[Any]:
    if isinstance(expr, And | Or):
        for operand in expr.operands:
            yield from _fields_in(operand)
    elif isinstance(expr, Not):
        yield from _fields_in(expr.operand)
    else:
        yield expr.field


def _python_mask(
    history: ObjectHistory, rows: pa.Array, compiler: Compiler, expr: Expr
) -> pa.Array:
    """The dict evaluator's answer for ``expr`` (fields whose values do not fit their type)."""
    predicate = compiler.compile(expr)
    fields = {f.name: f for f in (compiler.resolve(ref) for ref in _fields_in(expr))}
    columns = {name: _plain(history.column(name, rows)).to_pylist() for name in fields}
    out = []
    for i in range(len(rows)):
        view = {n: comparable_value(columns[n][i], f.type) for n, f in fields.items()}
        out.append(bool(predicate(view)))
    return pa.array(out, pa.bool_())


def _order(history: ObjectHistory, rows: pa.Array, where: _Where, order: list[Any]) -> pa.Array:
    keys: dict[str, pa.Array] = {}
    sort_keys: list[tuple[str, str]] = []
    for i, (field, item) in enumerate(order):
        values = where.values(field)
        keys[f"n{i}"] = pc.is_valid(values) if item.nulls_first else pc.is_null(values)
        sort_keys.append((f"n{i}", "ascending"))
        if not pa.types.is_null(values.type):
            keys[f"v{i}"] = dense_ranks(values)
            sort_keys.append((f"v{i}", "descending" if item.descending else "ascending"))
    keys["position"] = pa.array(range(len(rows)), pa.int64())  # ties: Id order
    sort_keys.append(("position", "ascending"))
    return rows.take(pc.sort_indices(pa.table(keys), sort_keys=sort_keys))


def run(
    query: SelectQuery,
    history: ObjectHistory,
    schema: ObjectSchema,
    now: datetime,
    *,
    include_deleted: bool = False,
) -> Selection:
    """Answer ``query`` at ``now``: ``query`` hides deleted records, ``queryAll`` shows them."""
    if query.object_name.name.casefold() != schema.name.casefold():
        raise unsupported_object(query.object_name.name)
    compiler = Compiler(query, schema)
    selected: list[FieldDef] = []
    for ref in query.fields:
        field = compiler.resolve(ref)
        if field in selected:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {field.name}")
        selected.append(field)
    if query.where is not None:
        compiler.compile(query.where)  # every check (types, operators) before any work
    order = [(compiler.resolve(item.field), item) for item in query.order_by]
    rows = history.visible(now)
    if not include_deleted:
        rows = history.live(rows)
    where = _Where(history, rows, compiler)
    if query.where is not None:
        try:
            mask = where.mask(query.where)
        except _ARROW_ERRORS:
            mask = _python_mask(history, rows, compiler, query.where)
        rows = rows.filter(mask)
        where = _Where(history, rows, compiler)
    if order:
        rows = _order(history, rows, where, order)
    start = query.offset or 0
    end = len(rows) if query.limit is None else min(len(rows), start + query.limit)
    rows = rows.slice(start, max(end - start, 0))
    return Selection(history, rows.cast(pa.uint32()), tuple(selected), query.is_count)
