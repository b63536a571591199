"""ECS: the cluster `sf-lakehouse-<env>` and three Fargate services, `sf-lakehouse-<env>-
webserver`, `-daemon` and `-code-server`, each with its task definition (same family name) from
the one image. The daemon never runs twice (a deployment stops the old task first); the code
server registers in Cloud Map. Runs are tasks the daemon's EcsRunLauncher starts.

A service is planned with its task definition: a new revision is registered only when the
container (image, command, environment, secrets, size, roles, logs) differs from the latest one.
"""

from __future__ import annotations

from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, error_code, matches
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState
from sf_lakehouse.aws.iam import role_arn
from sf_lakehouse.config.runtime import CODE_SERVER_PORT, SERVICE_ROLES, WEBSERVER_PORT, TaskSize
from sf_lakehouse.runtime.instance import (
    PASSWORD_KEY,
    PASSWORD_VAR,
    Deployed,
    instance_yaml,
    render,
    workspace_config,
)
from sf_lakehouse.runtime.services import INSTANCE_VAR, WORKSPACE_VAR, container_command

CLUSTER_ACTIONS = ("ecs:DescribeClusters", "ecs:CreateCluster")
SERVICE_READ_ACTIONS = ("ecs:DescribeServices", "ecs:DescribeTaskDefinition")
SERVICE_WRITE_ACTIONS = (
    "ecs:RegisterTaskDefinition",
    "ecs:CreateService",
    "ecs:UpdateService",
    "iam:PassRole",
)
PORTS = {"webserver": WEBSERVER_PORT, "code-server": CODE_SERVER_PORT}


def plan_cluster(ctx: DeployContext, state: RuntimeState) -> Step:
    name = state.names.cluster
    resource = f"ecs cluster {name}"
    ecs = ctx.client("ecs")
    with aws_errors(resource, CLUSTER_ACTIONS[:1]):
        clusters = ecs.describe_clusters(clusters=[name])["clusters"]
    if any(c["clusterName"] == name and c.get("status") == "ACTIVE" for c in clusters):
        return Step(Change(resource, "none", "Fargate, Container Insights"))

    def create() -> None:
        with aws_errors(resource, CLUSTER_ACTIONS[1:]):
            ecs.create_cluster(
                clusterName=name,
                capacityProviders=["FARGATE"],
                settings=[{"name": "containerInsights", "value": "enabled"}],
            )

    return Step(Change(resource, "create", "Fargate, Container Insights"), create, CLUSTER_ACTIONS)


def deployed(ctx: DeployContext, state: RuntimeState) -> Deployed:
    return Deployed(
        account_id=ctx.account_id,
        subnets=state.subnets,
        tasks_security_group=state.security_groups.get("tasks"),
        postgres_host=state.postgres_host,
        postgres_secret_arn=state.postgres_secret_arn,
    )


def _size(state: RuntimeState, role: str) -> TaskSize:
    services = state.runtime.services
    return {
        "webserver": services.webserver,
        "daemon": services.daemon,
        "code-server": services.code_server,
    }[role]


def task_definition(ctx: DeployContext, state: RuntimeState, role: str) -> dict[str, Any]:
    """The task definition of one service (RegisterTaskDefinition's arguments)."""
    image = str(state.image)
    environment = {"SF_LAKEHOUSE_ENV": ctx.settings.environment}
    if role == "code-server":
        # The image of runs launched for this code location (EcsRunLauncher reads it).
        environment["DAGSTER_CURRENT_IMAGE"] = image
    else:
        environment[INSTANCE_VAR] = instance_yaml(ctx.settings, deployed(ctx, state))
        environment[WORKSPACE_VAR] = render(
            workspace_config(state.names.code_server_host), "workspace of the code server"
        )
    container: dict[str, Any] = {
        "name": role,
        "image": image,
        "essential": True,
        "command": container_command(role),
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "secrets": [
            {"name": PASSWORD_VAR, "valueFrom": f"{state.postgres_secret_arn}:{PASSWORD_KEY}::"}
        ],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": state.names.log_group,
                "awslogs-region": ctx.region,
                "awslogs-stream-prefix": role,
            },
        },
    }
    if role in PORTS:
        container["portMappings"] = [{"containerPort": PORTS[role], "protocol": "tcp"}]
    size = _size(state, role)
    return {
        "family": state.names.service(role),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(size.cpu),
        "memory": str(size.memory),
        "executionRoleArn": role_arn(ctx.account_id, state.names.execution_role),
        "taskRoleArn": role_arn(ctx.account_id, state.names.pipeline_role),
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "containerDefinitions": [container],
    }


def service_settings(state: RuntimeState, role: str) -> dict[str, Any]:
    kind = "webserver" if role == "webserver" else "tasks"
    settings: dict[str, Any] = {
        "desiredCount": 1,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(state.subnets),
                "securityGroups": [state.security_groups.get(kind, "")],
                "assignPublicIp": "ENABLED" if state.runtime.assign_public_ip else "DISABLED",
            }
        },
    }
    if role == "daemon":
        # Exactly one daemon: a deployment stops the old task before it starts the new one.
        settings["deploymentConfiguration"] = {"maximumPercent": 100, "minimumHealthyPercent": 0}
    return settings


def plan_services(ctx: DeployContext, state: RuntimeState) -> list[Step]:
    if state.image is None:
        ctx.notes.append(
            "no image yet: the ECS services are created by `deploy --image-uri <uri>:<tag>` "
            "once an image is pushed (or set runtime.image)"
        )
        return []
    return [_service(ctx, state, role) for role in SERVICE_ROLES]


def _latest_definition(ecs: Any, family: str) -> dict[str, Any] | None:
    try:
        return dict(ecs.describe_task_definition(taskDefinition=family)["taskDefinition"])
    except Exception as error:
        if error_code(error) not in ("ClientException", "ClientError", "ResourceNotFoundException"):
            raise
        return None


def _definition_matches(current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    if current is None or current.get("status", "ACTIVE") != "ACTIVE":
        return False
    wanted = {k: v for k, v in desired.items() if k != "family"}
    return matches(current, wanted)


def _service(ctx: DeployContext, state: RuntimeState, role: str) -> Step:
    name = state.names.service(role)
    resource = f"ecs service {name}"
    ecs = ctx.client("ecs")
    cluster = state.names.cluster
    with aws_errors(resource, SERVICE_READ_ACTIONS):
        try:
            services = ecs.describe_services(cluster=cluster, services=[name]).get("services", [])
        except Exception as error:
            if error_code(error) != "ClusterNotFoundException":
                raise
            services = []  # the cluster is created by an earlier step
        current = next((s for s in services if s.get("status") == "ACTIVE"), None)
        latest = _latest_definition(ecs, name) if current is not None else None
    desired_settings = service_settings(state, role)
    image = f"image {state.image}"
    if current is not None:
        definition = task_definition(ctx, state, role)
        same_definition = _definition_matches(latest, definition) and current.get(
            "taskDefinition"
        ) == (latest or {}).get("taskDefinitionArn")
        # (moto returns no deploymentConfiguration; AWS always does)
        drift = [
            k
            for k, v in desired_settings.items()
            if k in current or k != "deploymentConfiguration"
            if not matches(current.get(k), v)
        ]
        if same_definition and not drift:
            return Step(Change(resource, "none", image))
        detail = ", ".join((["task definition"] if not same_definition else []) + drift)
    else:
        detail = f"{image}, {_size(state, role).cpu} cpu / {_size(state, role).memory} MiB"

    def apply() -> None:
        # Rendered now: a first deploy learns the security groups and the database's host
        # from the steps before this one.
        definition = task_definition(ctx, state, role)
        settings = service_settings(state, role)
        with aws_errors(resource, SERVICE_WRITE_ACTIONS):
            latest_now = _latest_definition(ecs, name)
            if _definition_matches(latest_now, definition):
                arn = str((latest_now or {})["taskDefinitionArn"])
            else:
                arn = ecs.register_task_definition(**definition)["taskDefinition"][
                    "taskDefinitionArn"
                ]
            if current is None:
                extra: dict[str, Any] = {}
                if role == "code-server" and state.discovery_service_arn:
                    extra["serviceRegistries"] = [{"registryArn": state.discovery_service_arn}]
                ecs.create_service(
                    cluster=cluster,
                    serviceName=name,
                    taskDefinition=arn,
                    launchType="FARGATE",
                    enableECSManagedTags=True,
                    propagateTags="SERVICE",
                    **settings,
                    **extra,
                )
            else:
                ecs.update_service(cluster=cluster, service=name, taskDefinition=arn, **settings)

    action = "create" if current is None else "update"
    return Step(Change(resource, action, detail), apply, SERVICE_WRITE_ACTIONS)
