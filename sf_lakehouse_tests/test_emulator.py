"""The Salesforce emulator, driven over real HTTPS by the unmodified simple-salesforce library."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from sf_lakehouse.cli import main as emulator_cli_main
from sf_lakehouse.emulator import (
    EmulatorCredentials,
    SalesforceEmulator,
    generate_org,
    load_history,
    write_history,
)
from sf_lakehouse.emulator.history import format_sf_datetime, object_of, parse_sf_datetime
from sf_lakehouse.emulator.testing import redirecting_session

REPO_ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 1, 8, tzinfo=UTC)
AFTER_ALL = START + timedelta(days=7)
HISTORY = generate_org(users=500, seed=7)
USER_HISTORY = [r for r in HISTORY if object_of(r) == "User"]
USERS = len({r["Id"] for r in USER_HISTORY})
CUSTOM_DOMAIN = "sf-lakehouse-emulator.my"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(HISTORY, workdir=tmp_path / "emulator", now=AFTER_ALL) as running:
        yield running


def password_client(emulator: SalesforceEmulator, **overrides: Any) -> Salesforce:
    creds = emulator.credentials
    kwargs: dict[str, Any] = {
        "username": creds.username,
        "password": creds.password,
        "security_token": creds.security_token,
        "session": redirecting_session(emulator.base_url, emulator.ca_bundle),
        "version": "59.0",
    }
    kwargs.update(overrides)
    return Salesforce(**kwargs)


def plain_session(emulator: SalesforceEmulator) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify otherwise
    session.verify = str(emulator.ca_bundle)
    return session


def oauth_token(emulator: SalesforceEmulator) -> str:
    creds = emulator.credentials
    response = plain_session(emulator).post(
        f"{emulator.base_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def latest_versions(at: datetime) -> dict[str, dict[str, Any]]:
    """The oracle: per User Id, the latest version with SystemModstamp <= at."""
    latest: dict[str, dict[str, Any]] = {}
    for record in USER_HISTORY:
        if parse_sf_datetime(record["SystemModstamp"]) <= at:
            latest[record["Id"]] = record
    return latest


# --- TLS and login ---------------------------------------------------------------------------


def test_tls_verifies_against_the_generated_ca(emulator: SalesforceEmulator) -> None:
    assert emulator.base_url == f"https://127.0.0.1:{emulator.port}"
    assert {p.name for p in emulator.ca_bundle.parent.iterdir()} >= {
        "ca.pem",
        "server.pem",
        "server-key.pem",
    }
    response = plain_session(emulator).get(f"{emulator.base_url}/_emulator/clock")
    assert response.status_code == 200
    untrusting = requests.Session()
    untrusting.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        untrusting.get(f"{emulator.base_url}/_emulator/clock")
    localhost = plain_session(emulator).get(f"https://localhost:{emulator.port}/_emulator/clock")
    assert localhost.status_code == 200


def test_soap_login_with_security_token(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    assert sf.sf_instance == f"127.0.0.1:{emulator.port}"
    assert sf.session_id.startswith("00D")
    assert emulator.soap_logins == 1
    result = sf.query("SELECT COUNT() FROM User")
    assert result["totalSize"] == USERS and result["records"] == []


def test_bad_password_is_invalid_login(emulator: SalesforceEmulator) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        password_client(emulator, password="wrong")
    assert info.value.code == "INVALID_LOGIN"
    assert info.value.auth_message == (
        "Invalid username, password, security token; or user locked out."
    )
    assert emulator.soap_logins == 0


def test_oauth_client_credentials(emulator: SalesforceEmulator) -> None:
    # simple-salesforce only uses the client-credentials flow for a My Domain (not "login").
    session = redirecting_session(
        emulator.base_url, emulator.ca_bundle, login_host=f"{CUSTOM_DOMAIN}.salesforce.com"
    )
    creds = emulator.credentials
    sf = Salesforce(
        consumer_key=creds.client_id,
        consumer_secret=creds.client_secret,
        domain=CUSTOM_DOMAIN,
        session=session,
        version="59.0",
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS
    assert emulator.oauth_logins == 1
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(
            consumer_key=creds.client_id,
            consumer_secret="nope",
            domain=CUSTOM_DOMAIN,
            session=session,
        )
    assert info.value.code == "invalid_client"


def test_oauth_password_grant(emulator: SalesforceEmulator) -> None:
    creds = emulator.credentials
    session = redirecting_session(emulator.base_url, emulator.ca_bundle)
    sf = Salesforce(
        username=creds.username,
        password=creds.password + creds.security_token,
        consumer_key=creds.client_id,
        consumer_secret=creds.client_secret,
        session=session,
        version="59.0",
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(
            username=creds.username,
            password="wrong",
            consumer_key=creds.client_id,
            consumer_secret=creds.client_secret,
            session=session,
        )
    assert info.value.code == "invalid_grant"


def test_token_response_shape(emulator: SalesforceEmulator) -> None:
    creds = emulator.credentials
    body = (
        plain_session(emulator)
        .post(
            f"{emulator.base_url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            },
        )
        .json()
    )
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["instance_url"] == emulator.base_url and body["token_type"] == "Bearer"
    bad = plain_session(emulator).post(
        f"{emulator.base_url}/services/oauth2/token", data={"grant_type": "authorization_code"}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"


def test_session_id_and_instance_url_directly(emulator: SalesforceEmulator) -> None:
    sf = Salesforce(
        session_id=oauth_token(emulator),
        instance_url=emulator.base_url,
        session=plain_session(emulator),
        version="59.0",
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS


# --- queries ---------------------------------------------------------------------------------


def test_query_records_shape(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    user_id = USER_HISTORY[0]["Id"]
    result = sf.query(
        f"SELECT Name, Id, IsActive, SystemModstamp, Division FROM User WHERE Id = '{user_id}'"
    )
    (record,) = result["records"]
    expected = latest_versions(AFTER_ALL)[user_id]
    assert list(record) == ["attributes", "Name", "Id", "IsActive", "SystemModstamp", "Division"]
    assert record["attributes"] == {
        "type": "User",
        "url": f"/services/data/v59.0/sobjects/User/{user_id}",
    }
    assert record["Name"] == expected["Name"]
    assert record["IsActive"] is expected["IsActive"]
    assert record["SystemModstamp"] == expected["SystemModstamp"]
    assert result["done"] is True and "nextRecordsUrl" not in result


def test_query_pages_with_batch_size(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    soql = "SELECT Id, Username FROM User ORDER BY Username"
    headers = {"Sforce-Query-Options": "batchSize=200"}
    page = sf.query(soql, headers=headers)
    sizes = [len(page["records"])]
    seen = [r["Id"] for r in page["records"]]
    while not page["done"]:
        assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=headers)
        sizes.append(len(page["records"]))
        seen.extend(r["Id"] for r in page["records"])
        assert page["totalSize"] == USERS
    assert sizes == [200, 200, 100]
    assert len(set(seen)) == USERS
    everything = sf.query_all(soql, headers=headers)
    assert [r["Id"] for r in everything["records"]] == seen
    # Default batch 2000: one page. Too small a batch size is raised to 200.
    assert sf.query(soql)["done"] is True
    assert len(sf.query(soql, headers={"Sforce-Query-Options": "batchSize=5"})["records"]) == 200


def test_paging_is_a_snapshot(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id FROM User", headers=headers)
    emulator.set_clock(START)  # far fewer records visible now
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=headers)
    assert rest["totalSize"] == USERS
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] < USERS


def test_invalid_query_locator(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more("/services/data/v59.0/query/01gAAAAAAAAAAAAAAA-200", identifier_is_url=True)
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_endpoint(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    result = sf.query("SELECT COUNT() FROM User", include_deleted=True)
    assert result["totalSize"] == USERS


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FORM User", "MALFORMED_QUERY"),
        ("SELECT Id, Foo FROM User", "INVALID_FIELD"),
        ("SELECT Id FROM User WHERE SystemModstamp > '2026-03-01T08:00:00Z'", "INVALID_FIELD"),
        ("SELECT Id FROM Foo", "INVALID_TYPE"),
        ("SELECT Id FROM Invoice__c", "INVALID_TYPE"),
        ("SELECT Id, Foo FROM Account", "INVALID_FIELD"),
    ],
)
def test_query_errors_surface_as_malformed_request(
    emulator: SalesforceEmulator, soql: str, code: str
) -> None:
    sf = password_client(emulator)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.status == 400
    (error,) = info.value.content
    assert error["errorCode"] == code and error["message"]


def test_malformed_message_names_the_token(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FORM User")
    assert "unexpected token: 'FORM'" in info.value.content[0]["message"]


# --- clock semantics -------------------------------------------------------------------------


def _whole_hour_update() -> tuple[dict[str, Any], dict[str, Any]]:
    """A version exactly on a whole hour that is not its user's first, and the one before."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in USER_HISTORY:
        by_id.setdefault(record["Id"], []).append(record)
    for versions in by_id.values():
        for before, version in itertools.pairwise(versions):
            stamp = parse_sf_datetime(version["SystemModstamp"])
            if stamp.minute == stamp.second == stamp.microsecond == 0:
                return before, version
    raise AssertionError("the synthetic org has no whole-hour update")


def test_version_exactly_at_the_clock_is_visible(emulator: SalesforceEmulator) -> None:
    before, version = _whole_hour_update()
    stamp = parse_sf_datetime(version["SystemModstamp"])
    sf = password_client(emulator)
    soql = f"SELECT Id, SystemModstamp FROM User WHERE Id = '{version['Id']}'"

    emulator.set_clock(stamp)
    assert sf.query(soql)["records"][0]["SystemModstamp"] == version["SystemModstamp"]
    emulator.set_clock(stamp - timedelta(milliseconds=1))
    assert sf.query(soql)["records"][0]["SystemModstamp"] == before["SystemModstamp"]
    # A naive clock is UTC.
    emulator.set_clock(stamp.replace(tzinfo=None))
    assert emulator.now() == stamp
    assert sf.query(soql)["records"][0]["SystemModstamp"] == version["SystemModstamp"]


def test_queries_see_latest_visible_version_per_id(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    for moment in (START, START + timedelta(days=2, hours=5, milliseconds=3), AFTER_ALL):
        emulator.set_clock(moment)
        expected = latest_versions(moment)
        records = sf.query_all("SELECT Id, Division, Audit_Phase__c, SystemModstamp FROM User")
        got = {r["Id"]: r for r in records["records"]}
        assert set(got) == set(expected)
        for user_id, record in got.items():
            want = expected[user_id]
            assert (record["Division"], record["Audit_Phase__c"], record["SystemModstamp"]) == (
                want["Division"],
                want["Audit_Phase__c"],
                want["SystemModstamp"],
            )


def test_incremental_filter_on_systemmodstamp(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    watermark = START + timedelta(days=2)
    emulator.set_clock(START + timedelta(days=3))
    soql = (
        "SELECT Id FROM User WHERE SystemModstamp >= "
        f"{format_sf_datetime(watermark)} ORDER BY SystemModstamp, Id"
    )
    got = {r["Id"] for r in sf.query_all(soql)["records"]}
    expected = {
        user_id
        for user_id, record in latest_versions(START + timedelta(days=3)).items()
        if parse_sf_datetime(record["SystemModstamp"]) >= watermark
    }
    assert got == expected and got


# --- describe --------------------------------------------------------------------------------


def test_describe_fields_and_types(emulator: SalesforceEmulator) -> None:
    describe = password_client(emulator).User.describe()
    assert (describe["name"], describe["custom"], describe["queryable"]) == ("User", False, True)
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["fields"][0]["name"] == "Id"
    expected = {
        "Id": ("id", "tns:ID", False),
        "Username": ("string", "xsd:string", False),
        "Email": ("email", "xsd:string", False),
        "IsActive": ("boolean", "xsd:boolean", False),
        "Division": ("string", "xsd:string", False),
        "Audit_Phase__c": ("string", "xsd:string", True),
        "ManagerId": ("reference", "tns:ID", False),
        "CreatedDate": ("datetime", "xsd:dateTime", False),
        "SystemModstamp": ("datetime", "xsd:dateTime", False),
    }
    for name, (ftype, soap_type, custom) in expected.items():
        assert (fields[name]["type"], fields[name]["soapType"], fields[name]["custom"]) == (
            ftype,
            soap_type,
            custom,
        ), name
        assert {"label", "nillable", "length"} <= set(fields[name])
    assert fields["Audit_Phase__c"]["label"] == "Audit Phase"
    assert fields["Division"]["nillable"] is True and fields["Id"]["nillable"] is False


def test_custom_field_appears_when_its_first_version_is_visible(
    emulator: SalesforceEmulator,
) -> None:
    first_region = min(
        parse_sf_datetime(r["SystemModstamp"]) for r in USER_HISTORY if "Region__c" in r
    )
    sf = password_client(emulator)
    emulator.set_clock(first_region - timedelta(milliseconds=1))
    names = {f["name"] for f in sf.User.describe()["fields"]}
    assert "Region__c" not in names and "Audit_Phase__c" in names
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id, Region__c FROM User")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"

    emulator.set_clock(first_region)
    fields = {f["name"]: f for f in sf.User.describe()["fields"]}
    assert fields["Region__c"]["custom"] is True
    rows = sf.query_all("SELECT Id, Region__c FROM User WHERE Region__c != null")["records"]
    assert len(rows) >= 1


def test_describe_unknown_object_is_not_found(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Foo.describe()
    assert info.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


def test_get_one_record(emulator: SalesforceEmulator) -> None:
    user_id = USER_HISTORY[-1]["Id"]
    record = password_client(emulator).User.get(user_id)
    assert record["Id"] == user_id
    assert record["SystemModstamp"] == latest_versions(AFTER_ALL)[user_id]["SystemModstamp"]


# --- sessions and limits ---------------------------------------------------------------------


def test_expired_session_relogs_in_transparently(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    old_session = sf.session_id
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS
    emulator.expire_sessions()
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS
    assert emulator.soap_logins == 2
    assert sf.session_id != old_session


def test_session_only_client_gets_expired_session(emulator: SalesforceEmulator) -> None:
    sf = Salesforce(
        session_id=oauth_token(emulator),
        instance_url=emulator.base_url,
        session=plain_session(emulator),
        version="59.0",
    )
    emulator.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT COUNT() FROM User")
    assert info.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_missing_or_unknown_session_is_401(emulator: SalesforceEmulator) -> None:
    session = plain_session(emulator)
    url = f"{emulator.base_url}/services/data/v59.0/query"
    for headers in ({}, {"Authorization": "Bearer 00Dnope!nope"}):
        response = session.get(url, params={"q": "SELECT Id FROM User"}, headers=headers)
        assert response.status_code == 401
        assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert emulator.api_calls == 0


def test_limit_info_updates_api_usage(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    sf.query("SELECT COUNT() FROM User")
    assert sf.api_usage["api-usage"].used == 1
    assert sf.api_usage["api-usage"].total == 15000
    sf.query("SELECT COUNT() FROM User")
    sf.User.describe()
    assert emulator.api_calls == 3
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 4}
    assert sf.api_usage["api-usage"].used == 4


# --- Bulk API 2.0 ----------------------------------------------------------------------------


def _rest_as_csv_rows(records: list[dict[str, Any]], fields: list[str]) -> list[dict[str, str]]:
    """REST values as Bulk 2.0 CSV writes them: datetimes in UTC with a Z, nulls empty."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.endswith("+0000"):
            return value.removesuffix("+0000") + "Z"  # 2026-03-01T08:00:00.000Z
        return str(value)

    return [{f: cell(r[f]) for f in fields} for r in records]


def test_bulk2_query_matches_rest(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    fields = ["Id", "Name", "IsActive", "Division", "Audit_Phase__c", "Region__c", "SystemModstamp"]
    soql = f"SELECT {', '.join(fields)} FROM User ORDER BY Id"
    pages = list(sf.bulk2.User.query(soql, max_records=200, wait=0))
    assert len(pages) == 3
    bulk_rows: list[dict[str, str]] = []
    for page in pages:
        reader = csv.DictReader(io.StringIO(page))
        assert reader.fieldnames == fields
        bulk_rows.extend(reader)
    rest = sf.query_all(soql)["records"]
    assert bulk_rows == _rest_as_csv_rows(rest, fields)
    assert any("'" in row["Name"] for row in bulk_rows)
    assert all(row["SystemModstamp"].endswith("Z") for row in bulk_rows)


def test_bulk2_job_lifecycle_and_csv(emulator: SalesforceEmulator) -> None:
    sf = password_client(emulator)
    session = plain_session(emulator)
    headers = {"Authorization": f"Bearer {sf.session_id}", "Content-Type": "application/json"}
    jobs = f"{emulator.base_url}/services/data/v59.0/jobs/query"
    created = session.post(
        jobs,
        headers=headers,
        data=json.dumps({"operation": "query", "query": "SELECT Id, Name FROM User LIMIT 3"}),
    )
    assert created.status_code == 200 and created.json()["state"] == "UploadComplete"
    job_id = created.json()["id"]
    # In progress for a moment (0.5 s by default), complete on a later poll.
    info = session.get(f"{jobs}/{job_id}", headers=headers).json()
    assert info["state"] == "InProgress"
    early = session.get(f"{jobs}/{job_id}/results", headers=headers)
    assert early.status_code == 400 and early.json()[0]["errorCode"] == "INVALIDJOB"
    time.sleep(0.6)
    info = session.get(f"{jobs}/{job_id}", headers=headers).json()
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 3
    results = session.get(f"{jobs}/{job_id}/results", headers=headers, params={"maxRecords": 2})
    assert results.headers["Sforce-NumberOfRecords"] == "2"
    locator = results.headers["Sforce-Locator"]
    assert locator != "null"
    assert results.text.splitlines()[0] == '"Id","Name"'
    last = session.get(
        f"{jobs}/{job_id}/results", headers=headers, params={"maxRecords": 2, "locator": locator}
    )
    assert last.headers["Sforce-Locator"] == "null"
    assert last.headers["Sforce-NumberOfRecords"] == "1"
    bad = session.post(
        jobs,
        headers=headers,
        data=json.dumps({"operation": "query", "query": "SELECT Id FORM User"}),
    )
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert session.get(f"{jobs}/750nope", headers=headers).status_code == 404


# --- control plane, env file, logging ------------------------------------------------------


def test_clock_control_plane_over_https(emulator: SalesforceEmulator) -> None:
    session = plain_session(emulator)
    url = f"{emulator.base_url}/_emulator/clock"
    response = session.put(url, json={"now": "2026-03-02T09:00:00+01:00"})
    assert response.status_code == 200
    assert response.json() == {"now": "2026-03-02T08:00:00.000+0000"}
    assert emulator.now() == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert session.get(url).json() == {"now": "2026-03-02T08:00:00.000+0000"}
    assert session.put(url, json={"when": "x"}).status_code == 400
    assert session.put(url, json={"now": "soon"}).status_code == 400

    sf = password_client(emulator)
    expired = session.post(f"{emulator.base_url}/_emulator/expire-sessions")
    assert expired.status_code == 200 and expired.json()["expired"] == 1
    sf.query("SELECT COUNT() FROM User")
    assert emulator.soap_logins == 2


def test_wall_clock_by_default(tmp_path: Path) -> None:
    emulator = SalesforceEmulator(HISTORY, workdir=tmp_path)
    assert abs(emulator.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_unknown_paths_are_404_json(emulator: SalesforceEmulator) -> None:
    session = plain_session(emulator)
    for path in ("/nope", "/services/data/v59.0/nope", "/_emulator/nope"):
        response = session.get(f"{emulator.base_url}{path}")
        assert response.status_code in (401, 404)
        assert isinstance(response.json(), list)
    response = session.get(f"{emulator.base_url}/nope")
    assert response.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


def test_env_vars_and_env_file(emulator: SalesforceEmulator, tmp_path: Path) -> None:
    env = emulator.env_vars()
    assert set(env) == {
        "SF_AUTH_METHOD",
        "SF_LOGIN_URL",
        "SF_DOMAIN",
        "SF_USERNAME",
        "SF_PASSWORD",
        "SF_SECURITY_TOKEN",
        "SF_CLIENT_ID",
        "SF_CLIENT_SECRET",
        "SF_CA_BUNDLE",
        "SF_API_VERSION",
    }
    assert env["SF_LOGIN_URL"] == emulator.base_url and env["SF_DOMAIN"] == "login"
    assert Path(env["SF_CA_BUNDLE"]).is_absolute() and Path(env["SF_CA_BUNDLE"]).exists()
    path = tmp_path / "emulator.env"
    path.write_text("old")
    path.chmod(0o644)
    emulator.write_env_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert dict(line.split("=", 1) for line in lines) == env


def test_credentials_repr_hides_secrets() -> None:
    creds = EmulatorCredentials()
    text = repr(creds)
    assert creds.username in text
    for secret in (creds.password, creds.security_token, creds.client_secret):
        assert secret not in text


def test_server_prints_no_request_logs(
    emulator: SalesforceEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    sf = password_client(emulator)
    sf.query("SELECT Id FROM User LIMIT 1")
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id FORM User")
    plain_session(emulator).get(f"{emulator.base_url}/nope")
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


# --- command line ----------------------------------------------------------------------------


def test_cli_emulator_subprocess(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    write_history(generate_org(users=30, seed=4), history)
    env_file = tmp_path / "emulator.env"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sf_lakehouse.cli",
            "emulator",
            "--history",
            str(history),
            "--env-file",
            str(env_file),
            "--workdir",
            str(tmp_path / "work"),
            "--now",
            "2026-03-10T00:00:00Z",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SF_")},
    )
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert env_file.exists(), process.stderr.read() if process.poll() is not None else ""
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

        session = redirecting_session(env["SF_LOGIN_URL"], Path(env["SF_CA_BUNDLE"]))
        sf = Salesforce(
            username=env["SF_USERNAME"],
            password=env["SF_PASSWORD"],
            security_token=env["SF_SECURITY_TOKEN"],
            domain=env["SF_DOMAIN"],
            session=session,
            version=env["SF_API_VERSION"],
        )
        assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 30
        clock = session.get(f"{env['SF_LOGIN_URL']}/_emulator/clock").json()
        assert clock == {"now": "2026-03-10T00:00:00.000+0000"}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert env["SF_LOGIN_URL"] in out and str(env_file) in out
    for secret in (env["SF_PASSWORD"], env["SF_SECURITY_TOKEN"], env["SF_CLIENT_SECRET"]):
        assert secret not in out and secret not in err


def test_cli_emulator_rejects_bad_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "bad.jsonl"
    history.write_text('{"Id": "005000000000001AAA"}\n')
    assert emulator_cli_main(["emulator", "--history", str(history)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_cli_generate_org(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "org.jsonl"
    args = ["generate-org", "--users", "25", "--seed", "3", "--days", "5", "--output", str(output)]
    assert emulator_cli_main([*args, "--accounts", "6", "--opportunities", "9"]) == 0
    out = capsys.readouterr().out
    records = load_history(output)
    # The file holds exactly what generate_org gives for these options, in history order.
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    expected = generate_org(users=25, seed=3, start=start, days=5, accounts=6, opportunities=9)
    assert records == expected
    ids_per_object: dict[str, set[str]] = {}
    for record in records:
        ids_per_object.setdefault(object_of(record), set()).add(record["Id"])
    assert {name: len(ids) for name, ids in ids_per_object.items()} == {
        "User": 25,
        "Account": 6,
        "Opportunity": 9,
    }
    assert "25 users, 6 accounts and 9 opportunities" in out and str(output) in out

    # Without --accounts/--opportunities: the defaults of generate_org.
    assert emulator_cli_main(args) == 0
    assert load_history(output) == generate_org(users=25, seed=3, start=start, days=5)
    assert emulator_cli_main([*args, "--accounts", "-1"]) == 2


def test_stop_closes_kept_alive_connections(tmp_path: Path) -> None:
    emulator = SalesforceEmulator(HISTORY, workdir=tmp_path, now=AFTER_ALL).start()
    session = plain_session(emulator)
    url = f"{emulator.base_url}/_emulator/clock"
    assert session.get(url).status_code == 200  # leaves a pooled keep-alive connection
    emulator.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(url, timeout=5)
    emulator.stop()  # idempotent
