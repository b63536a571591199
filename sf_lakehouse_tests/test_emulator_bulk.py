"""Bulk API 2.0 query jobs as simple-salesforce uses them: states across polls, result pages with
Sforce-Locator and maxRecords, CSV as Salesforce writes it, and the SOQL Bulk 2.0 refuses."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from sf_lakehouse.emulator import SalesforceEmulator
from sf_lakehouse.emulator.render import java_double
from sf_lakehouse.emulator.testing import redirecting_session

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
U1 = "005000000000001AAA"
A1, A2, A3 = "001000000000001AAA", "001000000000002AAA", "001000000000003AAA"


def stamp(minutes: float) -> str:
    moment = T0 + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def account(record_id: str, minutes: float, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Account"},
        "Id": record_id,
        "CreatedDate": stamp(0),
        "LastModifiedDate": stamp(minutes),
        "SystemModstamp": stamp(minutes),
        "OwnerId": U1,
        **fields,
    }


HISTORY = [
    {"Id": U1, "Username": "u@x.example", "Name": "Zoë", "SystemModstamp": stamp(0)},
    account(A1, 10, Name='Acme "Quoted", Inc.', AnnualRevenue=71_300_000.0, NumberOfEmployees=7),
    account(A2, 20, Name="Globex", AnnualRevenue=1500.0, Type=None, IsDeleted=False),
    account(A3, 30, Name="Initech\nLabs", AnnualRevenue=0.0005),
    account(A3, 40, Name="Initech\nLabs", AnnualRevenue=0.0005, IsDeleted=True),
]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(
        HISTORY, workdir=tmp_path, now=T0 + timedelta(hours=1), bulk_processing_seconds=0.3
    ) as running:
        yield running


@pytest.fixture
def held(tmp_path: Path) -> Iterator[SalesforceEmulator]:
    """Bulk jobs stay InProgress until `POST /_emulator/bulk/complete`: no test waits on time."""
    with SalesforceEmulator(
        HISTORY, workdir=tmp_path, now=T0 + timedelta(hours=1), bulk_processing_seconds=None
    ) as running:
        yield running


def complete_bulk_jobs(emulator: SalesforceEmulator) -> int:
    answer = requests.post(
        f"{emulator.base_url}/_emulator/bulk/complete", verify=str(emulator.ca_bundle), timeout=10
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["completed"])


def client(emulator: SalesforceEmulator) -> Salesforce:
    creds = emulator.credentials
    return Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=redirecting_session(emulator.base_url, emulator.ca_bundle),
        version="59.0",
    )


def jobs_api(emulator: SalesforceEmulator) -> tuple[requests.Session, dict[str, str], str]:
    sf = client(emulator)
    http = requests.Session()
    http.trust_env = False
    http.verify = str(emulator.ca_bundle)
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    return http, headers, f"{emulator.base_url}/services/data/v59.0/jobs/query"


def test_java_double_formatting() -> None:
    assert [java_double(v) for v in (1500.0, 0.001, 9_999_999.0, 1e7, 71_300_000.0)] == [
        "1500.0",
        "0.001",
        "9999999.0",
        "1.0E7",
        "7.13E7",
    ]
    assert [java_double(v) for v in (0.0005, -2.5e-5, 0.0, 123456789.125, 1e21)] == [
        "5.0E-4",
        "-2.5E-5",
        "0.0",
        "1.23456789125E8",
        "1.0E21",
    ]


def test_csv_as_salesforce_writes_it(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    soql = (
        "SELECT Id, Name, Type, AnnualRevenue, NumberOfEmployees, IsDeleted, SystemModstamp "
        "FROM Account ORDER BY Id"
    )
    (page,) = list(sf.bulk2.Account.query_all(soql, wait=0))
    lines = page.split("\n")
    assert lines[0] == (
        '"Id","Name","Type","AnnualRevenue","NumberOfEmployees","IsDeleted","SystemModstamp"'
    )
    assert lines[1] == (
        f'"{A1}","Acme ""Quoted"", Inc.",,"7.13E7","7","false","2026-03-01T08:10:00.000Z"'
    )
    rows = list(csv.DictReader(io.StringIO(page)))
    assert [r["Id"] for r in rows] == [A1, A2, A3]
    assert rows[1]["AnnualRevenue"] == "1500.0" and rows[1]["Type"] == ""
    assert rows[2]["Name"] == "Initech\nLabs" and rows[2]["IsDeleted"] == "true"
    assert rows[2]["AnnualRevenue"] == "5.0E-4"
    live = list(csv.DictReader(io.StringIO(next(sf.bulk2.Account.query(soql, wait=0)))))
    assert [r["Id"] for r in live] == [A1, A2]


def test_job_states_across_polls(held: SalesforceEmulator) -> None:
    http, headers, jobs = jobs_api(held)
    body = {"operation": "query", "query": "SELECT Id FROM Account"}
    created = http.post(jobs, headers=headers, json=body).json()
    assert created["state"] == "UploadComplete" and created["operation"] == "query"
    url = f"{jobs}/{created['id']}"
    polls = [http.get(url, headers=headers).json() for _ in range(3)]
    assert [p["state"] for p in polls] == ["InProgress"] * 3
    assert "numberRecordsProcessed" not in polls[-1] or not polls[-1]["numberRecordsProcessed"]
    results = http.get(f"{url}/results", headers=headers)
    assert results.status_code == 400 and results.json()[0]["errorCode"] == "INVALIDJOB"
    assert complete_bulk_jobs(held) == 1
    assert http.get(url, headers=headers).json()["state"] == "JobComplete"
    assert complete_bulk_jobs(held) == 0  # nothing left processing
    done = http.get(url, headers=headers).json()
    assert done["numberRecordsProcessed"] == 2 and done["jobType"] == "V2Query"
    listing = http.get(jobs, headers=headers).json()
    assert [j["id"] for j in listing["records"]] == [created["id"]]
    assert http.delete(url, headers=headers).status_code == 204
    assert http.get(url, headers=headers).status_code == 404


def test_results_pages_locator_and_max_records(held: SalesforceEmulator) -> None:
    http, headers, jobs = jobs_api(held)
    body = {"operation": "queryAll", "query": "SELECT Id FROM Account ORDER BY Id"}
    job_id = http.post(jobs, headers=headers, json=body).json()["id"]
    complete_bulk_jobs(held)
    assert http.get(f"{jobs}/{job_id}", headers=headers).json()["state"] == "JobComplete"
    ids, locator, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"maxRecords": 2}
        if locator:
            params["locator"] = locator
        page = http.get(f"{jobs}/{job_id}/results", headers=headers, params=params)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(page.text)))
        assert page.headers["Sforce-NumberOfRecords"] == str(len(rows))
        ids += [r["Id"] for r in rows]
        pages += 1
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert (ids, pages) == ([A1, A2, A3], 2)
    bad = http.get(f"{jobs}/{job_id}/results", headers=headers, params={"locator": "zzzz"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


@pytest.mark.parametrize(
    ("soql", "fragment"),
    [
        ("SELECT COUNT() FROM Account", "COUNT()"),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 1", "OFFSET"),
        ("SELECT Type, COUNT(Id) FROM Account GROUP BY Type", "COUNT()"),
        ("SELECT Type FROM Account GROUP BY Type", "GROUP BY"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "nested SELECT"),
        ("SELECT TYPEOF Owner WHEN User THEN Name END FROM Account", "TYPEOF"),
    ],
)
def test_soql_bulk_does_not_run_is_refused(
    emulator: SalesforceEmulator, soql: str, fragment: str
) -> None:
    http, headers, jobs = jobs_api(emulator)
    refused = http.post(jobs, headers=headers, json={"operation": "query", "query": soql})
    assert refused.status_code == 400
    (error,) = refused.json()
    assert error["errorCode"] == "API_ERROR" and fragment in error["message"]
    assert "Bulk API 2.0" in error["message"]


def test_bad_job_definitions_are_invalidjob(emulator: SalesforceEmulator) -> None:
    http, headers, jobs = jobs_api(emulator)
    for body in (
        {"operation": "insert", "query": "SELECT Id FROM Account"},
        {"operation": "query"},
        {"operation": "query", "query": "SELECT Id FROM Account", "columnDelimiter": "DASH"},
    ):
        answer = http.post(jobs, headers=headers, json=body)
        assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "INVALIDJOB", body
