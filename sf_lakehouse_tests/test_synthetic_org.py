"""The synthetic org: deterministic, valid history, and every documented trait present."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sf_lakehouse.emulator import HistoryError, generate_org, load_history, write_history
from sf_lakehouse.emulator.history import format_sf_datetime, object_of, parse_sf_datetime
from sf_lakehouse.emulator.synthetic import trait_summary

START = datetime(2026, 3, 1, 8, tzinfo=UTC)


def test_same_seed_gives_identical_output(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_history(generate_org(users=120, seed=11), first)
    write_history(generate_org(users=120, seed=11), second)
    assert first.read_bytes() == second.read_bytes()


def test_different_seed_differs() -> None:
    assert generate_org(users=120, seed=11) != generate_org(users=120, seed=12)


@pytest.mark.parametrize(("users", "seed"), [(300, 7), (40, 1), (8, 99)])
def test_every_trait_is_present(users: int, seed: int) -> None:
    summary = trait_summary(generate_org(users=users, seed=seed))
    missing = [name for name, count in summary.items() if count == 0]
    assert not missing, f"traits missing: {missing} in {summary}"
    assert summary["users"] == users


def test_versions_per_user_on_average() -> None:
    summary = trait_summary(generate_org())
    assert 3 <= summary["user_versions"] / summary["users"] <= 5
    assert summary["versions"] == sum(
        summary[k] for k in ("user_versions", "account_versions", "opportunity_versions")
    )


def test_history_validates_and_round_trips(tmp_path: Path) -> None:
    records = generate_org(users=150, seed=3)
    path = tmp_path / "history.jsonl"
    write_history(records, path)
    loaded = load_history(path)
    assert sorted(map(json.dumps, loaded)) == sorted(map(json.dumps, records))
    # UTF-8 on disk, names unescaped.
    assert "O'Brien" in path.read_text(encoding="utf-8")


def test_systemmodstamp_strictly_increasing_per_id_and_in_window() -> None:
    records = generate_org(users=300, seed=7)
    by_id: dict[str, list[datetime]] = defaultdict(list)
    for record in records:
        by_id[record["Id"]].append(parse_sf_datetime(record["SystemModstamp"]))
    for stamps in by_id.values():
        assert all(a < b for a, b in itertools.pairwise(stamps))
        assert stamps[0] >= START and stamps[-1] < START + timedelta(days=6)


def test_record_shape() -> None:
    records = [r for r in generate_org(users=50, seed=5) if object_of(r) == "User"]
    for record in records:
        assert "attributes" not in record and "IsDeleted" not in record
        assert len(record["Id"]) == 18 and record["Id"].startswith("005")
        assert record["Username"] == record["Email"]
        assert record["Email"].endswith("@acme-corp.example") and record["Email"].isascii()
        assert record["Name"] == f"{record['FirstName']} {record['LastName']}"
        assert record["Division"] in {"EMEA", "North America", "APAC", "LATAM", None}
        assert record["Audit_Phase__c"] in {"Planning", "Fieldwork", "Review", "Closed", None}
        stamp = record["SystemModstamp"]
        assert stamp == format_sf_datetime(parse_sf_datetime(stamp))
        assert parse_sf_datetime(record["CreatedDate"]) <= parse_sf_datetime(stamp)
        assert parse_sf_datetime(record["LastModifiedDate"]) <= parse_sf_datetime(stamp)
    assert len({r["Username"] for r in records}) == len({r["Id"] for r in records})


def test_region_field_appears_only_after_day_three() -> None:
    for record in generate_org(users=100, seed=2):
        if object_of(record) != "User":
            continue
        has_region = "Region__c" in record
        after = parse_sf_datetime(record["SystemModstamp"]) >= START + timedelta(days=3)
        assert has_region == after


def test_names_with_accents_and_apostrophes() -> None:
    names = {r["Name"] for r in generate_org(users=10)}
    for fragment in ("José", "Zoë", "Ångström", "O'Brien", "D'Angelo", "Nguyễn"):
        assert any(fragment in name for name in names), fragment


def test_whole_hour_versions_exist_at_start() -> None:
    stamps = {r["SystemModstamp"] for r in generate_org(users=20)}
    assert "2026-03-01T08:00:00.000+0000" in stamps
    assert "2026-03-02T08:00:00.000+0000" in stamps


def test_load_history_rejects_duplicate_stamp(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    line = {"Id": "005000000000001AAA", "SystemModstamp": "2026-03-01T08:00:00.000+0000"}
    path.write_text(json.dumps(line) + "\n" + json.dumps({**line, "Division": "EMEA"}) + "\n")
    with pytest.raises(HistoryError) as info:
        load_history(path)
    message = str(info.value)
    assert str(path) in message and "line 2" in message and "strictly increasing" in message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json\n", "not valid JSON"),
        ('{"SystemModstamp": "2026-03-01T08:00:00.000+0000"}\n', "no 'Id'"),
        ('{"Id": "005000000000001AAA"}\n', "no 'SystemModstamp'"),
        ('{"Id": "005000000000001AAA", "SystemModstamp": "yesterday"}\n', "not a datetime"),
        ("[1, 2]\n", "expected a JSON object"),
    ],
)
def test_load_history_errors_name_file_and_line(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '\n{"Id": "005000000000002AAA", "SystemModstamp": "2026-03-01T08:00:00Z"}\n' + content
    )
    with pytest.raises(HistoryError) as info:
        load_history(path)
    assert f"{path}, line 3" in str(info.value) and fragment in str(info.value)


def test_load_history_sorts_arbitrary_file_order(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    late = {"Id": "005000000000001AAA", "SystemModstamp": "2026-03-02T08:00:00.000+0000"}
    early = {"Id": "005000000000001AAA", "SystemModstamp": "2026-03-01T08:00:00.000+0000"}
    path.write_text(json.dumps(late) + "\n" + json.dumps(early) + "\n")
    assert [r["SystemModstamp"] for r in load_history(path)] == [
        early["SystemModstamp"],
        late["SystemModstamp"],
    ]


def test_load_history_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read"):
        load_history(tmp_path / "nope.jsonl")
