"""The rendered EcsRunLauncher against the moto server's ECS, after a deploy: a run becomes a
Fargate task in the environment's cluster, with the run's command, the pipeline role, the
configured subnets and the tasks' security group (moto starts no container: the assertions are
on the task it records). The queue is left out (`dagster job launch` hands the run straight to
the launcher, as the daemon does when it dequeues it); storage is a real PostgreSQL."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import yaml
from dagster import DagsterInstance

from sf_lakehouse.runtime.deployed import print_instance_config
from sf_lakehouse.runtime.instance import PASSWORD_VAR
from sf_lakehouse_tests.moto_server import deploy_command
from sf_lakehouse_tests.postgres import new_database
from sf_lakehouse_tests.test_runtime_deploy import CLUSTER, IMAGE, PIPELINE_ROLE

ENV = "development"


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _fargate_task_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto sums each container's `memory` and fails on a Fargate task definition that sizes
    only the task (as EcsRunLauncher's do, and AWS accepts): count a missing one as 0."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calculate(task_definition: object) -> dict:
        containers = task_definition.container_definitions  # type: ignore[attr-defined]
        sized = [{**c, "memory": 0} if c.get("memory") is None else c for c in containers]
        return original(SimpleNamespace(container_definitions=sized))

    monkeypatch.setattr(
        EC2ContainerServiceBackend, "_calculate_task_resource_requirements", staticmethod(calculate)
    )


def test_a_run_is_launched_as_an_ecs_task(
    aws_endpoint,
    capsys,
    tmp_path,
    monkeypatch,
    postgres_server,
) -> None:
    assert deploy_command("deploy", "--environment", ENV, "--yes", "--image-uri", IMAGE) == 0
    capsys.readouterr()
    printed = io.StringIO()
    assert print_instance_config(ENV, out=printed, err=io.StringIO()) == 0
    document = yaml.safe_load(printed.getvalue())
    database = new_database(postgres_server, "sf_ecs_launcher")
    document["storage"]["postgres"]["postgres_db"].update(
        hostname=database.host, port=database.port, db_name=database.database
    )
    # Launch at once (what the daemon does when it dequeues the run), without a daemon.
    document["run_coordinator"]["class"] = "DefaultRunCoordinator"
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_"))}
    env |= {
        "DAGSTER_HOME": str(home),
        PASSWORD_VAR: database.password,
        "DAGSTER_CURRENT_IMAGE": IMAGE,  # what the code server of the image reports
        "SF_LAKEHOUSE_HOME": str(tmp_path / "lakehouse"),
    }
    launched = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "job",
            "launch",
            "-m",
            "sf_lakehouse.definitions",
            "-j",
            "sf_user_pipeline",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]

    ecs = boto3.client("ecs")
    tasks = ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    assert len(tasks) == 1, (tasks, launched.stdout[-3000:], launched.stderr[-3000:])
    [task_arn] = tasks
    [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"]
    [override] = task["overrides"]["containerOverrides"]
    assert override["name"] == "run"
    assert override["command"][:3] == ["dagster", "api", "execute_run"]
    arguments = json.loads(override["command"][3])
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
        "taskDefinition"
    ]
    assert definition["family"].startswith("sflr-development_")
    assert definition["taskRoleArn"].endswith(f":role/{PIPELINE_ROLE}")
    [container] = definition["containerDefinitions"]
    assert container["image"] == IMAGE
    assert {"name": "SF_LAKEHOUSE_ENV", "value": ENV} in container["environment"]
    assert [s["name"] for s in container["secrets"]] == [PASSWORD_VAR]
    assert (definition["cpu"], definition["memory"]) == ("1024", "4096")

    monkeypatch.setenv(PASSWORD_VAR, database.password)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.from_config(str(home))
    try:
        [run] = instance.get_runs()
        assert run.run_id in json.dumps(arguments)
        assert run.tags["ecs/task_arn"] == task_arn
        assert run.job_name == "sf_user_pipeline"
    finally:
        instance.dispose()
