"""The `dagster.yaml` of a deployed environment, and the workspace its webserver and daemon load.

Built as data from the environment's `runtime:` section and what only the deployed environment
knows (`Deployed`: the account, the tasks' security group, the database's host and secret).
The Postgres password is never in the file: Dagster reads it from `DAGSTER_POSTGRES_PASSWORD`,
which ECS fills from Secrets Manager in every task (services and runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from sf_lakehouse.config import Settings
from sf_lakehouse.config.runtime import CODE_SERVER_PORT, RuntimeNames, RuntimeSection
from sf_lakehouse.defs.pools import POOL_LIMIT

PASSWORD_VAR = "DAGSTER_POSTGRES_PASSWORD"
# The JSON key of the Postgres secret that holds the password.
PASSWORD_KEY = "password"
LOCATION_NAME = "sf_lakehouse"
RUN_CONTAINER = "run"
COMPUTE_LOGS_PREFIX = "logs/"
UNKNOWN = "<known after deploy>"


@dataclass(frozen=True)
class Deployed:
    """What the configuration cannot say: read from AWS after deploy (sf_lakehouse/runtime/
    deployed.py). `None` means not deployed yet (shown as `<known after deploy>`)."""

    account_id: str | None = None
    subnets: tuple[str, ...] = ()
    tasks_security_group: str | None = None
    postgres_host: str | None = None
    postgres_secret_arn: str | None = None
    missing: tuple[str, ...] = field(default=())


def role_arn(account_id: str | None, name: str) -> str:
    return f"arn:aws:iam::{account_id or UNKNOWN}:role/{name}"


def postgres_storage(runtime: RuntimeSection, host: str) -> dict[str, Any]:
    postgres = runtime.postgres
    return {
        "postgres": {
            "postgres_db": {
                "hostname": host,
                "port": postgres.port,
                "db_name": postgres.database,
                "username": postgres.user,
                "password": {"env": PASSWORD_VAR},
                # SQLAlchemy 2.1 would pick psycopg 3; dagster-postgres installs psycopg2.
                "scheme": "postgresql+psycopg2",
            }
        }
    }


def ecs_run_launcher(
    settings: Settings, runtime: RuntimeSection, names: RuntimeNames, deployed: Deployed
) -> dict[str, Any]:
    """A Fargate task per run, from the image of the code location that defines the job, as the
    pipeline identity, in the configured subnets and the tasks' security group."""
    secret = deployed.postgres_secret_arn or UNKNOWN
    return {
        "module": "dagster_aws.ecs",
        "class": "EcsRunLauncher",
        "config": {
            "task_definition": {
                "log_group": names.log_group,
                "execution_role_arn": role_arn(deployed.account_id, names.execution_role),
                "task_role_arn": role_arn(deployed.account_id, names.pipeline_role),
                "requires_compatibilities": ["FARGATE"],
                "runtime_platform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
            },
            "container_name": RUN_CONTAINER,
            "task_definition_prefix": names.run_task_family_prefix,
            # The network comes from here, not from the daemon's own task (which would need
            # ec2:DescribeNetworkInterfaces on every interface of the account).
            "use_current_ecs_task_config": False,
            "secrets": [{"name": PASSWORD_VAR, "valueFrom": f"{secret}:{PASSWORD_KEY}::"}],
            # No secrets found by tag (that would need secretsmanager:ListSecrets on `*`).
            "secrets_tag": None,
            "env_vars": [f"SF_LAKEHOUSE_ENV={settings.environment}"],
            "run_resources": {"cpu": str(runtime.run.cpu), "memory": str(runtime.run.memory)},
            "run_task_kwargs": {
                "cluster": names.cluster,
                "launchType": "FARGATE",
                "networkConfiguration": network_configuration(runtime, deployed),
            },
        },
    }


def network_configuration(runtime: RuntimeSection, deployed: Deployed) -> dict[str, Any]:
    return {
        "awsvpcConfiguration": {
            "subnets": list(deployed.subnets or runtime.subnets) or [UNKNOWN],
            "securityGroups": [deployed.tasks_security_group or UNKNOWN],
            "assignPublicIp": "ENABLED" if runtime.assign_public_ip else "DISABLED",
        }
    }


def instance_config(
    settings: Settings,
    deployed: Deployed,
    *,
    run_launcher: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The instance of one environment as data. `run_launcher` replaces the ECS launcher (the
    one difference of the local three-process test)."""
    runtime, names = settings.require_runtime()
    aws = settings.require_aws()
    host = runtime.postgres.host or deployed.postgres_host or UNKNOWN
    monitoring = runtime.run_monitoring
    return {
        "storage": postgres_storage(runtime, host),
        "run_launcher": run_launcher or ecs_run_launcher(settings, runtime, names, deployed),
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        },
        "concurrency": {
            "runs": {"max_concurrent_runs": runtime.max_concurrent_runs},
            # One writer per table (sf_lakehouse/defs/pools.py).
            "pools": {"default_limit": POOL_LIMIT},
        },
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": monitoring.start_timeout_seconds,
            "cancel_timeout_seconds": monitoring.cancel_timeout_seconds,
            "poll_interval_seconds": monitoring.poll_interval_seconds,
            # Runs whose task died are marked failed; their pool slots are freed after this.
            "free_slots_after_run_end_seconds": monitoring.free_slots_after_run_end_seconds,
        },
        "run_retries": {
            "enabled": runtime.run_retries > 0,
            "max_retries": runtime.run_retries,
            # Only infrastructure failures (a task that died): a failed step or check is a
            # finding, not something to run again.
            "retry_on_asset_or_op_failure": False,
        },
        "compute_logs": {
            "module": "dagster_aws.s3.compute_log_manager",
            "class": "S3ComputeLogManager",
            "config": {
                "bucket": aws.bucket("scripts"),
                "prefix": COMPUTE_LOGS_PREFIX.rstrip("/"),
                "region": aws.region,
                "upload_interval": 30,
            },
        },
        "freshness": {"enabled": True},
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


def workspace_config(host: str, port: int = CODE_SERVER_PORT) -> dict[str, Any]:
    """The webserver's and the daemon's workspace: the code server's gRPC port."""
    return {
        "load_from": [{"grpc_server": {"host": host, "port": port, "location_name": LOCATION_NAME}}]
    }


def render(document: dict[str, Any], header: str) -> str:
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def instance_yaml(settings: Settings, deployed: Deployed, **kwargs: Any) -> str:
    header = (
        f"dagster.yaml of environment {settings.environment}: "
        f"`sf-lakehouse instance-config --environment {settings.environment}`.\n"
        "Generated from the runtime section of config/pipeline-config.yml; edit that, not this.\n"
        f"The Postgres password comes from {PASSWORD_VAR} (ECS fills it from Secrets Manager)."
    )
    return render(instance_config(settings, deployed, **kwargs), header)
