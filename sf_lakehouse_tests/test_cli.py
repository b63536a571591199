"""The command line as a user runs it: real processes, the real emulator, the real lakehouse."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse.scd2_rule import comparable, expected_dimension
from sf_lakehouse.config import resolve_settings

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


def test_replay_of_several_hundred_users_over_six_runs_equals_the_rule(
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
    env_file = tmp_path / "emulator.env"
    emulator = subprocess.Popen(
        [
            *CLI,
            "emulator",
            "--history",
            str(history_file),
            "--now",
            START.isoformat(),
            "--env-file",
            str(env_file),
            "--workdir",
            str(tmp_path / "emulator"),
        ],
        env=user_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            assert emulator.poll() is None, emulator.stderr.read()
            assert time.monotonic() < deadline, "emulator did not write its env file"
            time.sleep(0.2)
        settings_env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        control = requests.Session()
        control.trust_env = False
        control.verify = settings_env["SF_CA_BUNDLE"]
        for day in range(6):
            clock = START + dt.timedelta(days=day, hours=10)
            moved = control.put(
                f"{settings_env['SF_LOGIN_URL']}/_emulator/clock",
                json={"now": clock.isoformat()},
                timeout=30,
            )
            assert moved.status_code == 200
            run = cli("run", "--env-file", str(env_file), "--quiet", env=user_env)
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            assert "succeeded (local)" in run.stdout
    finally:
        os.killpg(emulator.pid, signal.SIGTERM)
        emulator.wait(timeout=30)

    settings = resolve_settings("local", home=tmp_path / "lakehouse")
    catalog = open_catalog(settings.catalog_properties())
    raw = catalog.load_table(settings.raw_table_identifier).scan().to_arrow().to_pylist()
    dimension = catalog.load_table(settings.dimension_identifier).scan().to_arrow().to_pylist()
    assert len({r["user_id"] for r in dimension}) >= 250
    assert comparable(dimension) == expected_dimension(raw)
    assert len({r["_run_id"] for r in raw}) == 6  # every run added versions
    # The runs are in the Dagster instance under the lakehouse home, for `dagster dev` to show.
    assert (tmp_path / "lakehouse" / "dagster" / "history").exists()

    # `query` answers over the same tables, in every format.
    sql = f"select count(*) as n from {settings.dimension_identifier} where is_current"
    as_json = cli("query", sql, "--format", "json", env=user_env)
    assert json.loads(as_json.stdout) == [{"n": len({r["user_id"] for r in dimension})}]
    as_csv = cli(
        "query",
        f"select user_id, division from {settings.dimension_identifier} "
        "order by user_id, effective_from limit 3",
        "--format",
        "csv",
        env=user_env,
    )
    assert next(csv.reader(io.StringIO(as_csv.stdout))) == ["user_id", "division"]
    broken = cli("query", "select * from sf_raw_local.no_such_table", env=user_env)
    assert broken.returncode == 1 and "no_such_table" in broken.stderr


def test_demo_prints_the_summaries(tmp_path: Path, user_env: dict[str, str]) -> None:
    demo = cli("demo", "--users", "80", "--home", str(tmp_path / "home"), env=user_env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    for expected in (
        "raw_total_records",
        "latest_extraction",
        "distinct_divisions",
        "scd_total_rows",
        "current_rows",
        "historical_rows",
        "History of user",
        "Run 3:",
    ):
        assert expected in out
    raw_values = out.split("raw_total_records")[1].splitlines()[2].split()
    distinct_users = int(raw_values[1])
    scd_values = out.split("scd_total_rows")[1].splitlines()[2].split()
    total, current, historical, users = map(int, scd_values[:4])
    assert total == current + historical and historical > 0
    assert current == users == distinct_users  # one current row per extracted user


def test_run_without_credentials_says_how_to_fix_it(user_env: dict[str, str]) -> None:
    run = cli("run", "--quiet", env=user_env)
    assert run.returncode == 1
    assert "SF_USERNAME" in run.stderr and "emulator --env-file" in run.stderr


def test_unknown_environment_is_a_clear_error(user_env: dict[str, str]) -> None:
    run = cli("run", env={**user_env, "SF_LAKEHOUSE_ENV": "qa"})
    assert run.returncode == 2
    assert "unknown environment 'qa'" in run.stderr
