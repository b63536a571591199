"""A SOQL subset: tokenizer, recursive-descent parser and evaluator.

Grammar (keywords case-insensitive)::

    query      := SELECT (COUNT '(' ')' | field (',' field)*) FROM object
                  [WHERE condition]
                  [ORDER BY field [ASC|DESC] [NULLS (FIRST|LAST)] (',' ...)*]
                  [LIMIT int] [OFFSET int]
    condition  := [NOT] operand ((AND operand)* | (OR operand)*)
    operand    := '(' condition ')' | field op value | field [NOT] IN '(' value (',' value)* ')'
                | field LIKE string
    op         := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    value      := 'string' | number | date | datetime | TRUE | FALSE | NULL

Behaviour copied from Salesforce on purpose, so that a query that works here works on a real org:

- AND and OR cannot be mixed at one level without parentheses (``a AND b OR c`` is
  MALFORMED_QUERY "unexpected token: 'OR'"); NOT may only open a condition (``a AND NOT b`` is
  rejected, ``a AND (NOT b)`` is fine) and negates the operand right after it.
- Literals are typed: a datetime field takes an unquoted datetime literal; a quoted value is
  INVALID_FIELD "... must be of type dateTime and should not be enclosed in quotes".
- Text comparisons (``=``, ``LIKE``, ordering) ignore case; Id comparisons accept 15 or 18
  characters; ``!=`` matches nulls; without ORDER BY rows come back ordered by Id.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from .history import format_sf_datetime, parse_sf_datetime

__all__ = [
    "And",
    "Comparison",
    "FieldDef",
    "FieldRef",
    "InList",
    "Like",
    "Literal",
    "Not",
    "ObjectSchema",
    "Or",
    "OrderItem",
    "QueryResult",
    "SelectQuery",
    "SoqlError",
    "Token",
    "TokenKind",
    "execute",
    "json_value",
    "parse",
    "tokenize",
    "unsupported_object",
]

# Salesforce's reserved SOQL words (plus the clause words this subset needs): never field names.
RESERVED = frozenset(
    {
        "AND",
        "ASC",
        "BY",
        "DESC",
        "EXCLUDES",
        "FIRST",
        "FROM",
        "GROUP",
        "HAVING",
        "IN",
        "INCLUDES",
        "LAST",
        "LIKE",
        "LIMIT",
        "NOT",
        "NULL",
        "NULLS",
        "OFFSET",
        "OR",
        "ORDER",
        "SELECT",
        "WHERE",
        "WITH",
    }
)
STRING_TYPES = frozenset({"string", "email", "picklist", "textarea", "phone", "url"})
ID_TYPES = frozenset({"id", "reference"})
_TYPE_NAMES = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "int": "int"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_DIGITS = "0123456789"


class SoqlError(Exception):
    """A query Salesforce would reject; ``error_code`` is Salesforce's (e.g. MALFORMED_QUERY)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


class TokenKind(Enum):
    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    NULL = "null"
    OPERATOR = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    EOF = "end of query"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # the source text, as written
    value: Any  # decoded value: str, int/float, date, aware datetime, bool, None
    pos: int  # offset in the query (for error messages)

    def is_keyword(self, word: str) -> bool:
        return self.kind is TokenKind.IDENT and self.text.upper() == word


def _error_at(query: str, pos: int, text: str) -> SoqlError:
    """A Salesforce-style MALFORMED_QUERY message with row, column and a caret."""
    row = query.count("\n", 0, pos) + 1
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    column = pos - line_start + 1
    shown = text if text else "<EOF>"
    return SoqlError(
        "MALFORMED_QUERY",
        f"{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n"
        f"unexpected token: '{shown}'",
    )


# --------------------------------------------------------------------------------------------
# Tokenizer


def tokenize(query: str) -> list[Token]:
    """Split a SOQL string into tokens; the list always ends with an EOF token."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c == "'":
            value, i = _read_string(query, i)
            tokens.append(Token(TokenKind.STRING, query[start:i], value, start))
        elif c in "(),":
            kind = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA}[c]
            tokens.append(Token(kind, c, c, start))
            i += 1
        elif c in "=!<>":
            two = query[i : i + 2]
            if two in ("!=", "<>", "<=", ">="):
                op = "!=" if two == "<>" else two
                tokens.append(Token(TokenKind.OPERATOR, two, op, start))
                i += 2
            elif c != "!":
                tokens.append(Token(TokenKind.OPERATOR, c, c, start))
                i += 1
            else:
                raise _error_at(query, start, c)
        elif c in _DIGITS or (c in "+-" and i + 1 < n and query[i + 1] in _DIGITS):
            token, i = _read_number_or_date(query, i)
            tokens.append(token)
        elif (c.isascii() and c.isalpha()) or c == "_":
            while i < n and (query[i].isascii() and (query[i].isalnum() or query[i] in "_.")):
                i += 1
            word = query[start:i]
            upper = word.upper()
            if upper in ("TRUE", "FALSE"):
                tokens.append(Token(TokenKind.BOOLEAN, word, upper == "TRUE", start))
            elif upper == "NULL":
                tokens.append(Token(TokenKind.NULL, word, None, start))
            else:
                tokens.append(Token(TokenKind.IDENT, word, word, start))
        else:
            raise _error_at(query, start, c)
    tokens.append(Token(TokenKind.EOF, "", None, n))
    return tokens


def _read_string(query: str, start: int) -> tuple[str, int]:
    """Read a single-quoted literal with backslash escapes; return (value, index after it)."""
    out: list[str] = []
    i, n = start + 1, len(query)
    while i < n:
        c = query[i]
        if c == "'":
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= n:
                break
            nxt = query[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_":
                out.append(nxt)  # LIKE escapes; the LIKE matcher re-reads the raw text
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"Invalid string literal '{query[start + 1 : i + 2]}'. Illegal character "
                    f"sequence '\\{nxt}' in string literal.",
                )
            i += 2
            continue
        out.append(c)
        i += 1
    raise _error_at(query, start, query[start:])


def _digits_at(query: str, i: int, count: int) -> bool:
    return i + count <= len(query) and all(ch in _DIGITS for ch in query[i : i + count])


def _read_number_or_date(query: str, start: int) -> tuple[Token, int]:
    n = len(query)
    if (
        _digits_at(query, start, 4)
        and query[start + 4 : start + 5] == "-"
        and _digits_at(query, start + 5, 2)
        and query[start + 7 : start + 8] == "-"
        and _digits_at(query, start + 8, 2)
    ):
        return _read_date_or_datetime(query, start)
    i = start + 1 if query[start] in "+-" else start
    while i < n and query[i] in _DIGITS:
        i += 1
    is_float = False
    if i < n and query[i] == "." and i + 1 < n and query[i + 1] in _DIGITS:
        is_float = True
        i += 1
        while i < n and query[i] in _DIGITS:
            i += 1
    text = query[start:i]
    value: int | float = float(text) if is_float else int(text)
    return Token(TokenKind.NUMBER, text, value, start), i


def _read_date_or_datetime(query: str, start: int) -> tuple[Token, int]:
    n = len(query)
    i = start + 10
    if i < n and query[i] == "T":
        # HH:MM:SS[.fff] then a mandatory zone: Z, +HH:MM or +HHMM (Salesforce requires one).
        if not (
            _digits_at(query, i + 1, 2)
            and query[i + 3 : i + 4] == ":"
            and _digits_at(query, i + 4, 2)
            and query[i + 6 : i + 7] == ":"
            and _digits_at(query, i + 7, 2)
        ):
            raise _error_at(query, start, _word_at(query, start))
        i += 9
        if i < n and query[i] == ".":
            i += 1
            frac_start = i
            while i < n and query[i] in _DIGITS:
                i += 1
            if i == frac_start:
                raise _error_at(query, start, _word_at(query, start))
        if i < n and query[i] == "Z":
            i += 1
        elif i < n and query[i] in "+-" and _digits_at(query, i + 1, 2):
            if query[i + 3 : i + 4] == ":" and _digits_at(query, i + 4, 2):
                i += 6
            elif _digits_at(query, i + 3, 2):
                i += 5
            else:
                raise _error_at(query, start, _word_at(query, start))
        else:
            raise _error_at(query, start, _word_at(query, start))
        kind = TokenKind.DATETIME
    else:
        kind = TokenKind.DATE
    if i < n and (query[i].isalnum() or query[i] in "_.:"):
        raise _error_at(query, start, _word_at(query, start))
    text = query[start:i]
    try:
        value: Any = (
            parse_sf_datetime(text) if kind is TokenKind.DATETIME else (date.fromisoformat(text))
        )
    except ValueError:
        raise _error_at(query, start, text) from None
    return Token(kind, text, value, start), i


def _word_at(query: str, start: int) -> str:
    end = start
    while end < len(query) and not query[end].isspace() and query[end] not in "(),":
        end += 1
    return query[start:end]


# --------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True)
class FieldRef:
    name: str  # as written in the query
    token: Token


@dataclass(frozen=True)
class Literal:
    kind: TokenKind  # STRING, NUMBER, DATE, DATETIME, BOOLEAN or NULL
    value: Any
    token: Token


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str  # '=', '!=', '<', '<=', '>', '>='
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldRef
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    field: FieldRef
    pattern: Literal


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Comparison | InList | Like | Not | And | Or


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool = False
    nulls_first: bool = True  # Salesforce's default, whatever the direction


@dataclass(frozen=True)
class SelectQuery:
    text: str
    object_name: FieldRef
    fields: tuple[FieldRef, ...]  # empty for COUNT()
    is_count: bool
    where: Expr | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


# --------------------------------------------------------------------------------------------
# Parser

_LITERAL_KINDS = (
    TokenKind.STRING,
    TokenKind.NUMBER,
    TokenKind.DATE,
    TokenKind.DATETIME,
    TokenKind.BOOLEAN,
    TokenKind.NULL,
)


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind is not TokenKind.EOF:
            self.i += 1
        return token

    def fail(self, token: Token | None = None) -> SoqlError:
        token = token or self.current
        return _error_at(self.query, token.pos, token.text)

    def accept_keyword(self, word: str) -> bool:
        if self.current.is_keyword(word):
            self.advance()
            return True
        return False

    def expect_keyword(self, word: str) -> Token:
        if not self.current.is_keyword(word):
            raise self.fail()
        return self.advance()

    def expect(self, kind: TokenKind) -> Token:
        if self.current.kind is not kind:
            raise self.fail()
        return self.advance()

    def field(self) -> FieldRef:
        token = self.current
        if token.kind is not TokenKind.IDENT or token.text.upper() in RESERVED:
            raise self.fail()
        self.advance()
        return FieldRef(token.text, token)

    def integer(self) -> int:
        token = self.current
        if token.kind is not TokenKind.NUMBER or not isinstance(token.value, int):
            raise self.fail()
        if token.value < 0:
            raise self.fail()
        self.advance()
        return token.value

    def parse(self) -> SelectQuery:
        self.expect_keyword("SELECT")
        fields: list[FieldRef] = []
        is_count = False
        if self.current.is_keyword("COUNT") and self.tokens[self.i + 1].kind is TokenKind.LPAREN:
            self.advance()
            self.advance()
            self.expect(TokenKind.RPAREN)
            is_count = True
        else:
            fields.append(self.field())
            while self.current.kind is TokenKind.COMMA:
                self.advance()
                fields.append(self.field())
        self.expect_keyword("FROM")
        object_name = self.field()
        where = None
        if self.accept_keyword("WHERE"):
            where = self.condition()
        order_by: list[OrderItem] = []
        if self.accept_keyword("ORDER"):
            self.expect_keyword("BY")
            order_by.append(self.order_item())
            while self.current.kind is TokenKind.COMMA:
                self.advance()
                order_by.append(self.order_item())
        limit = self.integer() if self.accept_keyword("LIMIT") else None
        offset = self.integer() if self.accept_keyword("OFFSET") else None
        if self.current.kind is not TokenKind.EOF:
            raise self.fail()
        return SelectQuery(
            text=self.query,
            object_name=object_name,
            fields=tuple(fields),
            is_count=is_count,
            where=where,
            order_by=tuple(order_by),
            limit=limit,
            offset=offset,
        )

    def order_item(self) -> OrderItem:
        field = self.field()
        descending = False
        if self.accept_keyword("DESC"):
            descending = True
        else:
            self.accept_keyword("ASC")
        nulls_first = True
        if self.accept_keyword("NULLS"):
            if self.accept_keyword("LAST"):
                nulls_first = False
            else:
                self.expect_keyword("FIRST")
        return OrderItem(field, descending, nulls_first)

    def condition(self) -> Expr:
        first = self.negatable_operand()
        joiner = self.current
        if not (joiner.is_keyword("AND") or joiner.is_keyword("OR")):
            return first
        word = joiner.text.upper()
        other = "OR" if word == "AND" else "AND"
        operands = [first]
        while self.accept_keyword(word):
            operands.append(self.operand())
            if self.current.is_keyword(other):
                # Salesforce refuses to guess the precedence: parentheses are required.
                raise self.fail()
        return And(tuple(operands)) if word == "AND" else Or(tuple(operands))

    def negatable_operand(self) -> Expr:
        if self.accept_keyword("NOT"):
            return Not(self.operand())
        return self.operand()

    def operand(self) -> Expr:
        if self.current.kind is TokenKind.LPAREN:
            self.advance()
            inner = self.condition()
            self.expect(TokenKind.RPAREN)
            return inner
        field = self.field()
        token = self.current
        if token.kind is TokenKind.OPERATOR:
            self.advance()
            return Comparison(field, token.value, self.literal())
        if token.is_keyword("LIKE"):
            self.advance()
            pattern = self.literal()
            if pattern.kind is not TokenKind.STRING:
                raise self.fail(pattern.token)
            return Like(field, pattern)
        negated = False
        if token.is_keyword("NOT"):
            self.advance()
            negated = True
            if not self.current.is_keyword("IN"):
                raise self.fail()
        if self.accept_keyword("IN"):
            self.expect(TokenKind.LPAREN)
            values = [self.literal()]
            while self.current.kind is TokenKind.COMMA:
                self.advance()
                values.append(self.literal())
            self.expect(TokenKind.RPAREN)
            return InList(field, tuple(values), negated)
        raise self.fail()

    def literal(self) -> Literal:
        token = self.current
        if token.kind not in _LITERAL_KINDS:
            raise self.fail()
        self.advance()
        return Literal(token.kind, token.value, token)


def parse(query: str) -> SelectQuery:
    """Parse a SOQL string; raises SoqlError(MALFORMED_QUERY) on a syntax error."""
    return _Parser(query).parse()


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


def _json_value(value: Any, ftype: str) -> Any:
    if value is None:
        return None
    if ftype == "datetime":
        return format_sf_datetime(_typed(value, ftype))
    if ftype == "date" and isinstance(value, date):
        return value.isoformat()
    return value


class _Compiler:
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


def _like_matcher(raw: str) -> Callable[[str], bool]:
    """Compile a LIKE pattern (raw literal text, escapes intact) to a case-insensitive matcher."""
    parts: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            parts.append(re.escape(_ESCAPES.get(nxt, nxt)))
            i += 2
            continue
        parts.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    pattern = re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
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
    compiler = _Compiler(query, schema)
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
