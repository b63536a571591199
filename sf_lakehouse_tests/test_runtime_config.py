"""The runtime section's validation and the runtime roles' policy builders (pure; no AWS)."""

from __future__ import annotations

import copy

import pytest

from sf_lakehouse.aws import runtime_iam
from sf_lakehouse.aws.iam import WILDCARD_RESOURCE_ACTIONS, pipeline_identity_statements
from sf_lakehouse.config import ConfigError, load_config, resolve_settings
from sf_lakehouse.config.runtime import RuntimeNames
from sf_lakehouse.runtime.services import container_command

ACCOUNT = "123456789012"


def settings_with(**runtime: object):
    config = copy.deepcopy(load_config())
    config["defaults"]["runtime"].update(runtime)
    return resolve_settings("prod", config=config)


def test_the_pipeline_role_is_the_pipeline_identity_plus_the_run_launcher() -> None:
    """One source of the README's pipeline permissions: the role adds only launcher statements."""
    settings = resolve_settings("prod")
    names = RuntimeNames("prod")
    statements = runtime_iam.pipeline_role_policy(settings, names, ACCOUNT)["Statement"]
    identity = pipeline_identity_statements(settings, ACCOUNT)
    assert statements[: len(identity)] == identity
    launcher = {s["Sid"]: s for s in statements[len(identity) :]}
    # PassRole on `*` would let anyone who can launch a run hand any role to a task.
    assert launcher["PassRuntimeRoles"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/SfLakehouseTaskExecution-prod",
        f"arn:aws:iam::{ACCOUNT}:role/SfLakehousePipeline-prod",
    ]
    assert launcher["PassRuntimeRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    # RunTask only of run task definitions, only in this environment's cluster.
    assert launcher["RunTasks"]["Resource"] == [
        f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/sflr-prod_*"
    ]
    assert launcher["RunTasks"]["Condition"] == {
        "ArnEquals": {"ecs:cluster": f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/sf-lakehouse-prod"}
    }
    wildcard = {a for s in statements if s["Resource"] == ["*"] for a in s["Action"]}
    # (the monitoring statements' CloudWatch actions have no resource-level permission either)
    assert wildcard <= runtime_iam.RUNTIME_WILDCARD_RESOURCE_ACTIONS | WILDCARD_RESOURCE_ACTIONS


def test_the_execution_role_reads_exactly_the_two_secrets() -> None:
    settings = resolve_settings("prod")
    runtime, names = settings.require_runtime()
    policy = runtime_iam.execution_role_policy(settings, runtime, names, ACCOUNT)
    [secrets] = [s for s in policy["Statement"] if s["Sid"] == "InjectedSecrets"]
    assert secrets["Resource"] == [
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:sf-lakehouse/prod/postgres-??????",
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:salesforce/prod/credentials-??????",
    ]


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ({"run": {"cpu": 256, "memory": 4096}}, "does not fit cpu 256 on Fargate"),
        ({"webserver": {"allowed_cidr": "0.0.0.0/0"}}, "whole internet"),
        (
            {"webserver": {"allowed_cidr": "10.0.0.0/8", "load_balancer_security_group": "sg-1"}},
            "exactly one",
        ),
        ({"postgres": {"create": False}}, "host and secret_id"),
        ({"subnets": ["vpc-123"]}, "not a subnet id"),
        ({"log_retention_days": 10}, "CloudWatch Logs keeps logs"),
        ({"image": "sf-lakehouse"}, "runtime.image"),
    ],
)
def test_bad_runtime_settings_are_one_line(runtime: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_with(**runtime)
    text = str(raised.value)
    assert "\n" not in text
    assert message in text or message in text.replace("'", ""), text


def test_a_long_environment_name_is_refused_for_the_runtime() -> None:
    config = copy.deepcopy(load_config())
    config["environments"]["production-eu"] = copy.deepcopy(config["environments"]["prod"])
    settings = resolve_settings("production-eu", config=config)
    with pytest.raises(ConfigError, match="longer than 11 characters"):
        settings.require_runtime()


def test_the_daemon_writes_its_files_then_execs() -> None:
    """The daemon replaces the shell (exec): ECS's SIGTERM reaches dagster-daemon itself."""
    [shell, flag, script] = container_command("daemon")
    assert (shell, flag) == ("sh", "-c")
    assert script.endswith('exec dagster-daemon run -w "$DAGSTER_HOME/workspace.yaml"')
    assert '"$SF_LAKEHOUSE_DAGSTER_YAML" > "$DAGSTER_HOME/dagster.yaml"' in script
