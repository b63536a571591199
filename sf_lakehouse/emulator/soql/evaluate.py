"""SOQL evaluation over records held as dicts, and the checks shared with the columnar engine.

``Compiler`` resolves field names and checks literal types against an object's schema (raising
Salesforce's errors); ``execute`` runs a parsed query over dict records.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..history import format_sf_datetime, parse_sf_datetime
from .lexer import _ESCAPES, _TYPE_NAMES, ID_TYPES, STRING_TYPES, SoqlError, Token, TokenKind
from .parser import (
    And,
    Comparison,
    Expr,
    FieldRef,
    InList,
    Like,
    Literal,
    Not,
    Or,
    SelectQuery,
    parse,
)

__all__ = [
    "Compiler",
    "FieldDef",
    "ObjectSchema",
    "QueryResult",
    "comparable_value",
    "execute",
    "field_names",
    "json_value",
    "like_regex",
    "unsupported_object",
]

# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class FieldDef:
    name: str  # canonical API name
    type: str  # Salesforce describe type: id, string, email, boolean, datetime, date, int, ...


@dataclass(frozen=True)
class ObjectSchema:
    name: str
    fields: tuple[FieldDef, ...]

    def field(self, name: str) -> FieldDef | None:
        """Case-insensitive lookup, like Salesforce."""
        wanted = name.casefold()
        for field in self.fields:
            if field.name.casefold() == wanted:
                return field
        return None


@dataclass(frozen=True)
class QueryResult:
    fields: tuple[FieldDef, ...]  # the selected fields, canonical names, in SELECT order
    records: list[dict[str, Any]]  # JSON-ready values keyed by canonical name
    total_size: int
    is_count: bool
    ids: list[Any]  # the Id of each returned record (for attribute URLs), in order


def _typed(value: Any, ftype: str) -> Any:
    """Turn a stored JSON value into something comparable for the field's type."""
    if value is None:
        return None
    if ftype == "datetime":
        return parse_sf_datetime(value) if isinstance(value, str) else value
    if ftype == "date":
        return date.fromisoformat(value) if isinstance(value, str) else value
    return value


def _sort_key(value: Any, ftype: str) -> Any:
    if ftype in STRING_TYPES and isinstance(value, str):
        return value.casefold()
    if ftype in ID_TYPES and isinstance(value, str):
        return value[:15]  # 15- and 18-character forms of one Id are the same record
    return value


def comparable_value(value: Any, ftype: str) -> Any:
    """A stored value as the evaluator compares it (typed, text case-folded, Ids cut to 15)."""
    return _sort_key(_typed(value, ftype), ftype)


def _json_value(value: Any, ftype: str) -> Any:
    if value is None:
        return None
    if ftype == "datetime":
        return format_sf_datetime(_typed(value, ftype))
    if ftype == "date" and isinstance(value, date):
        return value.isoformat()
    return value


class Compiler:
    """Resolves field names and literal types against the schema, producing predicates."""

    def __init__(self, query: SelectQuery, schema: ObjectSchema) -> None:
        self.query = query
        self.schema = schema

    def resolve(self, ref: FieldRef) -> FieldDef:
        field = self.schema.field(ref.name)
        if field is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"{self._caret(ref.token)}No such column '{ref.name}' on entity "
                f"'{self.schema.name}'. If you are attempting to use a custom field, be sure to "
                "append the '__c' after the custom field name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
            )
        return field

    def _caret(self, token: Token) -> str:
        text = self.query.text
        line_start = text.rfind("\n", 0, token.pos) + 1
        line_end = text.find("\n", token.pos)
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        column = token.pos - line_start + 1
        row = text.count("\n", 0, token.pos) + 1
        return f"{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n"

    def check_literal(self, field: FieldDef, literal: Literal) -> Any:
        """Validate the literal's type for the field; return the comparable value."""
        if literal.kind is TokenKind.NULL:
            return None
        ftype = field.type
        wanted = {
            "datetime": TokenKind.DATETIME,
            "date": TokenKind.DATE,
            "boolean": TokenKind.BOOLEAN,
            "int": TokenKind.NUMBER,
            "double": TokenKind.NUMBER,
            "currency": TokenKind.NUMBER,
            "percent": TokenKind.NUMBER,
        }.get(ftype, TokenKind.STRING)
        if literal.kind is not wanted:
            if wanted is TokenKind.STRING:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"{self._caret(literal.token)}value of filter criterion for field "
                    f"'{field.name}' must be of type string and should be enclosed in quotes",
                )
            type_name = _TYPE_NAMES.get(ftype, "double")
            raise SoqlError(
                "INVALID_FIELD",
                f"{self._caret(literal.token)}value of filter criterion for field "
                f"'{field.name}' must be of type {type_name} and should not be enclosed in quotes",
            )
        if ftype in ID_TYPES:
            value = literal.value
            if len(value) not in (15, 18) or not value.isascii() or not value.isalnum():
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
        return _sort_key(literal.value, ftype)

    def compile(self, expr: Expr) -> Callable[[Mapping[str, Any]], bool]:
        if isinstance(expr, And):
            parts = [self.compile(e) for e in expr.operands]
            return lambda row: all(p(row) for p in parts)
        if isinstance(expr, Or):
            parts = [self.compile(e) for e in expr.operands]
            return lambda row: any(p(row) for p in parts)
        if isinstance(expr, Not):
            inner = self.compile(expr.operand)
            return lambda row: not inner(row)
        if isinstance(expr, Comparison):
            return self._comparison(expr)
        if isinstance(expr, InList):
            field = self.resolve(expr.field)
            values = [self.check_literal(field, v) for v in expr.values]
            name, negated = field.name, expr.negated

            def in_list(row: Mapping[str, Any]) -> bool:
                return (row.get(name) in values) != negated

            return in_list
        return self._like(expr)

    def _comparison(self, expr: Comparison) -> Callable[[Mapping[str, Any]], bool]:
        field = self.resolve(expr.field)
        value = self.check_literal(field, expr.value)
        if field.type == "boolean" and expr.op not in ("=", "!="):
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"{self._caret(expr.value.token)}invalid operator on boolean field",
            )
        name, op = field.name, expr.op
        if op == "=":
            return lambda row: row.get(name) == value
        if op == "!=":
            return lambda row: row.get(name) != value
        compare: Callable[[Any, Any], bool] = {
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }[op]

        def ordered(row: Mapping[str, Any]) -> bool:
            current = row.get(name)
            # Nulls never satisfy a range comparison.
            return current is not None and value is not None and compare(current, value)

        return ordered

    def _like(self, expr: Like) -> Callable[[Mapping[str, Any]], bool]:
        field = self.resolve(expr.field)
        if field.type not in STRING_TYPES:
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"{self._caret(expr.pattern.token)}invalid operator on {field.type} field",
            )
        matcher = _like_matcher(expr.pattern.token.text[1:-1])
        name = field.name
        return lambda row: isinstance(row.get(name), str) and matcher(row[name])


def like_regex(raw: str, escape: Callable[[str], str] = re.escape) -> str:
    """A LIKE pattern (raw literal text, escapes intact) as a regular expression to match whole
    values, case-insensitively (``%`` any run, ``_`` one character, ``\\%`` a literal)."""
    parts: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            parts.append(escape(_ESCAPES.get(nxt, nxt)))
            i += 2
            continue
        parts.append(".*" if c == "%" else "." if c == "_" else escape(c))
        i += 1
    return "".join(parts)


def _like_matcher(raw: str) -> Callable[[str], bool]:
    """Compile a LIKE pattern to a case-insensitive matcher of whole values."""
    pattern = re.compile(like_regex(raw), re.IGNORECASE | re.DOTALL)
    return lambda value: pattern.fullmatch(value) is not None


def unsupported_object(name: str) -> SoqlError:
    """Salesforce's INVALID_TYPE error for ``FROM <name>`` naming no object of the org."""
    return SoqlError(
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


def json_value(value: Any, ftype: str) -> Any:
    """A stored history value as Salesforce's REST API returns it for a field of ``ftype``."""
    return _json_value(_typed(value, ftype), ftype)


def execute(
    query: SelectQuery | str,
    schema: ObjectSchema,
    records: Iterable[Mapping[str, Any]],
) -> QueryResult:
    """Run a query over records (one dict per row, Salesforce field names, JSON values)."""
    if isinstance(query, str):
        query = parse(query)
    if query.object_name.name.casefold() != schema.name.casefold():
        raise unsupported_object(query.object_name.name)
    compiler = Compiler(query, schema)
    selected: list[FieldDef] = []
    for ref in query.fields:
        field = compiler.resolve(ref)
        if field in selected:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {field.name}")
        selected.append(field)
    predicate = compiler.compile(query.where) if query.where is not None else None
    order = [(compiler.resolve(item.field), item) for item in query.order_by]

    # Comparable view of each row (typed values, case-folded text), next to the original.
    rows: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    for record in records:
        view = {
            f.name: _sort_key(_typed(record.get(f.name), f.type), f.type) for f in schema.fields
        }
        if predicate is None or predicate(view):
            rows.append((view, record))

    id_field = schema.field("Id")
    id_name = id_field.name if id_field else None

    def compare(a: tuple[dict[str, Any], Any], b: tuple[dict[str, Any], Any]) -> int:
        for field, item in order:
            left, right = a[0].get(field.name), b[0].get(field.name)
            if left == right:
                continue
            if left is None or right is None:
                return (-1 if left is None else 1) * (1 if item.nulls_first else -1)
            result = -1 if left < right else 1
            return -result if item.descending else result
        if id_name is None:
            return 0
        left_id, right_id = a[0].get(id_name) or "", b[0].get(id_name) or ""
        return (left_id > right_id) - (left_id < right_id)

    rows.sort(key=functools.cmp_to_key(compare))
    start = query.offset or 0
    end = start + query.limit if query.limit is not None else None
    rows = rows[start:end]

    if query.is_count:
        return QueryResult(fields=(), records=[], total_size=len(rows), is_count=True, ids=[])
    out = [
        {f.name: _json_value(_typed(record.get(f.name), f.type), f.type) for f in selected}
        for _, record in rows
    ]
    ids = [record.get(id_name) if id_name else None for _, record in rows]
    return QueryResult(
        fields=tuple(selected), records=out, total_size=len(out), is_count=False, ids=ids
    )


def field_names(fields: Sequence[FieldDef]) -> list[str]:
    """Canonical names of fields, in order (handy for CSV headers)."""
    return [f.name for f in fields]
