"""`sf-lakehouse run` killed with SIGKILL (the whole process group; during dbt, the CLI process
alone) during extraction, during an Iceberg commit, during dbt and during the checks, then run
again: the tables end as a run that was never killed leaves them. Real processes; each kill
point is reached by watching real progress (a query held by the emulator's stall fault, the
test-only commit barrier, the process tree, the run log).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path

import dagster as dg

from sf_lakehouse.emulator import generate_org
from sf_lakehouse.lakehouse.query import lakehouse_connection
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse.processes import alive, command_line, descendants
from sf_lakehouse_tests.cli_runs import (
    RunProcess,
    assert_tables_equal_a_clean_replay,
    cli_env,
    faulty_emulator,
    home_settings,
    log_has,
    pause_at_commit,
    raw_keys,
    rows,
    subprocess_dbt,
    wait_for,
)

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
DAY_ONE = START + dt.timedelta(hours=20)
DAY_TWO = START + dt.timedelta(days=1, hours=20)
CHECKS_START = 'STEP_START - Started execution of step "sf_account_dimension_checks"'


def runs_by_status(home: Path) -> dict[str, str]:
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    return {run.run_id: run.status.value for run in instance.get_runs()}


def test_runs_killed_at_each_step_then_run_again_leave_the_tables_of_an_unkilled_run(
    tmp_path: Path,
) -> None:
    history = generate_org(users=8, seed=4, start=START, days=2)
    home = tmp_path / "lakehouse"
    settings = home_settings(home)
    user = settings.object("User")
    barrier = tmp_path / "barrier"
    with faulty_emulator(history, tmp_path / "emulator", DAY_ONE) as emulator:
        env = cli_env(home, emulator)

        def run(name: str, **extra: str) -> RunProcess:
            return RunProcess({**env, **extra}, "run", "--quiet", output=tmp_path / name)

        # 1. Killed during extraction: Salesforce holds a query page; nothing was committed.
        emulator.hold_queries()
        extracting = run("extracting")
        wait_for(emulator.holding, 120, "the extraction's query to reach Salesforce")
        extracting.kill_group()
        emulator.release()
        assert all(rows(settings, s.raw_asset_key) is None for s in settings.objects)
        assert list(runs_by_status(home).values()) == ["STARTED"]  # until the next start

        # 2. Killed inside the raw User table's Iceberg commit: data files are written, the
        # catalog does not point at them yet.
        committing = run("committing", **pause_at_commit(barrier, "sf_raw_local.sf_user"))
        wait_for((barrier / "commit.reached").exists, 120, "the raw User commit")
        assert int((barrier / "commit.reached").read_text().split()[0]) == committing.pid
        committing.kill_group()
        (barrier / "commit.reached").unlink()
        assert rows(settings, user.raw_asset_key) is None  # no reader sees the written files
        written = list((home / "warehouse").rglob("sf_user/data/**/*.parquet"))
        assert written, "the killed commit had written its data files"

        # 3. Killed during dbt, while dbt (a child process: dbt.invocation subprocess) commits
        # the User dimension. Only the sf-lakehouse process is killed here (the other kills take
        # the whole group): the orphaned dbt is let go on, and refuses to commit for a run that
        # has ended. (In process, dbt dies with the run: the kill at step 4's checks covers it.)
        building = run(
            "building",
            **pause_at_commit(barrier, "sf_curated_local.dim_sf_user_scd"),
            **subprocess_dbt(tmp_path / "config"),
        )
        wait_for((barrier / "commit.reached").exists, 180, "dbt's User dimension commit")
        dbt_pid = int((barrier / "commit.reached").read_text().split()[0])
        below = descendants(building.pid)
        assert dbt_pid in below and "dbt" in command_line(dbt_pid)
        os.kill(building.pid, signal.SIGKILL)
        building.wait()
        (barrier / "commit.release").touch()
        wait_for(lambda: not any(alive(pid) for pid in below), 120, "the orphaned dbt to end")
        (barrier / "commit.reached").unlink()
        (barrier / "commit.release").unlink()
        assert rows(settings, user.dimension_asset_key) is None  # dbt did not commit
        # The raw tables were committed before dbt: each version once.
        keys = raw_keys(settings, user)
        assert keys and len(keys) == len(set(keys))
        assert rows(settings, user.dimension_asset_key) is None

        # 4. Killed during the dimension checks, a day later in the org.
        emulator.set_clock(DAY_TWO)
        started = time.time()
        checking = run("checking")
        wait_for(
            lambda: log_has(home, CHECKS_START, started),
            240,
            "the dimension checks to start",
            every=0.01,
        )
        checking.kill_group()
        assert not log_has(home, "RUN_SUCCESS", started), "the run finished before the kill"

        # Every killed run but the last is marked failed by the start after it.
        statuses = runs_by_status(home)
        assert sorted(statuses.values()) == ["FAILURE", "FAILURE", "FAILURE", "STARTED"]

        # 5. Run again: it marks the last killed run failed and completes.
        final = run("final")
        assert final.wait() == 0, final.describe()
        assert "was left unfinished by a killed sf-lakehouse process" in final.stderr
        assert set(runs_by_status(home).values()) == {"FAILURE", "SUCCESS"}

    # The tables equal those of runs at the two clocks that were never killed.
    assert_tables_equal_a_clean_replay(settings, history, [DAY_ONE, DAY_TWO])
    # A reader over the catalog (DuckDB, as `sf-lakehouse query`) sees the same rows, and
    # none of the files the killed commit wrote.
    raw_name = settings.table_identifier(user.raw_asset_key)
    [(count,)] = (
        lakehouse_connection(settings).execute(f"select count(*) from {raw_name}").fetchall()
    )
    assert count == len(raw_keys(settings, user))
    table = open_catalog(settings.catalog_properties()).load_table(raw_name)
    referenced = {task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()}
    assert written and not {str(path) for path in written} & referenced
