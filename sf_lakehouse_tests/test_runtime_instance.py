"""`sf-lakehouse instance-config`: every AWS environment's dagster.yaml loads with Dagster's own
instance loader (storage on a real PostgreSQL), and holds what production needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.runtime.deployed import print_instance_config
from sf_lakehouse.runtime.instance import PASSWORD_VAR, Deployed, instance_yaml
from sf_lakehouse_tests.postgres import PostgresServer

AWS_ENVIRONMENTS = ("development", "staging", "prod")
DEPLOYED = Deployed(
    account_id="123456789012",
    subnets=("subnet-0a", "subnet-0b"),
    tasks_security_group="sg-0123456789abcdef0",
    postgres_host="sf-lakehouse-prod.abc.eu-west-1.rds.amazonaws.com",
    postgres_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf",
)


def load_with_dagster(
    text: str, home: Path, server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> DagsterInstance:
    """Dagster's loader on the file, its database pointed at the test server (the only
    change: the rendered host is an RDS name)."""
    document = yaml.safe_load(text)
    database = document["storage"]["postgres"]["postgres_db"]
    database.update(hostname=server.host, port=server.port, username=server.user)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    monkeypatch.setenv(PASSWORD_VAR, server.password)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return DagsterInstance.from_config(str(home))


@pytest.mark.parametrize("environment", AWS_ENVIRONMENTS)
def test_every_environment_file_loads_with_dagster(
    environment,
    tmp_path,
    monkeypatch,
    postgres_server,
) -> None:
    settings = resolve_settings(environment)
    text = instance_yaml(settings, DEPLOYED)
    assert postgres_server.password not in text
    instance = load_with_dagster(text, tmp_path / environment, postgres_server, monkeypatch)
    try:
        assert type(instance.run_launcher).__name__ == "EcsRunLauncher"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.run_monitoring_enabled
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        launcher = instance.run_launcher
        assert launcher.run_task_kwargs["cluster"] == f"sf-lakehouse-{environment}"
        network = launcher.run_task_kwargs["networkConfiguration"]["awsvpcConfiguration"]
        assert network == {
            "subnets": ["subnet-0a", "subnet-0b"],
            "securityGroups": ["sg-0123456789abcdef0"],
            "assignPublicIp": "DISABLED",
        }
        assert launcher.task_role_arn.endswith(f":role/SfLakehousePipeline-{environment}")
        assert launcher.run_resources == {"cpu": "1024", "memory": "4096"}
    finally:
        instance.dispose()
    document = yaml.safe_load(text)
    assert document["telemetry"] == {"enabled": False}
    assert document["compute_logs"]["config"]["bucket"] == f"lumata-lakehouse-{environment}-scripts"
    assert document["storage"]["postgres"]["postgres_db"]["password"] == {"env": PASSWORD_VAR}
    assert document["run_monitoring"]["free_slots_after_run_end_seconds"] == 300


def test_the_command_prints_a_loadable_file_without_aws(
    tmp_path,
    monkeypatch,
    postgres_server,
) -> None:
    """On a fresh clone with no AWS at all: one note on stderr, the file on stdout."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "sf_lakehouse.cli", "instance-config", "--environment", "prod"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "known after deploy" in result.stderr and "Traceback" not in result.stderr
    instance = load_with_dagster(result.stdout, tmp_path / "home", postgres_server, monkeypatch)
    instance.dispose()


def test_local_and_misspelt_environments_are_one_line(capsys) -> None:
    assert print_instance_config("local", offline=True) == 2
    assert "no aws section" in capsys.readouterr().err
    assert print_instance_config("prd", offline=True) == 2
    err = capsys.readouterr().err
    assert "unknown environment 'prd'" in err and "prod" in err


def test_dagster_cloud_yaml_names_the_same_code_location_and_roles() -> None:
    """Dagster+ Hybrid runs the same image and location; the names follow the runtime's."""
    from sf_lakehouse.config import REPO_ROOT
    from sf_lakehouse.config.runtime import RuntimeNames
    from sf_lakehouse.runtime.instance import LOCATION_NAME
    from sf_lakehouse.runtime.services import DEFINITIONS_MODULE

    document = yaml.safe_load((REPO_ROOT / "dagster_cloud.yaml").read_text(encoding="utf-8"))
    [location] = document["locations"]
    assert location["location_name"] == LOCATION_NAME
    assert location["code_source"] == {"module_name": DEFINITIONS_MODULE}
    ecs = location["container_context"]["ecs"]
    names = RuntimeNames("prod")
    assert ecs["task_role_arn"].endswith(f":role/{names.pipeline_role}")
    assert ecs["execution_role_arn"].endswith(f":role/{names.execution_role}")
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"WORKDIR {location['working_directory']}" in dockerfile
    assert f"SF_LAKEHOUSE_PROJECT_DIR={location['working_directory']}" in dockerfile
