"""IAM: the Glue service role `GlueServiceRole-<env>` with its trust policy (Glue, this account)
and one least-privilege inline policy. No managed policy: the `AWSGlueServiceRole` that earlier
deploys attached is detached."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sf_lakehouse.aws import iam
from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import (
    Change,
    Step,
    aws_errors,
    policy_document,
    read_role,
)

READ_ACTIONS = (
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
)
WRITE_ACTIONS = (
    "iam:CreateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
)


def plan_role(ctx: DeployContext) -> Step:
    name = ctx.aws.glue_role_name
    resource = f"iam role {name}"
    client = ctx.client("iam")
    inline = iam.glue_role_inline_policy(
        ctx.settings, ctx.account_id, lake_formation=ctx.options.lake_formation
    )
    trust = iam.glue_trust_policy(ctx.account_id, iam.glue_job_arn(ctx.settings, ctx.account_id))
    ctx.role_arn = iam.role_arn(ctx.account_id, name)
    with aws_errors(resource, READ_ACTIONS):
        role, attached, inline_names, current_inline = read_role(
            client, name, iam.INLINE_POLICY_NAME
        )
        if role is not None:
            ctx.role_arn = role["Arn"]
    if role is None:

        def create() -> None:
            with aws_errors(resource, ("iam:CreateRole",)):
                client.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description=f"sf_lakehouse Glue jobs, environment {ctx.aws.environment}",
                )
            ctx.role_created = True
            _put_inline(ctx, name, inline)

        detail = (
            "trust glue.amazonaws.com for this account's extraction job only, no managed policy, "
            "least-privilege inline policy"
        )
        return Step(Change(resource, "create", detail), create, WRITE_ACTIONS)

    fixes: list[Callable[[], None]] = []
    drift = []
    if policy_document(role["AssumeRolePolicyDocument"]) != trust:
        drift.append("trust policy")

        def fix_trust() -> None:
            with aws_errors(resource, ("iam:UpdateAssumeRolePolicy",)):
                client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))

        fixes.append(fix_trust)
    if iam.GLUE_MANAGED_POLICY_ARN in attached:
        drift.append("detach AWSGlueServiceRole")

        def detach() -> None:
            with aws_errors(resource, ("iam:DetachRolePolicy",)):
                client.detach_role_policy(RoleName=name, PolicyArn=iam.GLUE_MANAGED_POLICY_ARN)

        fixes.append(detach)
    others = sorted(attached - {iam.GLUE_MANAGED_POLICY_ARN})
    foreign_inline = sorted(inline_names - {iam.INLINE_POLICY_NAME})
    if others or foreign_inline:
        ctx.warnings.append(
            f"{resource} has policies deploy did not put there "
            f"({', '.join(others + foreign_inline)}): they widen the role beyond least privilege; "
            "remove them unless you need them"
        )
    if current_inline != inline:
        drift.append("inline policy " + ("missing" if current_inline is None else "differs"))
        fixes.append(lambda: _put_inline(ctx, name, inline))
    if not drift:
        return Step(Change(resource, "none", "trust and inline policy as declared, none managed"))

    def update() -> None:
        for fix in fixes:
            fix()

    return Step(Change(resource, "update", ", ".join(drift)), update, WRITE_ACTIONS)


def _put_inline(ctx: DeployContext, name: str, policy: dict[str, Any]) -> None:
    with aws_errors(f"iam role {name}", ("iam:PutRolePolicy",)):
        ctx.client("iam").put_role_policy(
            RoleName=name, PolicyName=iam.INLINE_POLICY_NAME, PolicyDocument=json.dumps(policy)
        )
