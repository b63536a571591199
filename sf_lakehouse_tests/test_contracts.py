"""Contract recordings (`contracts/`, written from Salesforce's public documentation): replayed
through the project's client from a local HTTPS server, and the emulator's answers checked
against the same shapes, so the emulator cannot drift from Salesforce without a test failing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from sf_lakehouse.emulator.testing import redirecting_session
from sf_lakehouse.salesforce.client import (
    ClientPolicy,
    ConnectionSettings,
    connect,
    settings_from_environment,
)
from sf_lakehouse.salesforce.convert import csv_to_arrow
from sf_lakehouse.salesforce.types import FieldSpec, SalesforceConfigError
from sf_lakehouse_tests.histories import account, user
from sf_lakehouse_tests.replay_server import CONTRACTS, Recorded, ReplayServer, Route

API = "/services/data/v59.0"
JOB = "750R0000000zlh9IAA"
LIMIT_INFO = {"Sforce-Limit-Info": "api-usage=18/15000"}
CSV_TYPE = "text/csv"
POLICY = ClientPolicy(
    timeout_seconds=5,
    max_retries=2,
    retry_base_seconds=0.01,
    retry_max_seconds=0.02,
    rate_limit_retry_seconds=0.01,
    bulk_poll_seconds=0.01,
)
SOAP_FAULT = "{http://schemas.xmlsoap.org/soap/envelope/}Fault"


def recording(name: str) -> Any:
    return json.loads((CONTRACTS / name).read_text(encoding="utf-8"))


def routes() -> list[Route]:
    def soql(verb: str) -> Route:
        return Route("GET", f"{API}/{verb}", [])

    query, query_all = soql("query"), soql("queryAll")
    query.answers = [Recorded(200, "query_user_page1.json", LIMIT_INFO)]
    query_all.answers = [Recorded(200, "queryall_account.json", LIMIT_INFO)]
    results = f"{API}/jobs/query/{JOB}/results"
    return [
        Route(
            "POST",
            "/services/Soap/u/59.0",
            [Recorded(500, "soap_login_fault.xml", content_type="text/xml;charset=UTF-8")],
            when=lambda request: b"wrong-password" in request.body,
        ),
        Route(
            "POST",
            "/services/Soap/u/59.0",
            [Recorded(200, "soap_login_ok.xml", content_type="text/xml;charset=UTF-8")],
        ),
        # The first describe is refused for the org's daily limit; the client waits and retries.
        Route(
            "GET",
            f"{API}/sobjects/User/describe",
            [
                Recorded(403, "request_limit_exceeded.json", LIMIT_INFO),
                Recorded(200, "describe_user.json", LIMIT_INFO),
            ],
        ),
        query,
        Route(
            "GET",
            f"{API}/query/01gR000000Bz7nAIAR-2000",
            [Recorded(200, "query_user_page2.json", LIMIT_INFO)],
        ),
        query_all,
        Route("POST", f"{API}/jobs/query", [Recorded(200, "bulk_job_created.json", LIMIT_INFO)]),
        Route("GET", f"{API}/jobs/query/{JOB}", [Recorded(200, "bulk_job_complete.json")]),
        Route(
            "GET",
            results,
            [
                Recorded(
                    200,
                    "bulk_results_page2.csv",
                    {"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"},
                    CSV_TYPE,
                )
            ],
            when=lambda request: request.param("locator") == "MTAwMDA",
        ),
        Route(
            "GET",
            results,
            [
                Recorded(
                    200,
                    "bulk_results_page1.csv",
                    {"Sforce-Locator": "MTAwMDA", "Sforce-NumberOfRecords": "2"},
                    CSV_TYPE,
                )
            ],
        ),
    ]


@pytest.fixture
def replay(tmp_path: Path):
    server = ReplayServer(routes(), tmp_path)
    with server.running():
        yield server


def replay_env(server: ReplayServer, password: str = "secret-password") -> dict[str, str]:
    return {
        "SF_AUTH_METHOD": "password",
        "SF_LOGIN_URL": server.base_url,
        "SF_DOMAIN": "login",
        "SF_USERNAME": "integration@acme.example",
        "SF_PASSWORD": password,
        "SF_SECURITY_TOKEN": "token",
        "SF_CA_BUNDLE": str(server.ca_bundle),
    }


def replay_client(server: ReplayServer, password: str = "secret-password"):
    values = settings_from_environment(replay_env(server, password))
    return connect(ConnectionSettings(**values, policy=POLICY))


# --- the client on the recordings -------------------------------------------------------------


def test_the_client_reads_documented_describe_query_pages_and_query_all(replay) -> None:
    client = replay_client(replay)
    fields = {f["name"]: (f["type"], f["custom"]) for f in client.describe("User")}
    assert fields["Audit_Phase__c"] == ("picklist", True)
    assert fields["SystemModstamp"] == ("datetime", False)
    assert client.stats()["rate_limited"] == 1  # REQUEST_LIMIT_EXCEEDED waited out, then read
    pages = list(client.query_pages("SELECT Id, Name FROM User", 2000))
    assert [len(page) for page in pages] == [2, 1]  # nextRecordsUrl followed, done ends it
    names = [r["Name"] for page in pages for r in page]
    assert names == ["Zoë 🦄 O'Brien", "李小龙", 'Ana "Quoted", Jr.']
    assert all("attributes" not in r for page in pages for r in page)
    accounts = list(client.query("SELECT Id, IsDeleted FROM Account", include_deleted=True))
    assert [r["IsDeleted"] for r in accounts] == [False, True]
    # Sforce-Limit-Info: api-usage=18/15000
    assert client.api_usage == {"used": 18, "limit": 15000}
    assert replay.unmatched == []


def test_the_client_reads_documented_bulk_pages_with_crlf_and_quoted_newlines(replay) -> None:
    client = replay_client(replay)
    fields = [
        FieldSpec("Id", "id", False),
        FieldSpec("Name", "string", False),
        FieldSpec("IsDeleted", "boolean", False),
        FieldSpec("SystemModstamp", "datetime", False),
    ]
    job = client.bulk_query("Account")
    pages = list(
        job.pages("SELECT Id, Name, IsDeleted FROM Account", include_deleted=True, page_size=2)
    )
    assert [p.records for p in pages] == [2, 1] and job.job_id == JOB
    rows = [r for p in pages for r in csv_to_arrow(p.data, fields).rows.to_pylist()]
    assert [r["name"] for r in rows] == ['Acme "Quoted", Inc.', "Initech\nLabs", None]
    assert [r["isdeleted"] for r in rows] == [False, True, False]
    assert rows[1]["systemmodstamp"] == dt.datetime(2026, 3, 1, 10, 30)
    assert replay.unmatched == []


def test_the_client_reports_a_documented_soap_login_fault(replay) -> None:
    with pytest.raises(SalesforceConfigError, match="INVALID_LOGIN") as failed:
        replay_client(replay, password="wrong-password")
    assert "wrong-password" not in str(failed.value)
    logins = [r for r in replay.requests if r.path.startswith("/services/Soap")]
    assert len(logins) == 1  # a refused login is never retried


# --- the emulator against the same shapes ------------------------------------------------------


def conforms(actual: Any, documented: Any, where: str = "$") -> list[str]:
    """Where `actual` lacks a documented key or has another JSON type (NULL on either side is a
    field without a value: fine; numbers are numbers)."""
    if documented is None or actual is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where}: {type(actual).__name__}, documented an object"]
        problems = []
        for key, value in documented.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += conforms(actual[key], value, f"{where}.{key}")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{where}: {type(actual).__name__}, documented an array"]
        if not documented:
            return []
        return [
            p
            for i, item in enumerate(actual)
            for p in conforms(item, documented[0], f"{where}[{i}]")
        ]
    kinds = {bool: "boolean", int: "number", float: "number", str: "string"}
    if kinds.get(type(actual)) != kinds[type(documented)]:
        return [f"{where}: {actual!r} is not a {kinds[type(documented)]}"]
    return []


def documented_subset(documented: dict, keys: list[str]) -> dict:
    return {k: documented[k] for k in keys}


@pytest.fixture
def emulated(emulator_factory):
    history = [
        user("005R0000000hxaAIAQ", 0, "EMEA", Name="Zoë 🦄 O'Brien"),
        user("005R0000000hxaBIAQ", 1, None, None, Name="李小龙", IsActive=False),
        user("005R0000000hxaCIAQ", 2, "APAC", "Review"),
        account("001R0000006ZxHaIAK", 3, "Customer", "005R0000000hxaAIAQ", Name="Acme"),
        account("001R0000006ZxHbIAK", 4, None, "005R0000000hxaAIAQ", Name="Initech\nLabs"),
        account(
            "001R0000006ZxHbIAK", 5, None, "005R0000000hxaAIAQ", Name="Initech\nLabs", deleted=True
        ),
    ]
    emulator = emulator_factory(history, now=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    creds = emulator.credentials
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=redirecting_session(emulator.base_url, emulator.ca_bundle),
        version="59.0",
    )
    http = requests.Session()
    http.trust_env = False
    http.verify = str(emulator.ca_bundle)
    http.headers["Authorization"] = f"Bearer {sf.session_id}"
    return emulator, http


def test_the_emulator_answers_describe_and_queries_in_the_documented_shapes(emulated) -> None:
    emulator, http = emulated
    base = emulator.base_url + API
    described = http.get(f"{base}/sobjects/User/describe")
    assert re.fullmatch(r"api-usage=\d+/\d+", described.headers["Sforce-Limit-Info"])
    documented = recording("describe_user.json")
    checked = ["name", "label", "labelPlural", "keyPrefix", "custom", "queryable", "fields"]
    assert conforms(described.json(), documented_subset(documented, checked)) == []
    names = {f["name"] for f in described.json()["fields"]}
    assert {f["name"] for f in documented["fields"]} <= names

    fields = "Id, Username, Name, IsActive, Division, Audit_Phase__c, SystemModstamp"
    first = http.get(
        f"{base}/query",
        params={"q": f"SELECT {fields} FROM User ORDER BY Id"},
        headers={"Sforce-Query-Options": "batchSize=200"},
    ).json()
    page1 = recording("query_user_page1.json")
    assert conforms(first, {k: v for k, v in page1.items() if k != "nextRecordsUrl"}) == []
    everything = http.get(
        f"{base}/queryAll", params={"q": "SELECT Id, Name, IsDeleted, SystemModstamp FROM Account"}
    ).json()
    assert conforms(everything, recording("queryall_account.json")) == []
    assert [r["IsDeleted"] for r in everything["records"]] == [False, True]


def test_the_emulator_pages_like_the_documented_next_records_url(emulator_factory) -> None:
    history = [user(f"005R{n:011d}AAA", n / 10, "EMEA") for n in range(250)]
    emulator = emulator_factory(history, now=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    sf = Salesforce(
        username=emulator.credentials.username,
        password=emulator.credentials.password,
        security_token=emulator.credentials.security_token,
        session=redirecting_session(emulator.base_url, emulator.ca_bundle),
        version="59.0",
    )
    fields = "Id, Username, Name, IsActive, Division, Audit_Phase__c, SystemModstamp"
    first = sf.query(
        f"SELECT {fields} FROM User", headers={"Sforce-Query-Options": "batchSize=200"}
    )
    assert conforms(first, recording("query_user_page1.json")) == []
    assert re.fullmatch(r"/services/data/v59\.0/query/[0-9A-Za-z]+-\d+", first["nextRecordsUrl"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert conforms(second, recording("query_user_page2.json")) == []
    assert second["done"] is True and "nextRecordsUrl" not in second
    assert len(first["records"]) + len(second["records"]) == first["totalSize"] == 250


def test_the_emulator_answers_bulk_jobs_and_crlf_csv_in_the_documented_shapes(emulated) -> None:
    emulator, http = emulated
    jobs = f"{emulator.base_url}{API}/jobs/query"
    created = http.post(
        jobs,
        json={
            "operation": "queryAll",
            "query": "SELECT Id, Name, IsDeleted, SystemModstamp FROM Account ORDER BY Id",
            "lineEnding": "CRLF",
        },
    ).json()
    assert conforms(created, recording("bulk_job_created.json")) == []
    assert created["state"] == "UploadComplete" and created["lineEnding"] == "CRLF"
    requests.post(
        f"{emulator.base_url}/_emulator/bulk/complete", verify=str(emulator.ca_bundle), timeout=10
    )
    done = http.get(f"{jobs}/{created['id']}").json()
    assert conforms(done, recording("bulk_job_complete.json")) == []
    page = http.get(f"{jobs}/{created['id']}/results", params={"maxRecords": 1})
    assert page.headers["Content-Type"].startswith(CSV_TYPE)
    assert page.headers["Sforce-NumberOfRecords"] == "1" and page.headers["Sforce-Locator"]
    documented = (CONTRACTS / "bulk_results_page1.csv").read_bytes()
    header = documented.split(b"\r\n")[0]
    assert page.content.startswith(header + b"\r\n") and page.content.endswith(b"\r\n")
    last = http.get(
        f"{jobs}/{created['id']}/results",
        params={"maxRecords": 5, "locator": page.headers["Sforce-Locator"]},
    )
    assert last.headers["Sforce-Locator"] == "null"
    rows = list(csv.DictReader(io.StringIO(last.content.decode(), newline="")))
    assert rows[0]["Name"] == "Initech\nLabs" and rows[0]["IsDeleted"] == "true"
    # Every value quoted, as documented (the quoted newline stays inside its field).
    assert b'"Initech\nLabs","true"' in last.content


def test_the_emulator_refuses_like_the_documented_errors(emulated) -> None:
    emulator, http = emulated
    login = requests.post(
        f"{emulator.base_url}/services/Soap/u/59.0",
        data=(
            b'<?xml version="1.0" encoding="utf-8"?><env:Envelope '
            b'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
            b'xmlns:urn="urn:partner.soap.sforce.com"><env:Body><urn:login>'
            b"<urn:username>nobody@acme.example</urn:username><urn:password>wrong</urn:password>"
            b"</urn:login></env:Body></env:Envelope>"
        ),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"},
        verify=str(emulator.ca_bundle),
        timeout=10,
    )
    assert login.status_code == 500
    fault = ET.fromstring(login.content).find(f".//{SOAP_FAULT}")
    documented = ET.fromstring((CONTRACTS / "soap_login_fault.xml").read_bytes()).find(
        f".//{SOAP_FAULT}"
    )
    assert fault is not None and documented is not None
    assert [c.tag for c in fault] == [c.tag for c in documented]
    assert fault.findtext("faultcode") == documented.findtext("faultcode")
    detail = [e.tag for e in fault.iter()]
    assert all(tag in detail for tag in (e.tag for e in documented.iter()))
    requests.put(
        f"{emulator.base_url}/_emulator/faults",
        data=json.dumps({"faults": [{"kind": "rate_limited", "every": 1}]}),
        verify=str(emulator.ca_bundle),
        timeout=10,
    )
    limited = http.get(f"{emulator.base_url}{API}/sobjects/User/describe")
    assert limited.status_code == 403
    assert conforms(limited.json(), recording("request_limit_exceeded.json")) == []
    assert limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
