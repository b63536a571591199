"""Fault injection in the emulator, observed over real HTTPS with simple-salesforce and requests:
each kind as the contract says (status, body, what the client sees), the plan's seed, counts,
switching off, the control plane and login left alone, plans validated, ``--faults FILE``."""

from __future__ import annotations

import csv
import email.utils
import io
import json
import os
import signal
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
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from sf_lakehouse.emulator import SalesforceEmulator, generate_org, write_history
from sf_lakehouse.emulator.history import format_sf_datetime, object_of, parse_sf_datetime
from sf_lakehouse.emulator.testing import redirecting_session
from sf_lakehouse.emulator.transport import Request

REPO_ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 1, 8, tzinfo=UTC)
AFTER_ALL = START + timedelta(days=7)
HISTORY = generate_org(users=300, seed=3)
USERS = len({r["Id"] for r in HISTORY if object_of(r) == "User"})
QUERY = "/services/data/v59.0/query"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(HISTORY, workdir=tmp_path / "emulator", now=AFTER_ALL) as running:
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


def session(emulator: SalesforceEmulator) -> requests.Session:
    plain = requests.Session()
    plain.trust_env = False
    plain.verify = str(emulator.ca_bundle)
    return plain


def api(emulator: SalesforceEmulator, sf: Salesforce) -> tuple[requests.Session, dict[str, str]]:
    return session(emulator), {"Authorization": f"Bearer {sf.session_id}"}


def put_plan(emulator: SalesforceEmulator, plan: dict[str, Any]) -> requests.Response:
    return session(emulator).put(f"{emulator.base_url}/_emulator/faults", json=plan)


def injected(emulator: SalesforceEmulator) -> dict[str, int]:
    return session(emulator).get(f"{emulator.base_url}/_emulator/faults").json()["injected"]


def count_query(emulator: SalesforceEmulator, http: requests.Session, headers: dict) -> int:
    url = f"{emulator.base_url}{QUERY}"
    return http.get(url, params={"q": "SELECT COUNT() FROM User"}, headers=headers).status_code


# --- the plan: PUT, GET with counts, DELETE -------------------------------------------------


def test_plan_round_trip_counts_and_switch_off(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    plan = {"seed": 7, "faults": [{"kind": "http_503", "every": 2, "path": QUERY}]}
    answer = put_plan(emulator, plan)
    assert answer.status_code == 200
    assert answer.json() == {
        "seed": 7,
        "faults": [{"kind": "http_503", "every": 2, "path": QUERY, "body": "json"}],
        "injected": {"http_503": 0},
    }
    http, headers = api(emulator, sf)
    statuses = [count_query(emulator, http, headers) for _ in range(6)]
    assert statuses == [200, 503, 200, 503, 200, 503]
    assert sf.User.describe()["name"] == "User"  # not under the path
    assert injected(emulator) == {"http_503": 3}

    switched_off = session(emulator).delete(f"{emulator.base_url}/_emulator/faults")
    assert switched_off.status_code == 200 and switched_off.json()["injected"] == {"http_503": 3}
    assert [count_query(emulator, http, headers) for _ in range(4)] == [200] * 4
    report = session(emulator).get(f"{emulator.base_url}/_emulator/faults").json()
    assert report == {"seed": None, "faults": [], "injected": {}}


def test_same_seed_same_faults(tmp_path: Path) -> None:
    plan = {
        "seed": 11,
        "faults": [
            {"kind": "http_500", "probability": 0.3},
            {"kind": "rate_limited", "probability": 0.2, "path": QUERY},
        ],
    }

    def statuses(seed: int, name: str) -> list[int]:
        with SalesforceEmulator(HISTORY, workdir=tmp_path / name, now=AFTER_ALL) as emulator:
            token = client(emulator).session_id  # logging in is never faulted (no path)
            put_plan(emulator, {**plan, "seed": seed})
            http = session(emulator)
            headers = {"Authorization": f"Bearer {token}"}
            return [count_query(emulator, http, headers) for _ in range(40)]

    first, again, other = statuses(11, "a"), statuses(11, "b"), statuses(12, "c")
    assert first == again
    assert first != other
    assert {500, 403, 200} <= set(first)


def test_bad_plans_are_refused_naming_the_problem(emulator: SalesforceEmulator) -> None:
    cases = [
        ({"faults": [{"kind": "http_504"}]}, "unknown kind 'http_504'"),
        ({"faults": [{"kind": "stall", "secs": 3}]}, "unknown field 'secs'"),
        ({"faults": [{"kind": "stall"}]}, "'seconds' is required"),
        ({"faults": [{"kind": "http_503", "body": "xml"}]}, "'body' must be"),
        ({"faults": [{"kind": "reset", "probability": 2}]}, "'probability' must be"),
        ({"faults": [{"kind": "reset", "every": 0}]}, "'every' must be"),
        ({"faults": [{"kind": "reset", "every": 2, "probability": 0.5}]}, "not both"),
        ({"faults": [{"kind": "malformed"}]}, "'field' is required"),
        ({"faults": [{"kind": "commit_lag", "seconds": 5, "every": 2}]}, "unknown field 'every'"),
        ({"seed": "x", "faults": []}, "'seed' must be"),
        ({"fault": []}, "Unknown field 'fault'"),
        ([1], "JSON object"),
    ]
    for plan, fragment in cases:
        answer = put_plan(emulator, plan)  # type: ignore[arg-type]
        assert answer.status_code == 400, plan
        (error,) = answer.json()
        assert error["errorCode"] == "INVALID_FAULT_PLAN" and fragment in error["message"], plan
    assert not emulator.faults.active


# --- request faults ---------------------------------------------------------------------------


def test_session_expired_really_expires_the_session(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    old = sf.session_id
    put_plan(emulator, {"faults": [{"kind": "session_expired", "every": 2, "path": QUERY}]})
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS
    # The second query gets 401 INVALID_SESSION_ID; simple-salesforce logs in again and retries.
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS
    assert emulator.soap_logins == 2 and sf.session_id != old
    http = session(emulator)
    dead = http.get(
        f"{emulator.base_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {old}"},
    )
    assert dead.status_code == 401
    assert dead.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert injected(emulator) == {"session_expired": 1}


def test_rate_limited_is_request_limit_exceeded(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    put_plan(emulator, {"faults": [{"kind": "rate_limited", "every": 1}]})
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert info.value.status == 403
    assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_503"])
def test_server_errors_as_json_or_as_a_proxy_page(emulator: SalesforceEmulator, kind: str) -> None:
    sf = client(emulator)
    http, headers = api(emulator, sf)
    status = int(kind[-3:])
    url = f"{emulator.base_url}{QUERY}"
    params = {"q": "SELECT Id FROM User"}
    put_plan(emulator, {"faults": [{"kind": kind, "every": 1, "body": "json"}]})
    answer = http.get(url, params=params, headers=headers)
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("application/json")
    (error,) = answer.json()
    assert set(error) == {"message", "errorCode"}
    assert error["errorCode"] in ("UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE")
    assert "Sforce-Limit-Info" in answer.headers

    put_plan(emulator, {"faults": [{"kind": kind, "every": 1, "body": "html"}]})
    answer = http.get(url, params=params, headers=headers)
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>") and str(status) in answer.text
    assert "Sforce-Limit-Info" not in answer.headers
    with pytest.raises(SalesforceGeneralError):  # what simple-salesforce makes of either
        sf.query("SELECT Id FROM User")


def test_reset_closes_the_connection_in_the_middle_of_the_body(
    emulator: SalesforceEmulator,
) -> None:
    sf = client(emulator)
    http, headers = api(emulator, sf)
    put_plan(emulator, {"faults": [{"kind": "reset", "every": 1, "path": QUERY}]})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(
            f"{emulator.base_url}{QUERY}", params={"q": "SELECT Id FROM User"}, headers=headers
        )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sf.query("SELECT Id, Name FROM User")
    assert injected(emulator) == {"reset": 2}


def test_stall_longer_than_the_client_timeout(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    http, headers = api(emulator, sf)
    url = f"{emulator.base_url}{QUERY}"
    params = {"q": "SELECT COUNT() FROM User"}
    put_plan(emulator, {"faults": [{"kind": "stall", "seconds": 1.5, "every": 1}]})
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(url, params=params, headers=headers, timeout=0.4)
    began = time.monotonic()
    answer = http.get(url, params=params, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["totalSize"] == USERS
    assert time.monotonic() - began >= 1.4  # it answers, late
    put_plan(emulator, {"faults": [{"kind": "stall", "seconds": 0.3, "then": "close"}]})
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(url, params=params, headers=headers, timeout=10)


def test_invalid_locator_on_a_next_page(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    put_plan(emulator, {"faults": [{"kind": "invalid_locator", "every": 1}]})
    first = sf.query("SELECT Id FROM User", headers=headers)  # first pages are never refused
    assert first["done"] is False
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=headers)
    assert info.value.status == 400
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    session(emulator).delete(f"{emulator.base_url}/_emulator/faults")
    with pytest.raises(SalesforceMalformedRequest):  # the cursor really is gone
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=headers)
    assert len(sf.query_all("SELECT Id FROM User", headers=headers)["records"]) == USERS


# --- Bulk 2.0 faults --------------------------------------------------------------------------


def test_bulk_failed_ends_the_job_in_failed(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    put_plan(emulator, {"faults": [{"kind": "bulk_failed", "every": 1}]})
    with pytest.raises(SalesforceOperationError, match="InternalServerError"):
        list(sf.bulk2.User.query("SELECT Id FROM User", wait=0))
    http, headers = api(emulator, sf)
    jobs = f"{emulator.base_url}/services/data/v59.0/jobs/query"
    (job,) = [j for j in http.get(jobs, headers=headers).json()["records"]]
    assert job["state"] == "Failed" and job["errorMessage"]
    results = http.get(f"{jobs}/{job['id']}/results", headers=headers)
    assert results.status_code == 400
    assert injected(emulator) == {"bulk_failed": 1}


def test_bulk_stuck_stays_in_progress_until_aborted(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    put_plan(emulator, {"faults": [{"kind": "bulk_stuck", "every": 1}]})
    http, headers = api(emulator, sf)
    jobs = f"{emulator.base_url}/services/data/v59.0/jobs/query"
    body = {"operation": "queryAll", "query": "SELECT Id FROM Account"}
    job_id = http.post(jobs, headers=headers, json=body).json()["id"]
    time.sleep(0.7)  # longer than a job takes
    for _ in range(3):
        assert http.get(f"{jobs}/{job_id}", headers=headers).json()["state"] == "InProgress"
    aborted = http.patch(f"{jobs}/{job_id}", headers=headers, json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert http.get(f"{jobs}/{job_id}", headers=headers).json()["state"] == "Aborted"
    # Without the fault the same job completes.
    session(emulator).delete(f"{emulator.base_url}/_emulator/faults")
    job_id = http.post(jobs, headers=headers, json=body).json()["id"]
    assert http.get(f"{jobs}/{job_id}", headers=headers).json()["state"] == "InProgress"
    time.sleep(0.6)
    assert http.get(f"{jobs}/{job_id}", headers=headers).json()["state"] == "JobComplete"


# --- data faults: commit lag, malformed values ------------------------------------------------


def _an_update() -> dict[str, Any]:
    """A User version that is not its record's first, from day two on."""
    seen: set[str] = set()
    for record in HISTORY:
        if object_of(record) != "User":
            continue
        if record["Id"] in seen and parse_sf_datetime(record["SystemModstamp"]) > START + timedelta(
            days=1
        ):
            return record
        seen.add(record["Id"])
    raise AssertionError("no update in the history")


def test_commit_lag_makes_a_version_appear_below_a_passed_watermark(
    emulator: SalesforceEmulator,
) -> None:
    sf = client(emulator)
    version = _an_update()
    stamp = parse_sf_datetime(version["SystemModstamp"])
    put_plan(emulator, {"faults": [{"kind": "commit_lag", "seconds": 30}]})
    soql = f"SELECT Id, SystemModstamp FROM User WHERE Id = '{version['Id']}'"
    emulator.set_clock(stamp + timedelta(seconds=10))
    (before,) = sf.query(soql)["records"]
    assert before["SystemModstamp"] < version["SystemModstamp"]  # not committed yet
    # A pipeline that read up to the server's time saw nothing at or after its watermark ...
    watermark = stamp + timedelta(seconds=5)
    later = f"SELECT Id FROM User WHERE SystemModstamp >= {format_sf_datetime(watermark)}"
    assert version["Id"] not in {r["Id"] for r in sf.query_all(later)["records"]}
    emulator.set_clock(stamp + timedelta(seconds=30))
    (after,) = sf.query(soql)["records"]
    assert after["SystemModstamp"] == version["SystemModstamp"]
    # ... and now the version sits below that watermark: only a lookback finds it.
    lookback = watermark - timedelta(minutes=1)
    again = f"SELECT Id FROM User WHERE SystemModstamp >= {format_sf_datetime(lookback)}"
    assert version["Id"] in {r["Id"] for r in sf.query_all(again)["records"]}
    assert injected(emulator)["commit_lag"] >= 3


def test_malformed_values_in_rest_and_bulk(emulator: SalesforceEmulator) -> None:
    sf = client(emulator)
    put_plan(
        emulator,
        {
            "seed": 3,
            "faults": [
                {"kind": "malformed", "field": "SystemModstamp"},
                {"kind": "malformed", "field": "IsActive", "probability": 0.5},
            ],
        },
    )
    records = sf.query_all("SELECT Id, SystemModstamp, IsActive FROM User")["records"]
    assert {r["SystemModstamp"] for r in records} == {"2026-13-45T99:00:00"}
    flags = [r["IsActive"] for r in records]
    assert "maybe" in flags and any(isinstance(f, bool) for f in flags)
    pages = list(sf.bulk2.User.query("SELECT Id, SystemModstamp FROM User", wait=0))
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert len(rows) == USERS and {r["SystemModstamp"] for r in rows} == {"2026-13-45T99:00:00"}
    counts = injected(emulator)
    assert counts["malformed"] == 2 * USERS + flags.count("maybe")
    # A field the query does not select is left alone.
    assert "SystemModstamp" not in sf.query("SELECT Id FROM User LIMIT 1")["records"][0]


# --- what faults never touch ------------------------------------------------------------------


def test_control_plane_and_login_are_not_faulted(emulator: SalesforceEmulator) -> None:
    put_plan(emulator, {"faults": [{"kind": "http_503", "every": 1}]})
    http = session(emulator)
    for _ in range(3):
        assert http.get(f"{emulator.base_url}/_emulator/clock").status_code == 200
    sf = client(emulator)  # the SOAP login: no path names it
    assert emulator.soap_logins == 1
    with pytest.raises(SalesforceGeneralError):
        sf.query("SELECT Id FROM User")
    put_plan(emulator, {"faults": [{"kind": "http_503", "every": 1, "path": "/services/Soap"}]})
    with pytest.raises(Exception, match="503"):
        client(emulator)
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == USERS  # data API untouched now


def test_control_plane_answers_local_clients_only(emulator: SalesforceEmulator) -> None:
    remote = Request("GET", "/_emulator/faults", {}, {}, b"", client="10.1.2.3")
    assert emulator._handle(remote).status == 403
    local = Request("GET", "/_emulator/faults", {}, {}, b"", client="127.0.0.1")
    assert emulator._handle(local).status == 200


def test_date_and_limit_headers_on_every_api_response(emulator: SalesforceEmulator) -> None:
    emulator.set_clock(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    sf = client(emulator)
    http, headers = api(emulator, sf)
    for path in (f"{QUERY}?q=SELECT+Id+FROM+User+LIMIT+1", "/services/data/v59.0/nope"):
        answer = http.get(f"{emulator.base_url}{path}", headers=headers)
        assert answer.headers["Date"] == "Wed, 04 Mar 2026 05:06:07 GMT"
        assert email.utils.parsedate_to_datetime(answer.headers["Date"]) == emulator.now()
        assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")
    unauthorised = http.get(f"{emulator.base_url}{QUERY}", params={"q": "SELECT Id FROM User"})
    assert unauthorised.status_code == 401 and "Sforce-Limit-Info" in unauthorised.headers
    clock = http.get(f"{emulator.base_url}/_emulator/clock")
    assert clock.headers["Date"] == "Wed, 04 Mar 2026 05:06:07 GMT"


# --- --faults FILE at start -------------------------------------------------------------------


def test_cli_starts_with_a_fault_plan(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    write_history(generate_org(users=20, seed=4), history)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"seed": 5, "faults": [{"kind": "http_503", "every": 1}]}))
    env_file = tmp_path / "emulator.env"
    command = [
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
        "--faults",
        str(plan),
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        http = requests.Session()
        http.trust_env = False
        http.verify = env["SF_CA_BUNDLE"]
        report = http.get(f"{env['SF_LOGIN_URL']}/_emulator/faults").json()
        assert report["seed"] == 5 and report["faults"][0]["kind"] == "http_503"
        answer = http.get(f"{env['SF_LOGIN_URL']}/services/data/v59.0/limits")
        assert answer.status_code == 503
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Fault plan on (seed 5): http_503" in out and "Faults injected: http_503 1" in out

    plan.write_text(json.dumps({"faults": [{"kind": "teleport"}]}))
    bad = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, env=environment, timeout=60
    )
    assert bad.returncode == 2 and "unknown kind 'teleport'" in bad.stderr
