"""Two runs of one object at once never both write: Dagster pools (one slot each) in the
definitions and the instance, a lock per lakehouse home for `sf-lakehouse` itself, and a
documented repair for raw tables that already hold duplicates."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from sf_lakehouse.config import Settings
from sf_lakehouse.definitions import build_definitions
from sf_lakehouse.defs.checks import raw_checks
from sf_lakehouse.defs.jobs import MAINTENANCE_JOB_NAME, PIPELINE_JOB_NAME
from sf_lakehouse.defs.pools import DBT_POOL, raw_pool
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.defs.sensors import CHANGE_SENSOR_NAME
from sf_lakehouse.lakehouse.tables import append_rows, open_catalog
from sf_lakehouse.pipeline import INSTANCE_YAML, dagster_instance
from sf_lakehouse.processes import alive, descendants
from sf_lakehouse.run_lock import BUSY_EXIT_CODE, LakehouseBusyError, LakehouseLock
from sf_lakehouse_tests.cli_runs import (
    DBT_STARTED,
    RunProcess,
    cli_env,
    dbt_processes,
    dimension,
    faulty_emulator,
    home_settings,
    log_has,
    raw_keys,
    subprocess_dbt,
    wait_for,
)
from sf_lakehouse_tests.histories import user

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
USERS = [
    user(f"005000000000000A{n:02d}", minutes, division)
    for n, (minutes, division) in enumerate(
        [(0, "EMEA"), (5, "APAC"), (10, "EMEA"), (20, None), (30, "LATAM"), (40, "EMEA")]
    )
] + [user("005000000000000A00", 50, "APAC"), user("005000000000000A01", 55, "EMEA")]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dg.Definitions]:
    """One lakehouse's definitions, for the tests that only read them (building them costs
    seconds)."""
    settings = home_settings(tmp_path_factory.mktemp("definitions") / "lakehouse")
    return settings, build_definitions(settings)


def test_every_writer_of_a_table_shares_one_pool(built) -> None:
    settings, definitions = built
    pools = {}
    for job_def in definitions.resolve_all_job_defs():
        for node in job_def.graph.node_defs:
            pools[node.name] = node.pool
    for spec in settings.objects:
        assert pools["__".join(spec.raw_asset_key)] == raw_pool(spec) == f"sf_{spec.name}"
        assert pools[f"maintain_{spec.name}_raw_table"] == raw_pool(spec)
    assert pools["sf_lakehouse_dbt"] == pools["maintain_dimensions"] == DBT_POOL
    maintenance = definitions.resolve_job_def(MAINTENANCE_JOB_NAME)
    assert {n.name for n in maintenance.graph.node_defs} == {
        *(f"maintain_{s.name}_raw_table" for s in settings.objects),
        "maintain_dimensions",
    }
    # The instance `sf-lakehouse` uses gives every pool one slot.
    instance = dagster_instance(settings)
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_a_raw_step_waits_while_another_run_holds_its_pool(
    settings: Settings, emulator_factory, monkeypatch
) -> None:
    emulator = emulator_factory(USERS, now=START + dt.timedelta(hours=1))
    for key, value in emulator.env_vars().items():
        monkeypatch.setenv(key, value)
    instance = dagster_instance(settings)
    spec = settings.object("User")
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(raw_pool(spec))
    # Another run (a schedule's, a click in the UI) is extracting Users.
    assert storage.claim_concurrency_slot(raw_pool(spec), "other-run", "sf_raw__sf_user").is_claimed
    outcome: dict = {}

    def materialize() -> None:
        outcome["result"] = dg.materialize(
            [build_raw_asset(settings, spec)],
            resources=build_resources(settings),
            instance=instance,
            raise_on_error=False,
        )

    worker = threading.Thread(target=materialize)
    worker.start()
    wait_for(
        lambda: storage.get_concurrency_info(raw_pool(spec)).pending_step_count == 1,
        60,
        "the step to queue for the pool",
        every=0.1,
    )
    time.sleep(1)
    assert worker.is_alive() and "result" not in outcome
    identifier = settings.table_identifier(spec.raw_asset_key)
    assert not open_catalog(settings.catalog_properties()).table_exists(identifier)
    storage.free_concurrency_slots_for_run("other-run")  # the other run ended
    worker.join(timeout=120)
    assert outcome["result"].success
    assert len(raw_keys(settings, spec)) == 6


def _duplicate_some_versions(settings: Settings, count: int) -> None:
    """What versions before the per-commit check could leave: versions stored twice."""
    spec = settings.object("User")
    table = open_catalog(settings.catalog_properties()).load_table(
        settings.table_identifier(spec.raw_asset_key)
    )
    rows = table.scan().to_arrow().slice(0, count)
    later = pa.array(
        [t + dt.timedelta(hours=1) for t in rows.column("_extracted_at").to_pylist()],
        pa.timestamp("us"),
    )
    rows = rows.set_column(rows.schema.get_field_index("_extracted_at"), "_extracted_at", later)
    assert append_rows(table, rows, unique_key=()) == count


def test_two_runs_at_once_then_duplicates_from_an_older_version_repaired(
    tmp_path: Path,
) -> None:
    home = tmp_path / "lakehouse"
    settings = home_settings(home)
    spec = settings.object("User")
    with faulty_emulator(USERS, tmp_path / "emulator", START + dt.timedelta(hours=1)) as emu:
        env = cli_env(home, emu)

        def start(name: str, *args: str) -> RunProcess:
            return RunProcess(env, *args, output=tmp_path / name)

        # Salesforce is slow to answer: the first run holds the lakehouse a while.
        emu.hold_queries()
        first = start("first", "run", "--object", "User", "--quiet")
        lock_file = home / "sf-lakehouse.lock"
        wait_for(
            lambda: lock_file.exists() and f'"pid": {first.pid}' in lock_file.read_text(),
            60,
            "the first run to hold the lock",
        )
        impatient = start("impatient", "run", "--object", "User", "--quiet", "--wait", "0")
        second = start("second", "run", "--object", "User", "--quiet", "--wait", "120")
        assert impatient.wait() == BUSY_EXIT_CODE
        [line] = impatient.stderr.strip().splitlines()
        assert f"pid {first.pid}" in line and "sf-lakehouse run" in line and "--wait" in line
        wait_for(lambda: "waiting up to 120 s" in second.stderr, 60, "the second run to wait")
        assert f"pid {first.pid}" in second.stderr
        emu.release()
        assert first.wait() == 0, first.describe()
        assert second.wait() == 0, second.describe()
        assert re.search(r"User \d+ read, 0 new", second.stdout)  # it ran after the first
        keys = raw_keys(settings, spec)
        assert len(keys) == len(set(keys)) == 6

        # A raw table written by an older version holds duplicates: the blocking check stops
        # the run before dbt, and its message names the repair.
        _duplicate_some_versions(settings, 2)
        before = dimension(settings, spec)
        blocked = start("blocked", "run", "--object", "User", "--quiet")
        assert blocked.wait() == 1, blocked.describe()
        assert "check raw_versions_are_unique on sf_raw/sf_user failed" in blocked.stderr
        assert "sf-lakehouse repair --object User" in blocked.stderr
        assert "Traceback" not in blocked.stderr and len(blocked.stderr.splitlines()) <= 6

        dry = start("dry", "repair", "--object", "User", "--dry-run")
        assert dry.wait() == 0, dry.describe()
        assert "would remove 2 extra rows of 2 duplicated versions (8 -> 6 rows)" in dry.stdout
        repaired = start("repair", "repair")
        assert repaired.wait() == 0, repaired.describe()
        assert "sf_raw_local.sf_user: removed 2 extra rows" in repaired.stdout
        assert "sf_raw_local.sf_account: every version is stored once" in repaired.stdout

    keys = raw_keys(settings, spec)
    assert len(keys) == len(set(keys)) == 6
    table = open_catalog(settings.catalog_properties()).load_table(
        settings.table_identifier(spec.raw_asset_key)
    )
    # One commit; the repaired versions keep their latest extraction.
    assert table.current_snapshot().summary["sf-lakehouse-operation"] == "repair-duplicates"
    extracted = [r["_extracted_at"] for r in table.scan().to_arrow().to_pylist()]
    assert len(set(extracted)) == 2
    # Nothing blocks the next run: every raw check passes on the repaired table.
    for name, (_, evaluate) in raw_checks(spec).items():
        assert evaluate(table, None).passed, name  # over the whole table
    assert dimension(settings, spec) == before


@pytest.mark.parametrize("invocation", ["subprocess", "in_process"])
def test_a_run_stopped_by_sigterm_leaves_no_child_and_is_marked_failed(
    tmp_path: Path, invocation: str
) -> None:
    """SIGTERM to the sf-lakehouse process alone, while dbt runs: dbt ends with it, as a child
    process (`dbt.invocation: subprocess`) or inside the run's own process."""
    home = tmp_path / "lakehouse"
    with faulty_emulator(USERS, tmp_path / "emulator", START + dt.timedelta(hours=1)) as emu:
        extra = subprocess_dbt(tmp_path / "config") if invocation == "subprocess" else {}
        started = time.time()
        run = RunProcess(
            cli_env(home, emu, **extra),
            "run",
            "--object",
            "User",
            "--quiet",
            output=tmp_path / "run",
        )
        if invocation == "subprocess":
            dbt = wait_for(lambda: dbt_processes(run.pid), 180, "dbt to start", every=0.05)
        else:
            wait_for(lambda: log_has(home, DBT_STARTED, started), 180, "dbt", every=0.05)
            dbt = []
        below = descendants(run.pid)
        run.signal(signal.SIGTERM)
        assert run.wait(timeout=120) == 128 + signal.SIGTERM, run.describe()
        assert all(pid in below for pid in dbt)
        assert not [pid for pid in dbt if alive(pid)], "dbt outlived the run"
        # Python's multiprocessing resource tracker ends by itself once its parent is gone,
        # which can take a moment on a loaded machine; nothing else may be left.
        wait_for(lambda: not [pid for pid in below if alive(pid)], 15, "the run's children to end")
    [headline, *details] = run.stderr.strip().splitlines()[1:]
    assert "stopped by SIGTERM" in headline and "marked failed" in headline
    assert details[-1].startswith("  full log: ")
    assert "Traceback" not in run.stderr
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    [record] = instance.get_runs()
    assert record.status == dg.DagsterRunStatus.FAILURE
    assert json.loads((home / "sf-lakehouse.lock").read_text() or "{}") == {}


def test_the_schedule_and_the_change_sensor_skip_while_their_job_runs(built) -> None:
    settings, definitions = built
    instance = dagster_instance(settings)
    schedule = definitions.resolve_schedule_def(f"{PIPELINE_JOB_NAME}_schedule")
    with dg.build_schedule_context(instance=instance) as context:
        assert schedule.evaluate_tick(context).run_requests
    pipeline = definitions.resolve_job_def(PIPELINE_JOB_NAME)
    running = instance.create_run_for_job(pipeline, run_config={})  # queued, not finished
    with dg.build_schedule_context(instance=instance) as context:
        tick = schedule.evaluate_tick(context)
    assert not tick.run_requests
    assert f"run {running.run_id} of {PIPELINE_JOB_NAME} is still in progress" in (
        tick.skip_message or ""
    )
    # The change sensor asks Salesforce nothing for objects whose job is running.
    sensor = definitions.resolve_sensor_def(CHANGE_SENSOR_NAME)
    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=dict(definitions.resources)
    ) as context:
        result = sensor.evaluate_tick(context)
    assert not result.run_requests
    for spec in settings.objects:
        assert f"{spec.api_name}: run {running.run_id} of {PIPELINE_JOB_NAME} in progress" in (
            result.skip_message or ""
        )


def test_the_lock_names_its_holder_and_knows_when_one_was_killed(tmp_path: Path) -> None:
    home = tmp_path / "lakehouse"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from sf_lakehouse.run_lock import LakehouseLock; "
            "lock = LakehouseLock(sys.argv[1], 'run').acquire(); print('held', flush=True); "
            "time.sleep(120)",
            str(home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LakehouseBusyError) as busy:
        LakehouseLock(home, "repair").acquire(wait_seconds=0.5)
    assert f"pid {holder.pid} (`sf-lakehouse run` since" in str(busy.value)
    assert "waited 0 s" in str(busy.value) or "waited 1 s" in str(busy.value)
    holder.kill()  # SIGKILL: the kernel releases the lock, the file still names the holder
    holder.wait()
    lock = LakehouseLock(home, "repair").acquire(wait_seconds=5)
    assert lock.previous is not None and lock.previous.pid == holder.pid
    lock.note_run("run-1")
    assert json.loads((home / "sf-lakehouse.lock").read_text())["run_id"] == "run-1"
    lock.release()
    assert (home / "sf-lakehouse.lock").read_text() == ""  # ended normally
    again = LakehouseLock(home, "run").acquire()
    assert again.previous is None
    again.release()


def test_the_cli_instance_gets_pool_limits_unless_its_config_was_edited(tmp_path: Path) -> None:
    settings = home_settings(tmp_path / "lakehouse")
    config = settings.dagster_home / "dagster.yaml"
    config.parent.mkdir(parents=True)
    # A home made by an earlier version: its instance config had no pools.
    config.write_text(
        "telemetry:\n  enabled: false\nnux:\n  enabled: false\nfreshness:\n  enabled: true\n"
    )
    assert dagster_instance(settings).get_concurrency_config().pool_config.default_pool_limit == 1
    assert config.read_text() == INSTANCE_YAML
    edited = "telemetry:\n  enabled: false\n"  # someone's own configuration stays
    config.write_text(edited)
    dagster_instance(settings)
    assert config.read_text() == edited
