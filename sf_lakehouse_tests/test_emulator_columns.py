"""The columnar org against the references: the vectorised engine answers like the dict evaluator
(``soql.execute``) over the latest versions, a file read in Arrow blocks gives the same org as
its records, and a bad file gets the very message ``load_history`` gives (file, line, fix)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sf_lakehouse.emulator import HistoryError, Org, generate_org, load_history, loader
from sf_lakehouse.emulator.history import object_of, parse_sf_datetime
from sf_lakehouse.emulator.render import json_records
from sf_lakehouse.emulator.soql import execute, parse

START = datetime(2026, 3, 1, 8, tzinfo=UTC)
GENERATED = generate_org(users=90, seed=5, accounts=40, opportunities=240)
ORG = Org(GENERATED)


def _reference(text: str, moment: datetime, include_deleted: bool) -> list[dict[str, Any]]:
    """The dict evaluator over the latest visible versions (IsDeleted false unless true)."""
    query = parse(text)
    name = ORG.find(query.object_name.name).name
    latest: dict[str, dict[str, Any]] = {}
    for record in GENERATED:
        if object_of(record) == name and parse_sf_datetime(record["SystemModstamp"]) <= moment:
            latest[record["Id"]] = {k: v for k, v in record.items() if k != "attributes"}
    rows = list(latest.values())
    if name != "User":
        rows = [{**r, "IsDeleted": r.get("IsDeleted") is True} for r in rows]
        if not include_deleted:
            rows = [r for r in rows if not r["IsDeleted"]]
    result = execute(query, ORG.schema(name, moment).soql, rows)
    if result.is_count:
        return [{"count": result.total_size}]
    return result.records


def _columnar(text: str, moment: datetime, include_deleted: bool) -> list[dict[str, Any]]:
    _, selection = ORG.query(text, moment, include_deleted=include_deleted)
    if selection.is_count:
        return [{"count": selection.total_size}]
    records = json_records(selection, 0, selection.total_size, "v59.0")
    return [{k: v for k, v in r.items() if k != "attributes"} for r in records]


QUERIES = [
    "SELECT Id, Division, Audit_Phase__c FROM User",
    "SELECT Id FROM User WHERE Division = 'emea'",
    "SELECT Id, Division FROM User WHERE Division != 'EMEA'",
    "SELECT Id FROM User WHERE Division = null OR Audit_Phase__c = null",
    "SELECT Id FROM User WHERE Division != null AND (NOT Audit_Phase__c IN ('Review', null))",
    "SELECT Id, Name FROM User WHERE Name LIKE '%o\\'b%' OR Name LIKE 'J_s%'",
    "SELECT Id FROM User WHERE Division NOT IN ('EMEA', 'APAC')",
    "SELECT Id, SystemModstamp FROM User WHERE SystemModstamp > 2026-03-03T08:00:00Z "
    "ORDER BY SystemModstamp DESC, Id LIMIT 25 OFFSET 3",
    "SELECT Id, Division, Title FROM User ORDER BY Division NULLS LAST, Title DESC, Name",
    "SELECT Id, Division FROM User ORDER BY Division DESC NULLS FIRST",
    "SELECT COUNT() FROM User WHERE IsActive = false",
    "SELECT Id, ManagerId FROM User WHERE ManagerId IN ('0058d0000000RFB', '0058d0000000VMd')",
    "SELECT Id, Type, AnnualRevenue FROM Account WHERE AnnualRevenue >= 5000000 "
    "ORDER BY AnnualRevenue, Id",
    "SELECT Id, StageName, Amount, CloseDate FROM Opportunity WHERE CloseDate < 2026-05-01 "
    "AND Amount != null ORDER BY CloseDate DESC, Amount LIMIT 40",
    "SELECT Id, IsDeleted, StageName FROM Opportunity WHERE IsDeleted = true OR StageName "
    "IN ('Closed Won', 'closed lost')",
    "SELECT COUNT() FROM Opportunity WHERE Probability > 20 AND Probability <= 75",
    "SELECT Id, Region__c FROM User WHERE Region__c LIKE 'EU%' ORDER BY Region__c, Id",
]


@pytest.mark.parametrize("text", QUERIES)
@pytest.mark.parametrize("include_deleted", [False, True])
def test_engine_answers_like_the_dict_evaluator(text: str, include_deleted: bool) -> None:
    for moment in (START + timedelta(days=1, hours=3), START + timedelta(days=7)):
        if "Region__c" in text and moment < START + timedelta(days=3):
            continue
        assert _columnar(text, moment, include_deleted) == _reference(
            text, moment, include_deleted
        ), (text, moment)


def _lines(records: list[Any]) -> str:
    return "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records
    )


def _same_org(left: Org, right: Org, moment: datetime) -> None:
    for spec in left.objects():
        assert [f.name for f in left.schema(spec.name, moment).fields] == [
            f.name for f in right.schema(spec.name, moment).fields
        ]
        assert [f.type for f in left.schema(spec.name, moment).fields] == [
            f.type for f in right.schema(spec.name, moment).fields
        ]
        fields = ", ".join(f.name for f in left.schema(spec.name, moment).fields)
        text = f"SELECT {fields} FROM {spec.name}"
        answers = []
        for org in (left, right):
            _, selection = org.query(text, moment, include_deleted=True)
            answers.append(json_records(selection, 0, selection.total_size, "v59.0"))
        assert answers[0] == answers[1], spec.name


def test_a_file_read_in_blocks_is_the_org_of_its_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blank lines, CRLF, a field of mixed types (the Python path for that block), a nested
    value, a key first written with null, a field appearing late, text with quotes, unicode."""
    odd = [
        {"Id": "005000000000001AAA", "SystemModstamp": "2026-03-01T07:30:00Z", "Name": "Zoë"},
        {
            "Id": "005000000000001AAA",
            "SystemModstamp": "2026-03-01T09:00:00+01:00",
            "Late__c": None,
        },
        {
            "Id": "005000000000002AAA",
            "SystemModstamp": "2026-03-01T08:30:00.5Z",
            "Late__c": 'say "hi"',
        },
        {
            "attributes": {"type": "Gadget__c"},
            "Id": "a07000000000001AAA",
            "Size__c": 3,
            "SystemModstamp": "2026-03-01T08:00:00.000+0000",
            "Spec__c": {"w": 1},
        },
        {
            "attributes": {"type": "Gadget__c", "url": "/x"},
            "Id": "a07000000000001AAA",
            "Size__c": "big",
            "SystemModstamp": "2026-03-02T08:00:00.000+0000",
            "IsDeleted": True,
        },
        {
            "attributes": {"type": "Gadget__c"},
            "Id": "a07000000000002AAA",
            "Size__c": 2.5,
            "SystemModstamp": "2026-03-02T09:00:00.000+0000",
            "When__c": "2026-03-02T09:00:00Z",
        },
    ]
    history = [*GENERATED[:300], *odd, *GENERATED[300:]]
    text = _lines(history).replace("\n", "\r\n", 40)
    text = text.replace("\r\n", "\r\n\n  \n", 3)
    path = tmp_path / "odd.jsonl"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(loader, "BLOCK_BYTES", 4096)  # many blocks, lines cut at block ends
    from_file = Org.from_file(path)
    from_records = Org(history)
    assert from_file.version_count == len(history) == from_records.version_count
    for moment in (START + timedelta(hours=1), START + timedelta(days=7)):
        _same_org(from_file, from_records, moment)
    gadget = {
        f.name: f.type for f in from_file.schema("Gadget__c", START + timedelta(days=2)).fields
    }
    assert (gadget["Size__c"], gadget["Spec__c"], gadget["When__c"]) == (
        "string",
        "string",
        "datetime",
    )
    early = {f.name for f in from_file.schema("User", START + timedelta(minutes=1)).fields}
    assert "Late__c" in early  # written as null at 08:00 UTC (09:00+01:00): it exists from then


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        "[1, 2]",
        '{"SystemModstamp": "2026-03-01T08:00:00Z"}',
        '{"Id": "005000000000009AAA", "SystemModstamp": "yesterday"}',
        '{"Id": 5, "SystemModstamp": "2026-03-01T08:00:00Z"}',
        '{"Id": "005000000000009AAA", "SystemModstamp": "2026-03-01T08:00:00Z", "IsDeleted": null}',
        '{"attributes": null, "Id": "001000000000009AAA", '
        '"SystemModstamp": "2026-03-01T08:00:00Z"}',
        '{"attributes": {"type": "Lead"}, "Id": "00Q000000000009AAA", '
        '"SystemModstamp": "2026-03-01T08:00:00Z"}',
        '{"attributes": {"type": "Account"}, "Id": "001000000000009AAA", "IsDeleted": "yes", '
        '"SystemModstamp": "2026-03-01T08:00:00Z"}',
        '{"attributes": {"type": "Account"}, "Id": "0058d0000000RFBAA2", '
        '"SystemModstamp": "2026-03-02T08:00:00Z"}',
        '{"Id": "0058d0000000RFBAA2", "SystemModstamp": "2026-03-01T08:00:00.000+0000"}',
    ],
)
def test_bad_lines_get_the_message_load_history_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    path = tmp_path / "bad.jsonl"
    lines = _lines(GENERATED[:250]).splitlines()
    lines.insert(180, bad)
    lines.insert(20, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(HistoryError) as expected:
        load_history(path)
    monkeypatch.setattr(loader, "BLOCK_BYTES", 8192)
    with pytest.raises(HistoryError) as got:
        Org.from_file(path)
    assert str(got.value) == str(expected.value)
    assert f"{path}, line " in str(got.value)
