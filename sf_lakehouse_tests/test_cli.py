"""The command line as a user runs it: real processes, the real emulator, the real lakehouse."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sf_lakehouse.config import REPO_ROOT, Settings, resolve_settings
from sf_lakehouse.config.objects import load_object_specs
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests.histories import sf_datetime, user
from sf_lakehouse_tests.scd2_reference import expected_dimension

CLI = [sys.executable, "-m", "sf_lakehouse.cli"]
START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def cli(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_HOME"))}
    env["SF_LAKEHOUSE_HOME"] = str(tmp_path / "lakehouse")
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env


def table(settings: Settings, key: tuple[str, str]) -> list[dict]:
    catalog = open_catalog(settings.catalog_properties())
    return catalog.load_table(settings.table_identifier(key)).scan().to_arrow().to_pylist()


def dimension_without_ids(settings: Settings, spec) -> list[dict]:
    columns = [c for c in spec.dimension_columns if c != "scd_id"]
    rows = [{c: r[c] for c in columns} for r in table(settings, spec.dimension_asset_key)]
    return sorted(rows, key=lambda r: (r[spec.key_column], r["effective_from"]))


class Emulator:
    """`sf-lakehouse emulator` as a real process, with its control endpoint."""

    def __init__(self, history_file: Path, workdir: Path, env: dict[str, str], now: dt.datetime):
        self.env_file = workdir / "emulator.env"
        self.process = subprocess.Popen(
            [
                *CLI,
                "emulator",
                "--history",
                str(history_file),
                "--now",
                now.isoformat(),
                "--env-file",
                str(self.env_file),
                "--workdir",
                str(workdir / "emulator"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            cwd=env.get("PWD"),
        )
        deadline = time.monotonic() + 60
        while not self.env_file.exists():
            assert self.process.poll() is None, self.process.stderr.read()
            assert time.monotonic() < deadline, "emulator did not write its env file"
            time.sleep(0.2)
        self.values = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines())
        self.control = requests.Session()
        self.control.trust_env = False
        self.control.verify = self.values["SF_CA_BUNDLE"]

    def set_clock(self, clock: dt.datetime) -> None:
        moved = self.control.put(
            f"{self.values['SF_LOGIN_URL']}/_emulator/clock",
            json={"now": clock.isoformat()},
            timeout=30,
        )
        assert moved.status_code == 200

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


# Days of the six-day org at which the replay runs: the first, a middle one, the last.
RUN_DAYS = (0, 2, 5)


def test_replay_of_a_multi_object_org_over_three_runs_equals_the_rules(
    tmp_path: Path, user_env: dict[str, str]
) -> None:
    history_file = tmp_path / "org.jsonl"
    generated = cli(
        "generate-org",
        "--users",
        "300",
        "--seed",
        "21",
        "--output",
        str(history_file),
        env=user_env,
    )
    assert generated.returncode == 0, generated.stderr
    emulator = Emulator(history_file, tmp_path, user_env, START)
    try:
        for day in RUN_DAYS:
            emulator.set_clock(START + dt.timedelta(days=day, hours=10))
            run = cli("run", "--env-file", str(emulator.env_file), "--quiet", env=user_env)
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            assert "succeeded (local, salesforce_pipeline)" in run.stdout
    finally:
        emulator.stop()

    settings = resolve_settings("local", home=tmp_path / "lakehouse")
    for spec in settings.objects:
        raw = table(settings, spec.raw_asset_key)
        assert dimension_without_ids(settings, spec) == expected_dimension(spec, raw)
    user = settings.object("User")
    dimension = table(settings, user.dimension_asset_key)
    raw = table(settings, user.raw_asset_key)
    assert len({r["user_id"] for r in dimension}) >= 250
    assert len({r["_run_id"] for r in raw}) == len(RUN_DAYS)  # every run added versions
    # Each run's metrics (metrics/*.jsonl): the rows appended add up to the raw table.
    points = [
        json.loads(line)
        for path in sorted((tmp_path / "lakehouse" / "metrics").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    for spec in settings.objects:
        appended = [
            p["value"]
            for p in points
            if p["metric"] == "RowsAppended" and p["dimensions"].get("Object") == spec.api_name
        ]
        assert len(appended) == len(RUN_DAYS)
        assert sum(appended) == len(table(settings, spec.raw_asset_key)), spec.api_name
    # The runs are in the Dagster instance under the lakehouse home, for `dagster dev` to show.
    assert (tmp_path / "lakehouse" / "dagster" / "history").exists()

    # `query` answers over the same tables, in every format.
    dim_name = settings.table_identifier(user.dimension_asset_key)
    sql = f"select count(*) as n from {dim_name} where is_current"
    as_json = cli("query", sql, "--format", "json", env=user_env)
    assert json.loads(as_json.stdout) == [{"n": len({r["user_id"] for r in dimension})}]
    as_csv = cli(
        "query",
        f"select user_id, division from {dim_name} order by user_id, effective_from limit 3",
        "--format",
        "csv",
        env=user_env,
    )
    assert next(csv.reader(io.StringIO(as_csv.stdout))) == ["user_id", "division"]
    broken = cli("query", "select * from sf_raw_local.no_such_table", env=user_env)
    assert broken.returncode == 1 and "no_such_table" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1

    # --as-of: each record's version effective at that instant, on every object (one query
    # over every dimension: --as-of applies to each table it reads).
    instant = START + dt.timedelta(days=2, hours=12)
    naive = instant.replace(tzinfo=None)
    selects = [
        f"select '{spec.api_name}' as object, {spec.key_column} as k, effective_from "
        f"from {settings.table_identifier(spec.dimension_asset_key)}"
        for spec in settings.objects
    ]
    as_of = cli(
        "query",
        "--as-of",
        instant.isoformat(),
        " union all ".join(selects) + " order by 1, 2, 3",
        "--format",
        "json",
        env=user_env,
    )
    assert as_of.returncode == 0, as_of.stderr
    answered = json.loads(as_of.stdout)
    for spec in settings.objects:
        expected = sorted(
            (r[spec.key_column], r["effective_from"])
            for r in dimension_without_ids(settings, spec)
            if r["effective_from"] <= naive
            and (r["effective_to"] is None or r["effective_to"] > naive)
        )
        got = [
            (r["k"], dt.datetime.fromisoformat(r["effective_from"]))
            for r in answered
            if r["object"] == spec.api_name
        ]
        assert got and got == expected, spec.api_name
        assert len({k for k, _ in got}) == len(got)  # one version per record


def test_demo_prints_the_summaries(tmp_path: Path, user_env: dict[str, str]) -> None:
    demo = cli("demo", "--users", "80", "--home", str(tmp_path / "home"), env=user_env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert "Run 3:" in out and "History of User" in out
    lines = out.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:2] == ["object", "raw_versions"]
    )
    assert lines[header].split() == [
        "object",
        "raw_versions",
        "records",
        "scd_rows",
        "current_rows",
        "historical_rows",
        "deleted_now",
    ]
    summary = {line.split()[0]: line.split()[1:] for line in lines[header + 2 : header + 5]}
    assert set(summary) == {"User", "Account", "Opportunity"}
    for name, values in summary.items():
        raw_versions, records, total, current, historical = map(int, values[:5])
        assert total == current + historical and historical > 0, name
        assert current == records and raw_versions >= total  # one current row per record
    assert int(summary["Account"][5]) >= 0 and summary["User"][5] == "NULL"

    # `sf-lakehouse status` after the demo (SF_LAKEHOUSE_HOME is the demo's base): every
    # object fresh, exit 0.
    status = cli("status", env={**user_env, "SF_LAKEHOUSE_HOME": str(tmp_path / "home")})
    assert status.returncode == 0, status.stdout + status.stderr
    assert "showing the demo's lakehouse" in status.stderr
    assert status.stdout.strip().endswith("All well.")
    as_json = cli(
        "status",
        "--format",
        "json",
        env={**user_env, "SF_LAKEHOUSE_HOME": str(tmp_path / "home" / "demo")},
    )
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and report["healthy"] is True
    assert [o["object"] for o in report["objects"]] == ["Account", "Opportunity", "User"]
    for entry in report["objects"]:
        assert entry["last_run_outcome"] == "succeeded"
        assert entry["raw"]["status"] == entry["dimension"]["status"] == "fresh"


def test_run_without_credentials_says_how_to_fix_it(user_env: dict[str, str]) -> None:
    run = cli("run", "--quiet", env=user_env)
    assert run.returncode == 1
    assert "SF_USERNAME" in run.stderr and "emulator --env-file" in run.stderr


def test_unknown_environment_is_a_clear_error(user_env: dict[str, str]) -> None:
    run = cli("run", env={**user_env, "SF_LAKEHOUSE_ENV": "qa"})
    assert run.returncode == 2
    assert "unknown environment 'qa'" in run.stderr


def test_query_before_the_first_run_says_so_and_creates_nothing(
    tmp_path: Path, user_env: dict[str, str]
) -> None:
    done = cli("query", "select 1", env=user_env)
    assert done.returncode == 2
    assert "run `sf-lakehouse run`" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "lakehouse").exists()
    empty = cli("query", "  ", env=user_env)
    assert empty.returncode == 2 and "the SQL is empty" in empty.stderr


def _copy_project(target: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", ".lakehouse", "target", "logs", "__pycache__")
    shutil.copytree(REPO_ROOT, target, ignore=ignore)
    return target


def test_add_object_in_a_copy_of_the_project_then_run_builds_its_dimension(
    tmp_path: Path, user_env: dict[str, str]
) -> None:
    """A new user's path: `add-object Contact ...`, then `run` against an org serving Contacts
    builds dim_sf_contact_scd (with a deletion and an undelete) and nothing else changes."""
    project = _copy_project(tmp_path / "project")
    env = {**user_env, "PYTHONPATH": str(project), "PWD": str(project)}

    def in_copy(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env=env, cwd=project, timeout=300
        )

    added = in_copy(
        "add-object", "Contact", "--track", "AccountId", "--track", "Title", "--deletes"
    )
    assert added.returncode == 0, added.stderr
    for path in (
        "config/objects/contact.yml",
        "dbt_project/models/staging/stg_sf_contact.sql",
        "dbt_project/models/marts/dim_sf_contact_scd.sql",
    ):
        assert f"wrote {path}" in added.stdout
        assert (project / path).is_file()
    assert (project / "dbt_project/target/manifest.json").is_file()
    again = in_copy("add-object", "Contact", "--track", "Title")
    assert again.returncode == 2 and "already configured" in again.stderr

    def contact(minutes: int, title: str, account: str, deleted: bool = False) -> dict:
        stamp = sf_datetime(START + dt.timedelta(minutes=minutes))
        return {
            "attributes": {"type": "Contact"},
            "Id": "003000000000000CCC",
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Title": title,
            "AccountId": account,
            "IsDeleted": deleted,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
        }

    history = [
        # The org's User object has the spec's custom field Audit_Phase__c once a user has it.
        user("005000000000000UUU", START, "EMEA"),
        contact(0, "Auditor", "001000000000000AAA"),
        contact(60, "Senior Auditor", "001000000000000AAA"),
        contact(120, "Senior Auditor", "001000000000000AAA", deleted=True),
        contact(180, "Senior Auditor", "001000000000000BBB"),  # undeleted, and moved
    ]
    history_file = tmp_path / "contacts.jsonl"
    history_file.write_text("\n".join(json.dumps(v) for v in history) + "\n", encoding="utf-8")
    emulator = Emulator(history_file, tmp_path, env, START + dt.timedelta(minutes=90))
    try:
        for clock in (30, 90, 150, 240):
            emulator.set_clock(START + dt.timedelta(minutes=clock))
            run = in_copy("run", "--env-file", str(emulator.env_file), "--quiet")
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        emulator.stop()
    settings = resolve_settings(
        "local",
        home=tmp_path / "lakehouse",
        objects=load_object_specs(project / "config" / "objects"),
    )
    spec = settings.object("Contact")
    rows = dimension_without_ids(settings, spec)
    assert rows == expected_dimension(spec, table(settings, spec.raw_asset_key))
    assert [(r["title"], r["account_id"], r["is_deleted"]) for r in rows] == [
        ("Auditor", "001000000000000AAA", False),
        ("Senior Auditor", "001000000000000AAA", False),
        ("Senior Auditor", "001000000000000AAA", True),
        ("Senior Auditor", "001000000000000BBB", False),
    ]
    assert [r["is_current"] for r in rows] == [False, False, False, True]
    # The repository itself was not touched.
    assert not (REPO_ROOT / "config" / "objects" / "contact.yml").exists()
