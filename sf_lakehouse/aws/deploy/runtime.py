"""The production runtime's part of a deploy, in order: the image repository, the log group,
the security groups, the two roles, the code server's DNS name, Postgres, the cluster and the
three services (once there is an image). Each service has its own module."""

from __future__ import annotations

from sf_lakehouse.aws.deploy import cloudmap, ecr, ecs, logs, network, rds, runtime_roles
from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Step
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState


def plan_runtime(ctx: DeployContext, image_uri: str | None) -> list[Step]:
    runtime, names = ctx.settings.require_runtime()
    state = RuntimeState(runtime=runtime, names=names, image=image_uri or runtime.image)
    steps = [ecr.plan_repository(ctx, state), logs.plan_log_group(ctx, state)]
    network.resolve_network(ctx, state)
    steps += network.plan_security_groups(ctx, state)
    steps += runtime_roles.plan_roles(ctx, state)
    steps.append(cloudmap.plan_discovery(ctx, state))
    steps += rds.plan_postgres(ctx, state)
    steps.append(ecs.plan_cluster(ctx, state))
    steps += ecs.plan_services(ctx, state)
    ctx.notes.append(f"image repository: {ecr.repository_uri(ctx, state)}")
    if state.image is None:
        ctx.notes += [f"push an image: {command}" for command in ecr.push_commands(ctx, state)]
    return steps
