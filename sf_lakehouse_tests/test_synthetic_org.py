"""The synthetic org: deterministic, valid history, and every documented trait present."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

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


# --- accounts and opportunities -------------------------------------------------------------


def _by_object(records: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """object -> Id -> versions (in history order)."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        grouped[object_of(record)][record["Id"]].append(record)
    return grouped


def test_default_object_counts_follow_users() -> None:
    grouped = _by_object(generate_org())
    assert {name: len(ids) for name, ids in grouped.items()} == {
        "User": 300,
        "Account": 100,
        "Opportunity": 150,
    }
    small = _by_object(generate_org(users=2, seed=1, days=2))
    assert (len(small["Account"]), len(small["Opportunity"])) == (3, 4)
    custom = _by_object(generate_org(users=10, seed=1, accounts=7, opportunities=0))
    assert (len(custom["Account"]), "Opportunity" in custom) == (7, False)
    with pytest.raises(ValueError, match="negative"):
        generate_org(users=10, accounts=-1)


@pytest.mark.parametrize(("users", "seed"), [(300, 7), (40, 1), (8, 99)])
def test_relations_point_at_generated_records(users: int, seed: int) -> None:
    records = generate_org(users=users, seed=seed)
    grouped = _by_object(records)
    user_first = {
        i: parse_sf_datetime(versions[0]["SystemModstamp"])
        for i, versions in grouped["User"].items()
    }
    account_first = {
        i: parse_sf_datetime(v[0]["SystemModstamp"]) for i, v in grouped["Account"].items()
    }
    for name in ("Account", "Opportunity"):
        for versions in grouped[name].values():
            for version in versions:
                stamp = parse_sf_datetime(version["SystemModstamp"])
                # The owner is a generated user who already exists at that version.
                assert user_first[version["OwnerId"]] <= stamp
    account_ids = set(grouped["Account"])
    opportunity_accounts = [v["AccountId"] for vs in grouped["Opportunity"].values() for v in vs]
    assert set(opportunity_accounts) <= account_ids and None not in opportunity_accounts
    for versions in grouped["Opportunity"].values():
        first = versions[0]
        assert account_first[first["AccountId"]] < parse_sf_datetime(first["SystemModstamp"])
        assert len({v["AccountId"] for v in versions}) == 1


def test_account_and_opportunity_shape() -> None:
    grouped = _by_object(generate_org(users=60, seed=4))
    stage_probability = {
        "Prospecting": 10.0,
        "Qualification": 20.0,
        "Proposal": 50.0,
        "Negotiation": 75.0,
        "Closed Won": 100.0,
        "Closed Lost": 0.0,
    }
    for name, prefix in (("Account", "001"), ("Opportunity", "006")):
        for record_id, versions in grouped[name].items():
            assert len(record_id) == 18 and record_id.startswith(prefix)
            for version in versions:
                assert version["attributes"] == {"type": name}
                assert isinstance(version["IsDeleted"], bool)
                created = parse_sf_datetime(version["CreatedDate"])
                assert created <= parse_sf_datetime(version["SystemModstamp"])
    for versions in grouped["Opportunity"].values():
        for version in versions:
            stage = version["StageName"]
            assert version["Probability"] == stage_probability[stage]
            assert version["IsClosed"] is stage.startswith("Closed")
            assert version["IsWon"] is (stage == "Closed Won")
            assert version["CloseDate"] == date.fromisoformat(version["CloseDate"]).isoformat()
            assert version["Amount"] is None or isinstance(version["Amount"], float)


def test_tracked_fields_change_over_time() -> None:
    summary = trait_summary(generate_org())
    for key in (
        "account_type_changes",
        "account_owner_changes",
        "opportunity_stage_changes",
        "opportunity_amount_changes",
        "opportunities_closed_won",
        "opportunities_closed_lost",
    ):
        assert summary[key] >= 10, key
    # Stages move forward one step at a time, or close, or slip back one step.
    order = ["Prospecting", "Qualification", "Proposal", "Negotiation"]
    for versions in _by_object(generate_org())["Opportunity"].values():
        for before, after in itertools.pairwise(v["StageName"] for v in versions):
            if before == after:
                continue
            assert before in order, f"{before} -> {after}: a closed deal reopened"
            if after in order:
                assert abs(order.index(after) - order.index(before)) == 1


def test_deletes_and_undeletes_including_the_first_days() -> None:
    records = generate_org()
    summary = trait_summary(records)
    for name in ("account", "opportunity"):
        assert summary[f"{name}_deletions"] >= 5 and summary[f"{name}_undeletes"] >= 3, summary
    early = START + timedelta(days=2)
    for name in ("Account", "Opportunity"):
        deletes, undeletes = [], []
        for versions in _by_object(records)[name].values():
            for before, after in itertools.pairwise(versions):
                stamp = parse_sf_datetime(after["SystemModstamp"])
                if after["IsDeleted"] and not before["IsDeleted"]:
                    deletes.append(stamp)
                if before["IsDeleted"] and not after["IsDeleted"]:
                    undeletes.append(stamp)
        assert sum(s < early for s in deletes) >= 3, name
        assert sum(s < early for s in undeletes) >= 1, name


def test_deleting_an_account_deletes_its_live_opportunities() -> None:
    grouped = _by_object(generate_org())
    checked = 0
    for account_id, versions in grouped["Account"].items():
        children = [v for v in grouped["Opportunity"].values() if v[0]["AccountId"] == account_id]
        for before, after in itertools.pairwise(versions):
            if after["IsDeleted"] == before["IsDeleted"]:
                continue
            moment = parse_sf_datetime(after["SystemModstamp"])
            for child in children:
                states = [(parse_sf_datetime(v["SystemModstamp"]), v["IsDeleted"]) for v in child]
                live_before = [d for s, d in states if s < moment]
                if after["IsDeleted"] and live_before and not live_before[-1]:
                    # Deleted with its account, within the second.
                    assert any(d and moment < s <= moment + timedelta(seconds=1) for s, d in states)
                    checked += 1
    assert checked >= 3


def test_same_seed_same_org_and_user_part_unchanged_by_other_objects() -> None:
    first = generate_org(users=80, seed=5, accounts=30, opportunities=50)
    assert first == generate_org(users=80, seed=5, accounts=30, opportunities=50)
    assert first != generate_org(users=80, seed=6, accounts=30, opportunities=50)
    users_only = generate_org(users=80, seed=5, accounts=0, opportunities=0)
    assert {object_of(r) for r in users_only} == {"User"}
    for other in (first, generate_org(users=80, seed=5)):
        assert [r for r in other if object_of(r) == "User"] == users_only


# --- history validation of objects and deletes -----------------------------------------------

_LINE = '"Id": "001000000000001AAA", "SystemModstamp": "2026-03-01T08:00:00Z"'


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"attributes": "Account", ' + _LINE + "}", ["'attributes' must be an object"]),
        ('{"attributes": {"url": "/x"}, ' + _LINE + "}", ["'type' string"]),
        ('{"attributes": {"type": "Lead"}, ' + _LINE + "}", ["unknown object 'Lead'", "__c"]),
        ('{"attributes": {"type": "account"}, ' + _LINE + "}", ["Did you mean 'Account'?"]),
        (
            '{"attributes": {"type": "Account"}, "IsDeleted": "yes", ' + _LINE + "}",
            ["IsDeleted must be true or false", '"yes"'],
        ),
        (
            '{"IsDeleted": true, "Id": "005000000000009AAA", "SystemModstamp": '
            '"2026-03-01T08:00:00Z"}',
            ["a User has no IsDeleted field", "attributes"],
        ),
    ],
)
def test_load_history_object_errors_name_file_line_and_fix(
    tmp_path: Path, content: str, fragments: list[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"Id": "005000000000002AAA", "SystemModstamp": "2026-03-01T08:00:00Z"}\n\n' + content
    )
    with pytest.raises(HistoryError) as info:
        load_history(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 3: "), message
    for fragment in fragments:
        assert fragment in message


def test_load_history_objects_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    account = {"attributes": {"type": "Account"}, "Id": "001000000000001AAA"}
    lines = [
        {**account, "SystemModstamp": "2026-03-01T09:00:00Z", "IsDeleted": True},
        {
            "attributes": {"type": "Invoice__c", "url": "/x"},
            "Id": "a01000000000001AAA",
            "SystemModstamp": "2026-03-01T08:00:00Z",
        },
        {**account, "SystemModstamp": "2026-03-01T08:00:00Z", "IsDeleted": None},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    loaded = load_history(path)
    # Ordered by (SystemModstamp, Id); a null IsDeleted is a missing one.
    assert [object_of(r) for r in loaded] == ["Account", "Invoice__c", "Account"]
    assert loaded[-1]["IsDeleted"] is True and "attributes" in loaded[0]
    clash = {"Id": "001000000000001AAA", "SystemModstamp": "2026-03-02T08:00:00Z"}
    path.write_text(path.read_text() + json.dumps(clash) + "\n")
    with pytest.raises(HistoryError, match=r"line 4: Id 001000000000001AAA belongs to User"):
        load_history(path)
