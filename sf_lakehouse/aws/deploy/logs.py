"""CloudWatch Logs: the log group `/sf-lakehouse/<env>` of every service and run task, with the
configured retention."""

from __future__ import annotations

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState

READ_ACTIONS = ("logs:DescribeLogGroups",)
WRITE_ACTIONS = ("logs:CreateLogGroup", "logs:PutRetentionPolicy")


def plan_log_group(ctx: DeployContext, state: RuntimeState) -> Step:
    name = state.names.log_group
    days = state.runtime.log_retention_days
    resource = f"log group {name}"
    logs = ctx.client("logs")
    with aws_errors(resource, READ_ACTIONS):
        groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    current = next((g for g in groups if g["logGroupName"] == name), None)

    def retention() -> None:
        with aws_errors(resource, ("logs:PutRetentionPolicy",)):
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)

    if current is None:

        def create() -> None:
            with aws_errors(resource, ("logs:CreateLogGroup",)):
                logs.create_log_group(logGroupName=name)
            retention()

        return Step(Change(resource, "create", f"retention {days} days"), create, WRITE_ACTIONS)
    if current.get("retentionInDays") != days:
        detail = f"retention {current.get('retentionInDays') or 'never expires'} -> {days} days"
        return Step(Change(resource, "update", detail), retention, WRITE_ACTIONS[1:])
    return Step(Change(resource, "none", f"retention {days} days"))
