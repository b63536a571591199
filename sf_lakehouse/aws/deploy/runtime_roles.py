"""IAM: the runtime's two roles, each trusted by ECS tasks of this account only, with one
least-privilege inline policy and no managed policy (sf_lakehouse/aws/runtime_iam.py):
`SfLakehouseTaskExecution-<env>` and `SfLakehousePipeline-<env>`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sf_lakehouse.aws import runtime_iam
from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import (
    Change,
    Step,
    aws_errors,
    policy_document,
    read_role,
)
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState

READ_ACTIONS = (
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
)
WRITE_ACTIONS = ("iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy")


def plan_roles(ctx: DeployContext, state: RuntimeState) -> list[Step]:
    settings, names, account = ctx.settings, state.names, ctx.account_id
    trust = runtime_iam.ecs_tasks_trust_policy(account)
    return [
        _role(
            ctx,
            state,
            names.execution_role,
            trust,
            runtime_iam.execution_role_policy(settings, state.runtime, names, account),
            "ECS: pull the image, write logs, inject the Postgres and Salesforce secrets",
        ),
        _role(
            ctx,
            state,
            names.pipeline_role,
            trust,
            runtime_iam.pipeline_role_policy(settings, names, account),
            "the pipeline identity, and the daemon's run launcher",
        ),
    ]


def _role(
    ctx: DeployContext,
    state: RuntimeState,
    name: str,
    trust: dict[str, Any],
    inline: dict[str, Any],
    description: str,
) -> Step:
    resource = f"iam role {name}"
    client = ctx.client("iam")
    with aws_errors(resource, READ_ACTIONS):
        role, attached, inline_names, current = read_role(
            client, name, runtime_iam.INLINE_POLICY_NAME
        )

    def put_inline() -> None:
        with aws_errors(resource, ("iam:PutRolePolicy",)):
            client.put_role_policy(
                RoleName=name,
                PolicyName=runtime_iam.INLINE_POLICY_NAME,
                PolicyDocument=json.dumps(inline),
            )

    if role is None:

        def create() -> None:
            with aws_errors(resource, ("iam:CreateRole",)):
                client.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description=f"sf_lakehouse {state.names.environment}: {description}",
                )
            state.roles_created = True
            put_inline()

        detail = "trust ecs-tasks.amazonaws.com from this account only, least-privilege inline"
        return Step(Change(resource, "create", detail), create, WRITE_ACTIONS)
    foreign = sorted(attached | (inline_names - {runtime_iam.INLINE_POLICY_NAME}))
    if foreign:
        ctx.warnings.append(
            f"{resource} has policies deploy did not put there ({', '.join(foreign)}): they "
            "widen the role beyond least privilege; remove them unless you need them"
        )
    fixes: list[Callable[[], None]] = []
    drift = []
    if policy_document(role["AssumeRolePolicyDocument"]) != trust:
        drift.append("trust policy")

        def fix_trust() -> None:
            with aws_errors(resource, ("iam:UpdateAssumeRolePolicy",)):
                client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))

        fixes.append(fix_trust)
    if current != inline:
        drift.append("inline policy " + ("missing" if current is None else "differs"))
        fixes.append(put_inline)
    if not drift:
        return Step(Change(resource, "none", "trust and inline policy as declared"))

    def update() -> None:
        for fix in fixes:
            fix()

    return Step(Change(resource, "update", ", ".join(drift)), update, WRITE_ACTIONS)
