"""EventBridge: the rule `sf-lakehouse-<env>-glue-job-state` that sends the extraction job's
FAILED, TIMEOUT and STOPPED runs to the alerts topic."""

from __future__ import annotations

import json
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, error_code
from sf_lakehouse.monitoring import names

GLUE_STATES = ("FAILED", "TIMEOUT", "STOPPED")
TARGET_ID = "alerts-topic"


def event_pattern(job_name: str) -> dict[str, Any]:
    return {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {"jobName": [job_name], "state": list(GLUE_STATES)},
    }


def plan_glue_rule(ctx: DeployContext, topic: str) -> Step:
    name = names.glue_rule_name(ctx.aws.environment)
    resource = f"eventbridge rule {name}"
    events = ctx.client("events")
    pattern = event_pattern(ctx.aws.glue_job_name)
    description = f"sf_lakehouse {ctx.aws.environment}: Glue job {', '.join(GLUE_STATES)} -> SNS"
    with aws_errors(resource, ("events:DescribeRule", "events:ListTargetsByRule")):
        try:
            rule = events.describe_rule(Name=name)
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            rule = None
        targets = (
            events.list_targets_by_rule(Rule=name).get("Targets", []) if rule is not None else []
        )
    topic_name = names.topic_name(ctx.aws.environment)
    summary = f"{ctx.aws.glue_job_name} {'/'.join(GLUE_STATES)} -> {topic_name}"

    def put() -> None:
        with aws_errors(resource, ("events:PutRule", "events:PutTargets")):
            events.put_rule(
                Name=name,
                EventPattern=json.dumps(pattern),
                State="ENABLED",
                Description=description,
            )
            events.put_targets(Rule=name, Targets=[{"Id": TARGET_ID, "Arn": topic}])

    if rule is None:
        return Step(
            Change(resource, "create", summary), put, ("events:PutRule", "events:PutTargets")
        )
    drift = []
    if json.loads(rule.get("EventPattern") or "{}") != pattern:
        drift.append("event pattern")
    if rule.get("State") != "ENABLED":
        drift.append("enabled")
    if [(t.get("Id"), t.get("Arn")) for t in targets] != [(TARGET_ID, topic)]:
        drift.append("target")
    if not drift:
        return Step(Change(resource, "none", summary))
    return Step(
        Change(resource, "update", "set " + ", ".join(drift)),
        put,
        ("events:PutRule", "events:PutTargets"),
    )
