"""SOQL tokens: the tokenizer, Salesforce's reserved words and the MALFORMED_QUERY error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from ..history import parse_sf_datetime

__all__ = [
    "ID_TYPES",
    "RESERVED",
    "STRING_TYPES",
    "SoqlError",
    "Token",
    "TokenKind",
    "error_at",
    "tokenize",
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


def error_at(query: str, pos: int, text: str) -> SoqlError:
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
                raise error_at(query, start, c)
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
            raise error_at(query, start, c)
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
    raise error_at(query, start, query[start:])


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
            raise error_at(query, start, _word_at(query, start))
        i += 9
        if i < n and query[i] == ".":
            i += 1
            frac_start = i
            while i < n and query[i] in _DIGITS:
                i += 1
            if i == frac_start:
                raise error_at(query, start, _word_at(query, start))
        if i < n and query[i] == "Z":
            i += 1
        elif i < n and query[i] in "+-" and _digits_at(query, i + 1, 2):
            if query[i + 3 : i + 4] == ":" and _digits_at(query, i + 4, 2):
                i += 6
            elif _digits_at(query, i + 3, 2):
                i += 5
            else:
                raise error_at(query, start, _word_at(query, start))
        else:
            raise error_at(query, start, _word_at(query, start))
        kind = TokenKind.DATETIME
    else:
        kind = TokenKind.DATE
    if i < n and (query[i].isalnum() or query[i] in "_.:"):
        raise error_at(query, start, _word_at(query, start))
    text = query[start:i]
    try:
        value: Any = (
            parse_sf_datetime(text) if kind is TokenKind.DATETIME else (date.fromisoformat(text))
        )
    except ValueError:
        raise error_at(query, start, text) from None
    return Token(kind, text, value, start), i


def _word_at(query: str, start: int) -> str:
    end = start
    while end < len(query) and not query[end].isspace() and query[end] not in "(),":
        end += 1
    return query[start:end]
