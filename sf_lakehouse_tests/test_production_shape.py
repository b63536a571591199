"""The production shape on one machine: Debian's PostgreSQL, and the three long-running
processes as production runs them (sf_lakehouse/runtime/services.py), each from the rendered
dagster.yaml with Dagster's default run launcher in place of ECS (the one difference); compute
logs go to S3 on a moto server.

Against the emulator: the change sensor, turned on through GraphQL, starts the object's run,
which succeeds with its check results in Postgres and in the webserver; the schedule fires on
its own; a run whose worker is killed with SIGKILL (the daemon with it) is marked failed, its
pool slot freed, and retried once (an infrastructure failure) by the restarted daemon, which runs
nothing twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from sf_lakehouse.config import REPO_ROOT, resolve_settings
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.lakehouse.tables import TEST_BARRIER_VAR, TEST_PAUSE_VAR
from sf_lakehouse.processes import descendants
from sf_lakehouse.runtime.instance import (
    PASSWORD_VAR,
    Deployed,
    instance_yaml,
    render,
    workspace_config,
)
from sf_lakehouse.runtime.services import code_server_command, daemon_command, webserver_command
from sf_lakehouse_tests.dagster_dev import DEFAULT_SIGINT, LOCATION_QUERY, DagsterDev, free_port
from sf_lakehouse_tests.postgres import new_database

LOCATION = "sf_lakehouse"
REPOSITORY = "__repository__"
DEFAULT_LAUNCHER = {"module": "dagster", "class": "DefaultRunLauncher"}
START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in logs.glob("*.log")
            )
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(1)


class Processes:
    """The long-running processes, each in its own process group (killed by the fixture)."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory, self.env = directory, env
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        bin_dir = Path(sys.executable).parent
        log = (self.directory / f"{name}.log").open("a", encoding="utf-8")
        process = subprocess.Popen(
            # SIGTERM stops them even when pytest runs with SIGINT ignored (dagster_dev.py).
            [*DEFAULT_SIGINT, str(bin_dir / command[0]), *command[1:]],
            cwd=self.directory,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.started.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.started):
            self.kill(name, signal.SIGTERM)


@pytest.fixture
def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its accounts in process-wide state: start from an empty AWS (another test in
    # this worker may have created the same bucket).
    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
    try:
        yield endpoint
    finally:
        server.stop()


def test_three_processes_on_postgres(
    tmp_path,
    monkeypatch,
    emulator_factory,
    postgres_server,
    moto_s3,
) -> None:
    started = time.monotonic()
    database = new_database(postgres_server, "sf_three_process")
    # The shipped objects, a schedule every minute, quick monitoring, the test database.
    config_dir = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config" / "objects", config_dir / "objects")
    config = yaml.safe_load((REPO_ROOT / "config" / "pipeline-config.yml").read_text())
    config["defaults"]["sensors"]["salesforce_change_interval_seconds"] = 5
    config["environments"]["local"]["schedules"]["pipeline"]["cron"] = "* * * * *"
    runtime = config["defaults"]["runtime"]
    runtime["postgres"] = {
        "create": False,
        "host": database.host,
        "port": database.port,
        "database": database.database,
        "user": database.user,
        "secret_id": "unused-locally",
    }
    runtime["run_monitoring"] = {
        "poll_interval_seconds": 5,
        "start_timeout_seconds": 180,
        "cancel_timeout_seconds": 60,
        "free_slots_after_run_end_seconds": 5,
    }
    (config_dir / "pipeline-config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("SF_LAKEHOUSE_CONFIG", str(config_dir / "pipeline-config.yml"))
    # The rendered instance of an AWS environment; only the run launcher differs.
    settings = resolve_settings("development")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        instance_yaml(settings, Deployed(), run_launcher=DEFAULT_LAUNCHER), encoding="utf-8"
    )
    grpc_port, web_port = free_port(), free_port()
    workspace = home / "workspace.yaml"
    workspace.write_text(render(workspace_config("127.0.0.1", grpc_port), "test"), "utf-8")

    import boto3

    boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="eu-west-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    ).create_bucket(
        Bucket=settings.require_aws().bucket("scripts"),
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
    )
    history = generate_org(users=10, seed=3, start=START, days=2, accounts=0, opportunities=0)
    emulator = emulator_factory(history, now=START + dt.timedelta(hours=12))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    (barrier / "commit.release").touch()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_", "AWS_"))}
    env = {
        **base,
        **emulator.env_vars(),
        "SF_LAKEHOUSE_ENV": "local",
        "SF_LAKEHOUSE_CONFIG": str(config_dir / "pipeline-config.yml"),
        "SF_LAKEHOUSE_HOME": str(tmp_path / "lakehouse"),
        "DAGSTER_HOME": str(home),
        PASSWORD_VAR: database.password,
        "AWS_ENDPOINT_URL": moto_s3,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # Writers of sf_user stop before their commit while commit.release is missing.
        TEST_PAUSE_VAR: "commit:sf_raw_local.sf_user",
        TEST_BARRIER_VAR: str(barrier),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Processes(logs, env)
    for key in (PASSWORD_VAR, "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    instance = DagsterInstance.from_config(str(home))
    try:
        processes.start("code-server", code_server_command("127.0.0.1", grpc_port))
        # The daemon and the webserver connect to a code server that serves its definitions
        # (on ECS, the webserver's location shows the error until the code server is up).
        wait_for(lambda: _serving(grpc_port), 240, "the code server's gRPC port", logs)
        processes.start("daemon", daemon_command(str(workspace)))
        processes.start("webserver", webserver_command(str(workspace), "127.0.0.1", web_port))
        web = DagsterDev(url=f"http://127.0.0.1:{web_port}", log_path=logs / "webserver.log")
        wait_for(lambda: _location_loaded(web), 240, "the code location to load", logs)

        # The org changes; the sensor (turned on through GraphQL) starts the object's run.
        emulator.set_clock(START + dt.timedelta(days=1))
        _set_automation(
            web, "startSensor", "sensorSelector", "sensorName", "salesforce_change_sensor"
        )
        sensor_run = wait_for(
            lambda: _finished(instance, {"dagster/sensor_name": "salesforce_change_sensor"}),
            300,
            "the change sensor's run to finish",
            logs,
        )
        assert sensor_run.status == DagsterRunStatus.SUCCESS, sensor_run.run_id
        assert sensor_run.job_name == "sf_user_pipeline"
        checks = _check_results(web, sensor_run.run_id)
        assert checks.get("raw_versions_are_unique") is True, checks
        assert checks.get("dimension_matches_the_scd2_rule") is True, checks
        stored = instance.get_records_for_run(
            sensor_run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        assert stored  # the check results are in Postgres
        _set_automation(web, "stopSensor", None, None, "salesforce_change_sensor")
        print(f"sensor run done at {time.monotonic() - started:.0f} s")

        # The schedule (every minute in this config) fires on its own; its run's worker is
        # killed with SIGKILL while its step holds the sf_user pool slot (before its commit).
        (barrier / "commit.release").unlink()
        (barrier / "commit.reached").unlink(missing_ok=True)
        emulator.set_clock(START + dt.timedelta(days=3))  # more changes for the scheduled run
        _set_automation(
            web, "startSchedule", "scheduleSelector", "scheduleName", "salesforce_pipeline_schedule"
        )
        schedule = {"dagster/schedule_name": "salesforce_pipeline_schedule"}
        scheduled = wait_for(
            lambda: _any_run(instance, schedule),
            150,
            "the schedule to fire",
            logs,
        )
        victim_id = scheduled.run_id
        reached = wait_for(
            lambda: (
                (barrier / "commit.reached").exists() and (barrier / "commit.reached").read_text()
            ),
            300,
            "the scheduled run to reach its commit",
            logs,
        )
        assert _slots_of(instance, "sf_user", victim_id)
        step_pid = int(reached.split()[0])
        worker_pid = _run_worker(step_pid, processes.started["code-server"].pid)
        for pid in {worker_pid, step_pid, *descendants(worker_pid)}:
            _kill(pid)
        # The daemon dies too (killed outright) and restarts: the restarted daemon must still
        # mark the run failed, free its slot and retry it once, and run no schedule tick,
        # sensor run key or retry twice.
        processes.kill("daemon")
        restarted = dt.datetime.now(dt.UTC)
        processes.start("daemon", daemon_command(str(workspace)))
        (barrier / "commit.release").touch()  # the retry may commit
        victim = wait_for(
            lambda: _run_if(instance, victim_id, DagsterRunStatus.FAILURE),
            180,
            "the killed run to be marked failed",
            logs,
        )
        assert victim.status == DagsterRunStatus.FAILURE
        wait_for(
            lambda: not _slots_of(instance, "sf_user", victim_id),
            120,
            "the killed run's pool slot to be freed",
            logs,
        )
        retry = wait_for(
            lambda: _finished(instance, {"dagster/parent_run_id": victim_id}),
            300,
            "the retry of the killed run (an infrastructure failure)",
            logs,
        )
        assert retry.status == DagsterRunStatus.SUCCESS
        print(f"killed run retried at {time.monotonic() - started:.0f} s")
        # At least one tick of the restarted daemon (the next minute's) before the count.
        wait_for(
            lambda: _tick_after(instance, schedule, restarted),
            90,
            "a schedule tick of the restarted daemon",
            logs,
        )
        _set_automation(web, "stopRunningSchedule", None, None, "salesforce_pipeline_schedule")
        runs = instance.get_runs()
        # (a retry carries its parent's tags: it is counted on its own below)
        originals = [r for r in runs if "dagster/parent_run_id" not in r.tags]
        keys = Counter(r.tags["dagster/run_key"] for r in originals if "dagster/run_key" in r.tags)
        assert keys and all(n == 1 for n in keys.values()), keys
        ticks = Counter(
            record.create_timestamp.strftime("%H:%M")
            for record in instance.get_run_records(filters=RunsFilter(tags=schedule))
            if "dagster/parent_run_id" not in record.dagster_run.tags
        )
        assert len(ticks) >= 2 and all(n == 1 for n in ticks.values()), ticks  # one per minute
        retries = [r for r in runs if r.tags.get("dagster/parent_run_id") == victim_id]
        assert len(retries) == 1, retries
        print(f"three-process test: {time.monotonic() - started:.0f} s")
    finally:
        (barrier / "commit.release").touch()
        processes.stop_all()
        instance.dispose()


# --- helpers --------------------------------------------------------------------------------


def _serving(port: int) -> bool:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "api", "grpc-health-check", "-p", str(port)],
        capture_output=True,
        timeout=60,
    )
    return result.returncode == 0


def _location_loaded(web: DagsterDev) -> bool:
    try:
        entries = web.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
    except (requests.RequestException, AssertionError, KeyError):
        return False
    if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
        return False
    for entry in entries:
        assert entry["locationOrLoadError"]["__typename"] != "PythonError", entry
    return True


def _set_automation(
    web: DagsterDev, mutation: str, selector_arg: str | None, field: str | None, name: str
) -> None:
    if selector_arg is None:  # stop mutations take the instigator's origin id
        kind = "sensor" if "Sensor" in mutation else "schedule"
        query = f"""{{ {kind}OrError({kind}Selector: {{repositoryLocationName: "{LOCATION}",
            repositoryName: "{REPOSITORY}", {kind}Name: "{name}"}}) {{
            ... on {kind.capitalize()} {{ {kind}State {{ id selectorId }} }} }} }}"""
        state = web.graphql(query)[f"{kind}OrError"][f"{kind}State"]
        if kind == "sensor":
            arguments = f'jobOriginId: "{state["id"]}", jobSelectorId: "{state["selectorId"]}"'
            body = f"mutation {{ stopSensor({arguments}) {{ __typename }} }}"
        else:
            arguments = (
                f'scheduleOriginId: "{state["id"]}", scheduleSelectorId: "{state["selectorId"]}"'
            )
            body = f"mutation {{ stopRunningSchedule({arguments}) {{ __typename }} }}"
        result = web.graphql(body)[mutation]
        assert result["__typename"] in ("StopSensorMutationResult", "ScheduleStateResult"), result
        return
    body = f"""mutation {{ {mutation}({selector_arg}: {{repositoryLocationName: "{LOCATION}",
        repositoryName: "{REPOSITORY}", {field}: "{name}"}}) {{ __typename
        ... on PythonError {{ message }} }} }}"""
    result = web.graphql(body)[mutation]
    assert result["__typename"] != "PythonError", result


def _finished(instance: DagsterInstance, tags: dict[str, str]) -> Any:
    runs = instance.get_runs(filters=RunsFilter(tags=tags))
    done = [r for r in runs if r.is_finished]
    return done[0] if done else None


def _slots_of(instance: DagsterInstance, pool: str, run_id: str) -> list[Any]:
    """The pool's slots a run holds (other runs, e.g. the next scheduled one, may hold more)."""
    claimed = instance.event_log_storage.get_concurrency_info(pool).claimed_slots
    return [slot for slot in claimed if slot.run_id == run_id]


def _any_run(instance: DagsterInstance, tags: dict[str, str]) -> Any:
    runs = instance.get_runs(filters=RunsFilter(tags=tags))
    return runs[0] if runs else None


def _tick_after(instance: DagsterInstance, tags: dict[str, str], moment: dt.datetime) -> bool:
    records = instance.get_run_records(filters=RunsFilter(tags=tags))
    return any(
        r.create_timestamp > moment and "dagster/parent_run_id" not in r.dagster_run.tags
        for r in records
    )


def _run_if(instance: DagsterInstance, run_id: str, status: DagsterRunStatus) -> Any:
    run = instance.get_run_by_id(run_id)
    return run if run is not None and run.status == status else None


def _check_results(web: DagsterDev, run_id: str) -> dict[str, bool]:
    """The run's check evaluations as the webserver shows them (read from Postgres)."""
    query = f"""{{ logsForRun(runId: "{run_id}", limit: 5000) {{ ... on EventConnection {{
        events {{ __typename ... on AssetCheckEvaluationEvent {{
            evaluation {{ checkName success }} }} }} }} }} }}"""
    events = web.graphql(query)["logsForRun"]["events"]
    return {
        e["evaluation"]["checkName"]: e["evaluation"]["success"]
        for e in events
        if e["__typename"] == "AssetCheckEvaluationEvent"
    }


def _run_worker(pid: int, code_server: int) -> int:
    """The run worker: the step's ancestor started by the gRPC server process that
    `dagster code-server start` (a proxy) runs its definitions in."""
    while (grandparent := _parent(_parent(pid))) != code_server:
        assert grandparent > 1, "the step is not below the code server"
        pid = _parent(pid)
    return pid


def _parent(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
