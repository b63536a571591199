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

Modules: ``lexer`` (tokens), ``parser`` (the AST), ``evaluate`` (evaluation over dict records and
the schema checks shared with the columnar engine, ``..engine``).
"""

from .evaluate import (
    Compiler,
    FieldDef,
    ObjectSchema,
    QueryResult,
    comparable_value,
    execute,
    field_names,
    json_value,
    like_regex,
    unsupported_object,
)
from .lexer import ID_TYPES, RESERVED, STRING_TYPES, SoqlError, Token, TokenKind, tokenize
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
    OrderItem,
    SelectQuery,
    parse,
)

__all__ = [
    "ID_TYPES",
    "RESERVED",
    "STRING_TYPES",
    "And",
    "Comparison",
    "Compiler",
    "Expr",
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
    "comparable_value",
    "execute",
    "field_names",
    "json_value",
    "like_regex",
    "parse",
    "tokenize",
    "unsupported_object",
]
