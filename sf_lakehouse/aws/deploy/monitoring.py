"""The monitoring resources in their order: the topic's key, the topic and its subscriptions,
the dashboard, the alarms and the Glue job rule (both notify the topic)."""

from __future__ import annotations

from sf_lakehouse.aws.deploy import cloudwatch, events, kms, sns
from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Step


def plan_monitoring(ctx: DeployContext) -> list[Step]:
    topic = sns.topic_arn(ctx)
    topic_step = sns.plan_topic(ctx)
    return [
        kms.plan_topic_key(ctx),
        topic_step,
        *sns.plan_subscriptions(ctx, topic_is_new=topic_step.change.action == "create"),
        cloudwatch.plan_dashboard(ctx),
        *cloudwatch.plan_alarms(ctx, topic),
        events.plan_glue_rule(ctx, topic),
    ]
