"""Unit tests of the emulator's SOQL subset: tokenizer, parser, evaluator and error codes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from sf_lakehouse.emulator.soql import (
    And,
    Comparison,
    FieldDef,
    InList,
    Like,
    Not,
    ObjectSchema,
    Or,
    SoqlError,
    TokenKind,
    execute,
    parse,
    tokenize,
)

SCHEMA = ObjectSchema(
    "User",
    (
        FieldDef("Id", "id"),
        FieldDef("Username", "string"),
        FieldDef("Name", "string"),
        FieldDef("Email", "email"),
        FieldDef("IsActive", "boolean"),
        FieldDef("Division", "string"),
        FieldDef("Audit_Phase__c", "string"),
        FieldDef("Score__c", "double"),
        FieldDef("Hired__c", "date"),
        FieldDef("SystemModstamp", "datetime"),
    ),
)


def _user(n: int, **fields: Any) -> dict[str, Any]:
    record = {
        "Id": f"005000000000{n:03d}AAA",
        "Username": f"user{n}@acme-corp.example",
        "Name": f"User {n}",
        "Email": f"user{n}@acme-corp.example",
        "IsActive": True,
        "Division": "EMEA",
        "Audit_Phase__c": None,
        "Score__c": float(n),
        "Hired__c": "2025-01-0" + str(n % 9 + 1),
        "SystemModstamp": f"2026-03-01T08:00:0{n % 10}.000+0000",
    }
    record.update(fields)
    return record


RECORDS = [
    _user(1, Division="EMEA", Audit_Phase__c="Planning"),
    _user(2, Division="APAC", Audit_Phase__c="Review", IsActive=False),
    _user(3, Division=None, Audit_Phase__c="Planning", Name="Zoë O'Brien"),
    _user(4, Division="North America", Audit_Phase__c=None),
    _user(5, Division="emea", Audit_Phase__c="Closed"),
]


def _ids(soql: str, records: list[dict[str, Any]] | None = None) -> list[int]:
    result = execute(soql, SCHEMA, RECORDS if records is None else records)
    return [int(r["Id"][12:15]) for r in result.records]


def _error(soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        execute(soql, SCHEMA, RECORDS)
    return info.value


# --- tokenizer ------------------------------------------------------------------------------


def test_tokenizer_kinds_and_case_insensitive_keywords() -> None:
    tokens = tokenize("select Id, Name FROM User where IsActive = TRUE and Name != null")
    kinds = [t.kind for t in tokens]
    assert kinds[:4] == [TokenKind.IDENT, TokenKind.IDENT, TokenKind.COMMA, TokenKind.IDENT]
    assert tokens[0].is_keyword("SELECT")
    assert tokens[8].kind is TokenKind.OPERATOR and tokens[8].value == "="
    assert tokens[9].kind is TokenKind.BOOLEAN and tokens[9].value is True
    assert tokens[-2].kind is TokenKind.NULL
    assert tokens[-1].kind is TokenKind.EOF


def test_tokenizer_strings_with_backslash_escapes() -> None:
    (token, _eof) = tokenize(r"'O\'Brien \\ \"x\" \n'")
    assert token.kind is TokenKind.STRING
    assert token.value == 'O\'Brien \\ "x" \n'
    assert tokenize("'Zoë Nguyễn'")[0].value == "Zoë Nguyễn"


def test_tokenizer_numbers() -> None:
    values = [t.value for t in tokenize("42 -7 3.5 +1")[:-1]]
    assert values == [42, -7, 3.5, 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T08:00:00Z", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T08:00:00.000+0000", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T08:00:00.250Z", datetime(2026, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)),
        ("2026-03-01T09:00:00+01:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T03:00:00-0500", datetime(2026, 3, 1, 8, tzinfo=UTC)),
    ],
)
def test_tokenizer_datetime_literal_forms(text: str, expected: datetime) -> None:
    token = tokenize(text)[0]
    assert token.kind is TokenKind.DATETIME
    assert token.value == expected
    assert token.value.tzinfo is not None


def test_tokenizer_date_literal() -> None:
    token = tokenize("2026-03-01")[0]
    assert token.kind is TokenKind.DATE and token.value == date(2026, 3, 1)


def test_tokenizer_operators() -> None:
    ops = [t.value for t in tokenize("= != <> < <= > >=")[:-1]]
    assert ops == ["=", "!=", "!=", "<", "<=", ">", ">="]


@pytest.mark.parametrize(
    "bad", ["2026-03-01T08:00:00", "2026-13-01", "'unterminated", "Name = 'a' ; ", "a ! b", r"'\q'"]
)
def test_tokenizer_errors_are_malformed_query(bad: str) -> None:
    with pytest.raises(SoqlError) as info:
        tokenize(bad)
    assert info.value.error_code == "MALFORMED_QUERY"


# --- parser ---------------------------------------------------------------------------------


def test_parse_full_query() -> None:
    query = parse(
        "SELECT Id, Name FROM User WHERE Division IN ('EMEA', 'APAC') AND Name LIKE 'Z%' "
        "ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5"
    )
    assert [f.name for f in query.fields] == ["Id", "Name"]
    assert query.object_name.name == "User"
    assert isinstance(query.where, And)
    assert isinstance(query.where.operands[0], InList)
    assert isinstance(query.where.operands[1], Like)
    assert [(o.field.name, o.descending, o.nulls_first) for o in query.order_by] == [
        ("Name", True, False),
        ("Id", False, True),
    ]
    assert (query.limit, query.offset) == (10, 5)


def test_parse_count() -> None:
    query = parse("SELECT COUNT() FROM User WHERE IsActive = true")
    assert query.is_count and query.fields == ()


def test_parse_precedence_not_binds_tightest() -> None:
    query = parse("SELECT Id FROM User WHERE NOT IsActive = true AND Division = 'EMEA'")
    assert isinstance(query.where, And)
    assert isinstance(query.where.operands[0], Not)
    assert isinstance(query.where.operands[1], Comparison)


def test_parse_parentheses_group() -> None:
    query = parse(
        "SELECT Id FROM User WHERE (Division = 'EMEA' OR Division = 'APAC') AND IsActive = true"
    )
    assert isinstance(query.where, And)
    assert isinstance(query.where.operands[0], Or)
    query = parse(
        "SELECT Id FROM User WHERE Division = 'EMEA' OR (Division = 'APAC' AND IsActive = true)"
    )
    assert isinstance(query.where, Or)
    assert isinstance(query.where.operands[1], And)


def test_mixing_and_or_without_parentheses_is_rejected_like_salesforce() -> None:
    error = _error("SELECT Id FROM User WHERE Division = 'EMEA' AND IsActive = true OR Name = 'x'")
    assert error.error_code == "MALFORMED_QUERY"
    assert "unexpected token: 'OR'" in error.message


def test_not_inside_a_chain_needs_parentheses() -> None:
    error = _error("SELECT Id FROM User WHERE IsActive = true AND NOT Division = 'EMEA'")
    assert "unexpected token: 'NOT'" in error.message
    assert _ids("SELECT Id FROM User WHERE IsActive = true AND (NOT Division = 'EMEA')") == [3, 4]


@pytest.mark.parametrize(
    ("soql", "token"),
    [
        ("SELECT Id FORM User", "FORM"),
        ("SELECT Id, FROM User", "FROM"),
        ("SELECT Id FROM User WHERE", "<EOF>"),
        ("SELECT Id FROM User WHERE Name", "<EOF>"),
        ("SELECT Id FROM User LIMIT 'x'", "'x'"),
        ("SELECT Id FROM User ORDER Name", "Name"),
        ("SELECT Id FROM User extra", "extra"),
        ("SELECT Id FROM User WHERE Name = Division", "Division"),
        ("UPDATE User", "UPDATE"),
    ],
)
def test_malformed_query_points_at_the_unexpected_token(soql: str, token: str) -> None:
    error = _error(soql)
    assert error.error_code == "MALFORMED_QUERY"
    assert f"unexpected token: '{token}'" in error.message
    assert "ERROR at Row:1:Column:" in error.message


def test_malformed_query_reports_row_and_column() -> None:
    error = _error("SELECT Id\nFROM User\nWHERE Name = = 'x'")
    assert "ERROR at Row:3:Column:14" in error.message


# --- evaluation -----------------------------------------------------------------------------


def test_select_returns_canonical_names_in_select_order() -> None:
    result = execute(
        "select name, ID, audit_phase__C from user where id = '005000000000001AAA'", SCHEMA, RECORDS
    )
    assert result.records == [
        {"Name": "User 1", "Id": "005000000000001AAA", "Audit_Phase__c": "Planning"}
    ]
    assert [f.name for f in result.fields] == ["Name", "Id", "Audit_Phase__c"]


def test_string_comparison_ignores_case_like_salesforce() -> None:
    assert _ids("SELECT Id FROM User WHERE Division = 'EMEA'") == [1, 5]
    assert _ids("SELECT Id FROM User WHERE Name LIKE 'zoë%'") == [3]
    assert _ids("SELECT Id FROM User WHERE Name LIKE '%o\\'b%'") == [3]
    assert _ids("SELECT Id FROM User WHERE Username LIKE 'user_@%'") == [1, 2, 3, 4, 5]


def test_null_comparisons() -> None:
    assert _ids("SELECT Id FROM User WHERE Division = null") == [3]
    assert _ids("SELECT Id FROM User WHERE Division != null") == [1, 2, 4, 5]
    # Like Salesforce, != also matches records where the field is null.
    assert _ids("SELECT Id FROM User WHERE Audit_Phase__c != 'Planning'") == [2, 4, 5]
    assert _ids("SELECT Id FROM User WHERE Audit_Phase__c <> 'Planning'") == [2, 4, 5]


def test_in_and_not_in() -> None:
    assert _ids("SELECT Id FROM User WHERE Audit_Phase__c IN ('Review', 'Closed')") == [2, 5]
    assert _ids("SELECT Id FROM User WHERE Audit_Phase__c NOT IN ('Review', 'Closed')") == [1, 3, 4]
    assert _ids("SELECT Id FROM User WHERE Audit_Phase__c IN (null)") == [4]


def test_boolean_and_numbers_and_dates() -> None:
    assert _ids("SELECT Id FROM User WHERE IsActive = false") == [2]
    assert _ids("SELECT Id FROM User WHERE Score__c >= 4") == [4, 5]
    assert _ids("SELECT Id FROM User WHERE Score__c < 2.5") == [1, 2]
    assert _ids("SELECT Id FROM User WHERE Hired__c > 2025-01-04") == [4, 5]


def test_datetime_comparisons_use_instants_not_text() -> None:
    assert _ids("SELECT Id FROM User WHERE SystemModstamp >= 2026-03-01T08:00:03Z") == [3, 4, 5]
    # The same instant written in another zone.
    assert _ids("SELECT Id FROM User WHERE SystemModstamp > 2026-03-01T09:00:03+01:00") == [4, 5]
    assert _ids("SELECT Id FROM User WHERE SystemModstamp = 2026-03-01T08:00:02.000+0000") == [2]
    assert _ids("SELECT Id FROM User WHERE SystemModstamp < 2026-03-01T08:00:02.001Z") == [1, 2]


def test_precedence_evaluation() -> None:
    soql = (
        "SELECT Id FROM User WHERE (Division = 'EMEA' OR Division = 'APAC') "
        "AND (NOT Audit_Phase__c = 'Planning')"
    )
    assert _ids(soql) == [2, 5]
    soql = "SELECT Id FROM User WHERE NOT Division = 'EMEA' AND IsActive = true"
    assert _ids(soql) == [3, 4]  # (NOT a) AND b
    soql = "SELECT Id FROM User WHERE NOT (Division = 'EMEA' AND IsActive = true)"
    assert _ids(soql) == [2, 3, 4]


def test_order_by_limit_offset_and_nulls() -> None:
    assert _ids("SELECT Id FROM User ORDER BY Division") == [3, 2, 1, 5, 4]
    assert _ids("SELECT Id FROM User ORDER BY Division NULLS LAST") == [2, 1, 5, 4, 3]
    assert _ids("SELECT Id FROM User ORDER BY Division DESC NULLS LAST") == [4, 1, 5, 2, 3]
    assert _ids("SELECT Id FROM User ORDER BY Score__c DESC LIMIT 2") == [5, 4]
    assert _ids("SELECT Id FROM User ORDER BY Score__c LIMIT 2 OFFSET 1") == [2, 3]


def test_count() -> None:
    result = execute("SELECT COUNT() FROM User WHERE Division = 'EMEA'", SCHEMA, RECORDS)
    assert result.is_count and result.total_size == 2 and result.records == []


def test_output_formats_datetimes_like_the_rest_api() -> None:
    records = [_user(1, SystemModstamp="2026-03-01T09:00:00+01:00")]
    result = execute("SELECT SystemModstamp, IsActive, Score__c FROM User", SCHEMA, records)
    assert result.records == [
        {"SystemModstamp": "2026-03-01T08:00:00.000+0000", "IsActive": True, "Score__c": 1.0}
    ]


def test_missing_field_is_null() -> None:
    records = [{"Id": "005000000000001AAA", "SystemModstamp": "2026-03-01T08:00:00.000+0000"}]
    result = execute("SELECT Id, Division FROM User WHERE Division = null", SCHEMA, records)
    assert result.records == [{"Id": "005000000000001AAA", "Division": None}]


def test_fifteen_character_id_matches() -> None:
    assert _ids("SELECT Id FROM User WHERE Id = '005000000000002'") == [2]


# --- errors ---------------------------------------------------------------------------------


def test_quoted_value_against_datetime_field_is_invalid_field() -> None:
    error = _error("SELECT Id FROM User WHERE SystemModstamp > '2026-03-01T08:00:00Z'")
    assert error.error_code == "INVALID_FIELD"
    assert (
        "value of filter criterion for field 'SystemModstamp' must be of type dateTime and "
        "should not be enclosed in quotes"
    ) in error.message


@pytest.mark.parametrize(
    ("soql", "fragment"),
    [
        ("SELECT Id FROM User WHERE IsActive = 'true'", "must be of type boolean"),
        ("SELECT Id FROM User WHERE Hired__c = '2025-01-01'", "must be of type date"),
        ("SELECT Id FROM User WHERE SystemModstamp > 2026-03-01", "must be of type dateTime"),
        ("SELECT Id FROM User WHERE Division = 5", "must be of type string and should be enclosed"),
    ],
)
def test_literal_type_mismatches(soql: str, fragment: str) -> None:
    error = _error(soql)
    assert error.error_code == "INVALID_FIELD"
    assert fragment in error.message


def test_unknown_field_is_invalid_field() -> None:
    for soql in (
        "SELECT Id, Foo FROM User",
        "SELECT Id FROM User WHERE Foo = 'x'",
        "SELECT Id FROM User ORDER BY Foo",
    ):
        error = _error(soql)
        assert error.error_code == "INVALID_FIELD"
        assert "No such column 'Foo' on entity 'User'" in error.message


def test_unknown_object_is_invalid_type() -> None:
    error = _error("SELECT Id FROM Account")
    assert error.error_code == "INVALID_TYPE"
    assert error.message.startswith("sObject type 'Account' is not supported.")


def test_operator_errors() -> None:
    assert _error("SELECT Id FROM User WHERE IsActive > true").error_code == (
        "INVALID_QUERY_FILTER_OPERATOR"
    )
    assert _error("SELECT Id FROM User WHERE Id = 'abc'").error_code == (
        "INVALID_QUERY_FILTER_OPERATOR"
    )
    assert _error("SELECT Id FROM User WHERE Id LIKE '005%'").error_code == (
        "INVALID_QUERY_FILTER_OPERATOR"
    )


def test_duplicate_field_is_rejected() -> None:
    error = _error("SELECT Id, id FROM User")
    assert error.error_code == "MALFORMED_QUERY" and "duplicate field selected: Id" in error.message


def test_soql_error_carries_code_and_message() -> None:
    error = SoqlError("INVALID_FIELD", "boom")
    assert (error.error_code, error.message, str(error)) == (
        "INVALID_FIELD",
        "boom",
        "INVALID_FIELD: boom",
    )


def test_no_timezone_drift_with_non_utc_aware_datetimes() -> None:
    tz = timezone(timedelta(hours=-5))
    records = [_user(1, SystemModstamp=datetime(2026, 3, 1, 3, tzinfo=tz).isoformat())]
    assert _ids("SELECT Id FROM User WHERE SystemModstamp = 2026-03-01T08:00:00Z", records) == [1]
