"""IAM policy documents of the production runtime's two roles (built as data, compared parsed).

- `SfLakehouseTaskExecution-<env>`: what ECS itself does to start a task: pull the image,
  write its logs, read the Postgres and Salesforce secrets it injects.
- `SfLakehousePipeline-<env>`: the pipeline identity (`iam.pipeline_identity_statements`, the
  permissions the README lists) plus what the daemon's run launcher and the compute logs need.

No managed policy. The only `*` resources are actions AWS offers no resource-level permission
for (`RUNTIME_WILDCARD_RESOURCE_ACTIONS`).
"""

from __future__ import annotations

from typing import Any

from sf_lakehouse.aws.iam import SECRET_SUFFIX, pipeline_identity_statements, role_arn, secret_arn
from sf_lakehouse.config import Settings
from sf_lakehouse.config.runtime import RuntimeNames, RuntimeSection
from sf_lakehouse.runtime.instance import COMPUTE_LOGS_PREFIX

INLINE_POLICY_NAME = "sf-lakehouse-least-privilege"
ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"
RUNTIME_WILDCARD_RESOURCE_ACTIONS = frozenset(
    {"ecr:GetAuthorizationToken", "ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"}
)
IMAGE_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
)


def ecs_tasks_trust_policy(account_id: str) -> dict[str, Any]:
    """Only ECS tasks, and only on behalf of this account, may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ECS_TASKS_SERVICE},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def postgres_secret_arn(
    settings: Settings, runtime: RuntimeSection, names: RuntimeNames, account_id: str
) -> str:
    region = settings.require_aws().region
    secret_id = runtime.postgres.secret_id or names.postgres_secret
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{secret_id}{SECRET_SUFFIX}"


def log_group_arn(settings: Settings, names: RuntimeNames, account_id: str) -> str:
    region = settings.require_aws().region
    return f"arn:aws:logs:{region}:{account_id}:log-group:{names.log_group}"


def repository_arn(settings: Settings, names: RuntimeNames, account_id: str) -> str:
    region = settings.require_aws().region
    return f"arn:aws:ecr:{region}:{account_id}:repository/{names.repository}"


def execution_role_policy(
    settings: Settings, runtime: RuntimeSection, names: RuntimeNames, account_id: str
) -> dict[str, Any]:
    log_group = log_group_arn(settings, names, account_id)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RegistryLogin",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": ["*"],
            },
            {
                "Sid": "ImagePull",
                "Effect": "Allow",
                "Action": list(IMAGE_PULL_ACTIONS),
                "Resource": [repository_arn(settings, names, account_id)],
            },
            {
                "Sid": "TaskLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{log_group}:log-stream:*"],
            },
            {
                "Sid": "InjectedSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [
                    postgres_secret_arn(settings, runtime, names, account_id),
                    secret_arn(settings, account_id),
                ],
            },
        ],
    }


def run_launcher_statements(
    settings: Settings, names: RuntimeNames, account_id: str
) -> list[dict[str, Any]]:
    """The daemon's EcsRunLauncher: register a run's task definition, start it in the cluster,
    watch and stop it, read its logs when it failed; pass exactly the two runtime roles."""
    aws = settings.require_aws()
    ecs = f"arn:aws:ecs:{aws.region}:{account_id}"
    cluster = f"{ecs}:cluster/{names.cluster}"
    scripts = aws.bucket("scripts")
    return [
        {
            "Sid": "RunTaskDefinitions",
            "Effect": "Allow",
            "Action": ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
            "Resource": ["*"],
        },
        {
            "Sid": "RunTasks",
            "Effect": "Allow",
            "Action": ["ecs:RunTask"],
            "Resource": [f"{ecs}:task-definition/{names.run_task_family_prefix}_*"],
            "Condition": {"ArnEquals": {"ecs:cluster": cluster}},
        },
        {
            "Sid": "RunTaskTags",
            "Effect": "Allow",
            "Action": ["ecs:TagResource"],
            "Resource": [f"{ecs}:task/{names.cluster}/*"],
            "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
        },
        {
            "Sid": "WatchRunTasks",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
            "Resource": [f"{ecs}:task/{names.cluster}/*"],
        },
        {
            "Sid": "RunTaskLogs",
            "Effect": "Allow",
            "Action": ["logs:GetLogEvents"],
            "Resource": [f"{log_group_arn(settings, names, account_id)}:log-stream:*"],
        },
        {
            "Sid": "PassRuntimeRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [
                role_arn(account_id, names.execution_role),
                role_arn(account_id, names.pipeline_role),
            ],
            "Condition": {"StringEquals": {"iam:PassedToService": ECS_TASKS_SERVICE}},
        },
        {
            "Sid": "ComputeLogs",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{scripts}/{COMPUTE_LOGS_PREFIX}*"],
        },
        {
            "Sid": "ComputeLogListing",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{scripts}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{COMPUTE_LOGS_PREFIX}*"]}},
        },
    ]


def pipeline_role_policy(
    settings: Settings, names: RuntimeNames, account_id: str
) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            *pipeline_identity_statements(settings, account_id),
            *run_launcher_statements(settings, names, account_id),
        ],
    }
