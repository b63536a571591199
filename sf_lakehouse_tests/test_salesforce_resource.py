"""Salesforce resource: credential validation and typed conversion (pure parts)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from sf_lakehouse.salesforce.resource import SalesforceResource
from sf_lakehouse.salesforce.types import (
    FieldSpec,
    SalesforceConfigError,
    format_soql_datetime,
    parse_sf_datetime,
    records_to_arrow,
    select_fields,
)

DESCRIBE = [
    {"name": "Id", "type": "id", "custom": False},
    {"name": "IsActive", "type": "boolean", "custom": False},
    {"name": "SystemModstamp", "type": "datetime", "custom": False},
    {"name": "Division", "type": "string", "custom": False},
    {"name": "Audit_Phase__c", "type": "picklist", "custom": True},
    {"name": "Hire_Date__c", "type": "date", "custom": True},
    {"name": "Score__c", "type": "double", "custom": True},
    {"name": "Office__c", "type": "address", "custom": True},
    {"name": "Title", "type": "string", "custom": False},
]


def test_field_list_is_configured_fields_plus_custom_fields_typed_from_describe() -> None:
    fields = select_fields(DESCRIBE, ["Id", "systemmodstamp", "Division"], "User")
    assert [(f.name, f.sf_type) for f in fields] == [
        ("Id", "id"),
        ("SystemModstamp", "datetime"),
        ("Division", "string"),
        ("Audit_Phase__c", "picklist"),
        ("Hire_Date__c", "date"),
        ("Score__c", "double"),
    ]


def test_a_configured_field_missing_from_the_org_is_a_clear_error() -> None:
    with pytest.raises(
        SalesforceConfigError, match=r"User has no field\(s\) Region__c.*config/objects/"
    ):
        select_fields(DESCRIBE, ["Id", "Region__c"], "User")


def test_records_convert_to_typed_arrow_with_utc_microsecond_timestamps() -> None:
    fields = [
        FieldSpec("Id", "id"),
        FieldSpec("IsActive", "boolean"),
        FieldSpec("SystemModstamp", "datetime"),
        FieldSpec("Hire_Date__c", "date", True),
        FieldSpec("Score__c", "double", True),
    ]
    records = [
        {
            "Id": "005A",
            "IsActive": True,
            "SystemModstamp": "2026-03-01T08:00:00.123+0000",
            "Hire_Date__c": "2020-01-31",
            "Score__c": 1,
        },
        {
            "Id": "005B",
            "IsActive": None,
            "SystemModstamp": "2026-03-01T10:00:00.000+0200",
            "Hire_Date__c": None,
            "Score__c": None,
        },
    ]
    table = records_to_arrow(records, fields)
    assert table.schema.names == ["id", "isactive", "systemmodstamp", "hire_date__c", "score__c"]
    assert table.schema.field("systemmodstamp").type == pa.timestamp("us")
    assert table.schema.field("hire_date__c").type == pa.date32()
    assert table.column("systemmodstamp").to_pylist() == [
        dt.datetime(2026, 3, 1, 8, 0, 0, 123000),
        dt.datetime(2026, 3, 1, 8, 0, 0),  # +0200 normalised to UTC
    ]
    assert table.column("score__c").to_pylist() == [1.0, None]


def test_soql_datetime_literal_round_trips_milliseconds() -> None:
    value = parse_sf_datetime("2026-03-01T08:00:00.120+0000")
    assert format_soql_datetime(value) == "2026-03-01T08:00:00.120Z"


def test_each_complete_credential_set_selects_its_mode() -> None:
    assert (
        SalesforceResource(username="u", password="p", security_token="t").auth_mode() == "password"
    )
    assert SalesforceResource(client_id="c", client_secret="s").auth_mode() == "client_credentials"
    assert SalesforceResource(session_id="s", instance_url="https://x").auth_mode() == "session"


def test_incomplete_credentials_name_what_is_missing_without_values() -> None:
    resource = SalesforceResource(username="someone", password="hunter2-secret")
    with pytest.raises(SalesforceConfigError) as error:
        resource.auth_mode()
    assert "missing security_token" in str(error.value)
    assert "hunter2-secret" not in str(error.value)


def test_two_credential_sets_are_ambiguous() -> None:
    resource = SalesforceResource(
        username="u", password="p", security_token="t", client_id="c", client_secret="s"
    )
    with pytest.raises(SalesforceConfigError, match="ambiguous"):
        resource.auth_mode()
