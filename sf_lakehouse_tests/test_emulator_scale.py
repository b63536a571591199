"""The emulator on a moderately large org: about 200,000 versions written as JSON Lines, loaded
from the file in columns, queried over HTTPS (counts, records, filters, order, complete paging,
Bulk pages) against an oracle computed from the same generated records. The million-record
measurement is ``benchmarks/emulator_scale.py``."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce

from sf_lakehouse.emulator import SalesforceEmulator
from sf_lakehouse.emulator.history import format_sf_datetime
from sf_lakehouse.emulator.synthetic import iter_org
from sf_lakehouse.emulator.testing import redirecting_session

START = datetime(2026, 3, 1, 8, tzinfo=UTC)
USERS = 26_000
CLOCKS = {"mid": START + timedelta(days=2, hours=7, milliseconds=1), "end": START + timedelta(7)}
OBJECTS = ("User", "Account", "Opportunity")


def _dumps(version: dict[str, Any]) -> bytes:
    return json.dumps(version, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, int]:
    """The history file, and per clock and object: Id -> the latest visible version."""
    path = tmp_path_factory.mktemp("scale") / "org.jsonl"
    cutoffs = {name: format_sf_datetime(moment) for name, moment in CLOCKS.items()}
    oracle: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
        name: {obj: {} for obj in OBJECTS} for name in CLOCKS
    }
    total = 0
    with path.open("wb") as handle:
        for versions in iter_org(users=USERS, seed=21):
            handle.write(b"".join(_dumps(v) + b"\n" for v in versions))
            total += len(versions)
            kind = versions[0].get("attributes", {}).get("type", "User")
            for name, cutoff in cutoffs.items():
                visible = [v for v in versions if v["SystemModstamp"] <= cutoff]
                if visible:
                    oracle[name][kind][visible[-1]["Id"]] = visible[-1]
    return path, oracle, total


@pytest.fixture(scope="module")
def served(
    org: tuple[Path, dict, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SalesforceEmulator, Salesforce, float]]:
    path, _, _ = org
    began = time.monotonic()
    emulator = SalesforceEmulator(path, workdir=tmp_path_factory.mktemp("tls"), now=CLOCKS["mid"])
    loaded = time.monotonic() - began
    with emulator:
        creds = emulator.credentials
        sf = Salesforce(
            username=creds.username,
            password=creds.password,
            security_token=creds.security_token,
            session=redirecting_session(emulator.base_url, emulator.ca_bundle),
            version="59.0",
        )
        yield emulator, sf, loaded


def _live(records: dict[str, dict[str, Any]]) -> set[str]:
    return {i for i, r in records.items() if r.get("IsDeleted") is not True}


def test_loads_every_version_quickly(org: tuple, served: tuple) -> None:
    _, _, total = org
    emulator, _, loaded = served
    assert total > 190_000
    assert emulator.org.version_count == total
    assert emulator.org.record_counts() == {
        "Account": USERS // 3,
        "Opportunity": USERS // 2,
        "User": USERS,
    }
    assert loaded < 30  # a few seconds on a laptop; generous for a busy CI machine


@pytest.mark.parametrize("clock", list(CLOCKS))
def test_counts_per_object_and_clock(org: tuple, served: tuple, clock: str) -> None:
    _, oracle, _ = org
    emulator, sf, _ = served
    emulator.set_clock(CLOCKS[clock])
    for name in OBJECTS:
        expected = oracle[clock][name]
        assert sf.query(f"SELECT COUNT() FROM {name}")["totalSize"] == len(_live(expected))
        every = sf.query(f"SELECT COUNT() FROM {name}", include_deleted=True)["totalSize"]
        assert every == len(expected), name


def test_a_few_records_field_by_field(org: tuple, served: tuple) -> None:
    _, oracle, _ = org
    emulator, sf, _ = served
    emulator.set_clock(CLOCKS["mid"])
    fields = {
        "User": ["Username", "Division", "Audit_Phase__c", "IsActive", "SystemModstamp"],
        "Account": ["Name", "Type", "OwnerId", "AnnualRevenue", "IsDeleted", "SystemModstamp"],
        "Opportunity": ["StageName", "Amount", "CloseDate", "IsDeleted", "LastModifiedDate"],
    }
    for name, wanted in fields.items():
        expected = oracle["mid"][name]
        sample = sorted(expected)[:: max(len(expected) // 7, 1)][:7]
        listed = ", ".join(f"'{record_id}'" for record_id in sample)
        soql = f"SELECT Id, {', '.join(wanted)} FROM {name} WHERE Id IN ({listed})"
        got = {r["Id"]: r for r in sf.query_all(soql, include_deleted=True)["records"]}
        assert set(got) == set(sample)
        for record_id in sample:
            for field in wanted:
                assert got[record_id][field] == expected[record_id].get(field), (name, field)


def test_paging_is_complete(org: tuple, served: tuple) -> None:
    _, oracle, _ = org
    emulator, sf, _ = served
    emulator.set_clock(CLOCKS["end"])
    expected = oracle["end"]["Opportunity"]
    page = sf.query("SELECT Id, SystemModstamp FROM Opportunity", include_deleted=True)
    seen = {r["Id"]: r["SystemModstamp"] for r in page["records"]}
    pages = 1
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        seen.update({r["Id"]: r["SystemModstamp"] for r in page["records"]})
        pages += 1
    assert pages == math.ceil(len(expected) / 2000)
    assert seen == {i: r["SystemModstamp"] for i, r in expected.items()}


def test_filter_order_and_limit(org: tuple, served: tuple) -> None:
    _, oracle, _ = org
    emulator, sf, _ = served
    emulator.set_clock(CLOCKS["end"])
    watermark = format_sf_datetime(START + timedelta(days=4))
    soql = (
        "SELECT Id, Division, SystemModstamp FROM User WHERE SystemModstamp >= "
        f"{watermark} AND Division != null ORDER BY SystemModstamp DESC, Id LIMIT 300"
    )
    got = [r["Id"] for r in sf.query(soql)["records"]]
    candidates = [
        r
        for r in oracle["end"]["User"].values()
        if r["SystemModstamp"] >= watermark and r.get("Division") is not None
    ]
    candidates.sort(key=lambda r: r["Id"])
    candidates.sort(key=lambda r: r["SystemModstamp"], reverse=True)
    assert got == [r["Id"] for r in candidates[:300]]


def test_bulk_pages(org: tuple, served: tuple) -> None:
    _, oracle, _ = org
    emulator, sf, _ = served
    emulator.set_clock(CLOCKS["mid"])
    pages = list(sf.bulk2.User.query("SELECT Id, Division FROM User", max_records=10_000, wait=0))
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    expected = oracle["mid"]["User"]
    assert len(pages) == math.ceil(len(expected) / 10_000)
    assert {r["Id"]: r["Division"] for r in rows} == {
        i: r.get("Division") or "" for i, r in expected.items()
    }
