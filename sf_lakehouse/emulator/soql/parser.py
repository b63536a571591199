"""The SOQL parser: a recursive-descent parser of the subset into an AST (``SelectQuery``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .lexer import RESERVED, SoqlError, Token, TokenKind, error_at, tokenize

__all__ = [
    "And",
    "Comparison",
    "Expr",
    "FieldRef",
    "InList",
    "Like",
    "Literal",
    "Not",
    "Or",
    "OrderItem",
    "SelectQuery",
    "parse",
]

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
        return error_at(self.query, token.pos, token.text)

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
