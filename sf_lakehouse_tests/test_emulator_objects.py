"""The emulator's objects: standard and custom objects, deletes and undeletes, queryAll, Bulk 2.0.

A small hand-written history pins the exact behaviour; a generated org checks the same rules at
scale against an oracle computed from the history itself.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from sf_lakehouse.emulator import HistoryError, SalesforceEmulator, generate_org
from sf_lakehouse.emulator.history import format_sf_datetime, object_of, parse_sf_datetime
from sf_lakehouse.emulator.testing import redirecting_session

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
U1, U2 = "005000000000001AAA", "005000000000002AAA"
A1, A2, A3 = "001000000000001AAA", "001000000000002AAA", "001000000000003AAA"
O1 = "006000000000001AAA"
W1 = "a05000000000001AAA"


def at(minutes: float) -> str:
    return format_sf_datetime(T0 + timedelta(minutes=minutes))


def version(object_name: str | None, record_id: str, minutes: float, **fields: Any) -> dict:
    record: dict[str, Any] = {"attributes": {"type": object_name}} if object_name else {}
    record.update(Id=record_id, CreatedDate=at(0), LastModifiedDate=at(minutes))
    record.update(SystemModstamp=at(minutes), **fields)
    return record


def user(record_id: str, minutes: float, name: str) -> dict:
    first, last = name.split()
    email = f"{first.lower()}@acme.example"
    return version(
        None,
        record_id,
        minutes,
        Username=email,
        Email=email,
        Name=name,
        FirstName=first,
        LastName=last,
        IsActive=True,
    )


def account(record_id: str, minutes: float, **fields: Any) -> dict:
    return version("Account", record_id, minutes, **fields)


# A1 is deleted at +120 min and undeleted at +300 min (as a customer now); A3 is deleted for
# good at +180 min; A2 lives on. O1 moves a stage. W1 is a record of a custom object.
HISTORY = [
    user(U1, 0, "Zoë O'Brien"),
    user(U2, 1, "José Ångström"),
    account(A1, 60, IsDeleted=False, Name="Acme", Type="Prospect", OwnerId=U1),
    account(A1, 120, IsDeleted=True, Name="Acme", Type="Prospect", OwnerId=U1),
    account(A1, 300, Name="Acme", Type="Customer - Direct", OwnerId=U2),
    account(A2, 61, Name="Globex", Type="Customer - Channel", OwnerId=U2, AnnualRevenue=5e6),
    account(A3, 62, Name="Initech", OwnerId=U1, NumberOfEmployees=120),
    account(A3, 180, IsDeleted=True, Name="Initech", OwnerId=U1, NumberOfEmployees=120),
    version(
        "Opportunity",
        O1,
        90,
        IsDeleted=False,
        AccountId=A2,
        Name="Globex - Audit",
        StageName="Prospecting",
        Amount=1000.0,
        Probability=10.0,
        CloseDate="2026-04-01",
        OwnerId=U2,
        IsClosed=False,
        IsWon=False,
    ),
    version(
        "Opportunity",
        O1,
        240,
        IsDeleted=False,
        AccountId=A2,
        Name="Globex - Audit",
        StageName="Qualification",
        Amount=1500.0,
        Probability=20.0,
        CloseDate="2026-04-01",
        OwnerId=U2,
        IsClosed=False,
        IsWon=False,
    ),
    version("Widget__c", W1, 70, Name="Sprocket", OwnerId=U1, Size__c=3, Color__c="blue"),
]
LATER = T0 + timedelta(hours=8)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(HISTORY, workdir=tmp_path / "emulator", now=LATER) as running:
        yield running


def client(emulator: SalesforceEmulator) -> Salesforce:
    creds = emulator.credentials
    return Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=redirecting_session(emulator.base_url, emulator.ca_bundle),
        version="59.0",
    )


def ids(result: dict[str, Any]) -> set[str]:
    return {r["Id"] for r in result["records"]}


# --- the object catalogue ----------------------------------------------------------------


def test_sobjects_lists_standard_and_custom_objects(emulator: SalesforceEmulator) -> None:
    listing = client(emulator).describe()
    objects = {o["name"]: o for o in listing["sobjects"]}
    assert set(objects) == {"Account", "Contact", "Opportunity", "User", "Widget__c"}
    prefixes = {name: o["keyPrefix"] for name, o in objects.items()}
    assert prefixes == {
        "Account": "001",
        "Contact": "003",
        "Opportunity": "006",
        "User": "005",
        "Widget__c": "a05",
    }
    assert objects["Widget__c"]["custom"] is True and objects["Account"]["custom"] is False
    assert objects["Opportunity"]["labelPlural"] == "Opportunities"
    assert all(o["queryable"] for o in objects.values())
    assert objects["Account"]["urls"] == {
        "sobject": "/services/data/v59.0/sobjects/Account",
        "describe": "/services/data/v59.0/sobjects/Account/describe",
        "rowTemplate": "/services/data/v59.0/sobjects/Account/{ID}",
    }


def test_describe_standard_objects_and_types(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    account_fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    expected = {
        "Id": "id",
        "IsDeleted": "boolean",
        "Name": "string",
        "Type": "picklist",
        "Industry": "picklist",
        "BillingCountry": "string",
        "OwnerId": "reference",
        "AnnualRevenue": "currency",
        "NumberOfEmployees": "int",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    }
    assert {name: account_fields[name]["type"] for name in expected} == expected
    assert account_fields["OwnerId"]["referenceTo"] == ["User"]
    assert account_fields["OwnerId"]["relationshipName"] == "Owner"
    assert account_fields["IsDeleted"]["nillable"] is False
    assert "Customer - Direct" in {v["value"] for v in account_fields["Type"]["picklistValues"]}
    assert account_fields["AnnualRevenue"]["soapType"] == "xsd:double"

    opportunity = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert (opportunity["CloseDate"]["type"], opportunity["CloseDate"]["soapType"]) == (
        "date",
        "xsd:date",
    )
    assert opportunity["Probability"]["type"] == "percent"
    assert opportunity["Amount"]["type"] == "currency"
    assert opportunity["IsWon"]["type"] == "boolean"
    assert opportunity["AccountId"]["referenceTo"] == ["Account"]
    stages = [v["value"] for v in opportunity["StageName"]["picklistValues"]]
    assert stages[:4] == ["Prospecting", "Qualification", "Proposal", "Negotiation"]

    # No Contact in the history: its standard fields are there all the same.
    contact = {f["name"]: f["type"] for f in sf.Contact.describe()["fields"]}
    assert contact["AccountId"] == "reference" and contact["Email"] == "email"
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0
    # User has no IsDeleted field, like Salesforce's.
    assert "IsDeleted" not in {f["name"] for f in sf.User.describe()["fields"]}


def test_custom_object_fields_come_from_its_history(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    describe = sf.Widget__c.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["custom"] is True and describe["label"] == "Widget"
    assert (fields["Size__c"]["type"], fields["Size__c"]["custom"]) == ("int", True)
    assert fields["Color__c"]["type"] == "string" and fields["Name"]["custom"] is False
    assert fields["IsDeleted"]["type"] == "boolean"
    (record,) = sf.query("SELECT Id, Size__c, IsDeleted FROM Widget__c")["records"]
    assert record == {
        "attributes": {"type": "Widget__c", "url": f"/services/data/v59.0/sobjects/Widget__c/{W1}"},
        "Id": W1,
        "Size__c": 3,
        "IsDeleted": False,
    }


def test_unknown_objects_and_fields_are_salesforce_errors(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Foo")
    (error,) = info.value.content
    assert error["errorCode"] == "INVALID_TYPE"
    assert error["message"].startswith("sObject type 'Foo' is not supported.")
    with pytest.raises(SalesforceResourceNotFound) as not_found:
        sf.Foo.describe()
    assert not_found.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    for soql in ("SELECT Id, Division FROM Account", "SELECT Id FROM User WHERE IsDeleted = false"):
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.query(soql)
        assert info.value.content[0]["errorCode"] == "INVALID_FIELD", soql


# --- deletes and undeletes -----------------------------------------------------------------


def test_query_hides_deleted_records_and_query_all_shows_them(
    emulator: SalesforceEmulator,
) -> None:
    sf = client(emulator)
    soql = "SELECT Id, Name, Type, IsDeleted FROM Account ORDER BY Name"
    emulator.set_clock(T0 + timedelta(minutes=200))  # A1 and A3 deleted
    assert ids(sf.query(soql)) == {A2}
    every = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in every] == [(A1, True), (A2, False), (A3, True)]
    assert every[0]["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v59.0/sobjects/Account/{A1}",
    }

    emulator.set_clock(LATER)  # A1 undeleted as a customer; A3 still deleted
    live = sf.query(soql)["records"]
    assert [(r["Id"], r["Type"], r["IsDeleted"]) for r in live] == [
        (A1, "Customer - Direct", False),
        (A2, "Customer - Channel", False),
    ]
    assert ids(sf.query_all(soql, include_deleted=True)) == {A1, A2, A3}


def test_count_on_query_and_query_all(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    emulator.set_clock(T0 + timedelta(minutes=200))
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 1
    assert sf.query("SELECT COUNT() FROM Account", include_deleted=True)["totalSize"] == 3
    where = "SELECT COUNT() FROM Account WHERE OwnerId = '005000000000001'"  # 15 characters
    assert sf.query(where)["totalSize"] == 0
    assert sf.query(where, include_deleted=True)["totalSize"] == 2
    deleted = "SELECT COUNT() FROM Account WHERE IsDeleted = true"
    assert sf.query(deleted)["totalSize"] == 0
    assert sf.query(deleted, include_deleted=True)["totalSize"] == 2


def test_where_is_deleted_false(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    soql = "SELECT Id FROM Account WHERE IsDeleted = false"
    assert ids(sf.query(soql)) == {A1, A2}
    assert ids(sf.query_all(soql, include_deleted=True)) == {A1, A2}
    assert ids(sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true", True)) == {A3}


def test_clock_moves_a_deletion_in_and_out_of_view(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    soql = f"SELECT Id, IsDeleted, SystemModstamp FROM Account WHERE Id = '{A1}'"
    deleted_at, undeleted_at = T0 + timedelta(minutes=120), T0 + timedelta(minutes=300)
    emulator.set_clock(deleted_at - timedelta(milliseconds=1))
    assert ids(sf.query(soql)) == {A1}
    emulator.set_clock(deleted_at)  # the deleting version is visible exactly at its stamp
    assert ids(sf.query(soql)) == set()
    (record,) = sf.query_all(soql, include_deleted=True)["records"]
    assert (record["IsDeleted"], record["SystemModstamp"]) == (True, at(120))
    emulator.set_clock(undeleted_at)
    (record,) = sf.query(soql)["records"]
    assert (record["IsDeleted"], record["SystemModstamp"]) == (False, at(300))
    emulator.set_clock(T0 + timedelta(minutes=30))  # before A1 existed
    assert sf.query_all(soql, include_deleted=True)["totalSize"] == 0


def test_get_one_record_of_each_object(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    record = sf.Opportunity.get(O1)
    assert (record["StageName"], record["Amount"], record["CloseDate"]) == (
        "Qualification",
        1500.0,
        "2026-04-01",
    )
    assert record["attributes"]["type"] == "Opportunity" and record["IsDeleted"] is False
    assert sf.Account.get(A1)["Type"] == "Customer - Direct"
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Account.get(A3)  # deleted
    assert info.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(O1)  # an Opportunity's Id is no Account


# --- Bulk API 2.0 ------------------------------------------------------------------------


def _csv_rows(pages: Iterator[str]) -> list[dict[str, str]]:
    return [row for page in pages for row in csv.DictReader(io.StringIO(page))]


def test_bulk2_query_all_includes_deleted_records(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    soql = "SELECT Id, Name, IsDeleted, OwnerId FROM Account ORDER BY Id"
    live = _csv_rows(sf.bulk2.Account.query(soql, wait=0))
    assert [(r["Id"], r["IsDeleted"]) for r in live] == [(A1, "false"), (A2, "false")]
    every = _csv_rows(sf.bulk2.Account.query_all(soql, wait=0))
    assert [(r["Id"], r["IsDeleted"]) for r in every] == [
        (A1, "false"),
        (A2, "false"),
        (A3, "true"),
    ]
    opportunities = _csv_rows(sf.bulk2.Opportunity.query("SELECT Id, Amount FROM Opportunity"))
    assert opportunities == [{"Id": O1, "Amount": "1500.0"}]


def test_bulk2_job_info_names_the_object(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    session = requests.Session()
    session.trust_env = False
    session.verify = str(emulator.ca_bundle)
    headers = {"Authorization": f"Bearer {sf.session_id}", "Content-Type": "application/json"}
    jobs = f"{emulator.base_url}/services/data/v59.0/jobs/query"
    body = {"operation": "queryAll", "query": "SELECT Id FROM Opportunity"}
    created = session.post(jobs, headers=headers, data=json.dumps(body)).json()
    assert (created["object"], created["operation"]) == ("Opportunity", "queryAll")
    bad = session.post(
        jobs,
        headers=headers,
        data=json.dumps({"operation": "query", "query": "SELECT Id FROM Foo"}),
    )
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_TYPE"


# --- a history of Users alone ------------------------------------------------------------


def test_users_only_history_is_a_valid_org(tmp_path: Path) -> None:
    history = generate_org(users=12, seed=1, days=2, accounts=0, opportunities=0)
    assert {object_of(r) for r in history} == {"User"}
    with SalesforceEmulator(history, workdir=tmp_path, now=T0 + timedelta(days=3)) as emulator:
        sf = client(emulator)
        assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 12
        for name in ("Account", "Contact", "Opportunity"):
            assert sf.query(f"SELECT Id, IsDeleted FROM {name}")["records"] == []
            assert sf.query(f"SELECT COUNT() FROM {name}", include_deleted=True)["totalSize"] == 0
            assert getattr(sf, name).describe()["fields"][0]["name"] == "Id"
        assert _csv_rows(sf.bulk2.Account.query("SELECT Id, Name FROM Account", wait=0)) == []
        names = {o["name"] for o in sf.describe()["sobjects"]}
        assert names == {"Account", "Contact", "Opportunity", "User"}


def test_in_memory_history_is_validated(tmp_path: Path) -> None:
    bad = [*HISTORY, {**HISTORY[0], "SystemModstamp": at(500), "IsDeleted": True}]
    with pytest.raises(HistoryError, match=r"history record 11: a User has no IsDeleted"):
        SalesforceEmulator(bad, workdir=tmp_path)
    clash = [*HISTORY, account(U1, 700, Name="Not a user")]
    with pytest.raises(
        HistoryError,
        match=r"Id 005000000000001AAA belongs to Account here but to User at history record 0",
    ):
        SalesforceEmulator(clash, workdir=tmp_path)


# --- a generated org, against an oracle ---------------------------------------------------

GENERATED = generate_org(users=90, seed=5, accounts=40, opportunities=240)


def _oracle(object_name: str, moment: datetime) -> dict[str, dict[str, Any]]:
    """Per Id of the object, the latest version with SystemModstamp <= moment."""
    latest: dict[str, dict[str, Any]] = {}
    for record in GENERATED:
        stamp = parse_sf_datetime(record["SystemModstamp"])
        if object_of(record) == object_name and stamp <= moment:
            latest[record["Id"]] = record
    return latest


@pytest.mark.parametrize("days", [0.5, 1.5, 3, 7])
def test_generated_org_served_at_several_clocks(tmp_path: Path, days: float) -> None:
    moment = T0 + timedelta(days=days)
    with SalesforceEmulator(GENERATED, workdir=tmp_path, now=moment) as emulator:
        sf = client(emulator)
        headers = {"Sforce-Query-Options": "batchSize=200"}
        for name in ("User", "Account", "Opportunity"):
            expected = _oracle(name, moment)
            live = {i for i, r in expected.items() if not r.get("IsDeleted")}
            fields = "Id, SystemModstamp" + ("" if name == "User" else ", IsDeleted")
            got = sf.query_all(f"SELECT {fields} FROM {name}", headers=headers)["records"]
            assert {r["Id"] for r in got} == live
            every = sf.query_all(f"SELECT {fields} FROM {name}", True, headers=headers)["records"]
            assert {r["Id"]: r["SystemModstamp"] for r in every} == {
                i: r["SystemModstamp"] for i, r in expected.items()
            }
            if name != "User":
                assert {r["Id"] for r in every if r["IsDeleted"]} == set(expected) - live


def test_query_all_pages_through_deleted_records(tmp_path: Path) -> None:
    with SalesforceEmulator(GENERATED, workdir=tmp_path, now=T0 + timedelta(days=7)) as emulator:
        sf = client(emulator)
        headers = {"Sforce-Query-Options": "batchSize=200"}
        total = len(_oracle("Opportunity", T0 + timedelta(days=7)))
        assert total > 200
        first = sf.query("SELECT Id FROM Opportunity ORDER BY Id", True, headers=headers)
        assert first["done"] is False and first["totalSize"] == total
        assert first["nextRecordsUrl"].startswith("/services/data/v59.0/queryAll/01g")
        rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=headers)
        assert len(first["records"]) + len(rest["records"]) == total and rest["done"] is True
