"""SNS: the alerts topic `sf-lakehouse-<env>-alerts` (encrypted with the key of `kms.py`; its
policy lets only CloudWatch alarms and EventBridge rules of this account publish; the
pipeline's identity publishes through its IAM policy) and the e-mail subscriptions of
`alerts.email`. A subscription waits for its recipient's confirmation: the plan says so."""

from __future__ import annotations

import json
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.kms import PUBLISHING_SERVICES
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, error_code, policy_document
from sf_lakehouse.monitoring import names

PENDING = "PendingConfirmation"


def topic_arn(ctx: DeployContext) -> str:
    return names.topic_arn(ctx.aws.environment, ctx.region, ctx.account_id)


def topic_policy(topic: str, account_id: str) -> dict[str, Any]:
    """Publish: CloudWatch and EventBridge on behalf of this account only. The account keeps
    managing the topic (subscriptions) through IAM."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AlarmsAndRulesPublish",
                "Effect": "Allow",
                "Principal": {"Service": list(PUBLISHING_SERVICES)},
                "Action": "sns:Publish",
                "Resource": topic,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            {
                "Sid": "AccountManages",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": [
                    "sns:GetTopicAttributes",
                    "sns:SetTopicAttributes",
                    "sns:Subscribe",
                    "sns:ListSubscriptionsByTopic",
                ],
                "Resource": topic,
            },
        ],
    }


def desired_attributes(ctx: DeployContext) -> dict[str, str]:
    return {
        "KmsMasterKeyId": names.topic_key_alias(ctx.aws.environment),
        "Policy": json.dumps(topic_policy(topic_arn(ctx), ctx.account_id)),
        "DisplayName": f"sf-lakehouse {ctx.aws.environment}",
    }


def _current_attributes(ctx: DeployContext, arn: str) -> dict[str, str] | None:
    try:
        return dict(ctx.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"])
    except Exception as error:
        if error_code(error) in ("NotFound", "NotFoundException", "404"):
            return None
        raise


def plan_topic(ctx: DeployContext) -> Step:
    name = names.topic_name(ctx.aws.environment)
    resource = f"sns topic {name}"
    sns = ctx.client("sns")
    arn = topic_arn(ctx)
    desired = desired_attributes(ctx)
    with aws_errors(resource, ("sns:GetTopicAttributes",)):
        current = _current_attributes(ctx, arn)
    summary = f"encrypted ({desired['KmsMasterKeyId']}), only CloudWatch and EventBridge publish"
    if current is None:

        def create() -> None:
            with aws_errors(resource, ("sns:CreateTopic", "sns:TagResource")):
                sns.create_topic(
                    Name=name,
                    Attributes=desired,
                    Tags=[{"Key": "sf-lakehouse", "Value": ctx.aws.environment}],
                )

        return Step(Change(resource, "create", summary), create, ("sns:CreateTopic",))
    drift = [
        key
        for key, value in desired.items()
        if (
            policy_document(current.get(key) or "{}") != json.loads(value)
            if key == "Policy"
            else current.get(key) != value
        )
    ]
    if not drift:
        return Step(Change(resource, "none", summary))

    def update() -> None:
        with aws_errors(resource, ("sns:SetTopicAttributes",)):
            for key in drift:
                sns.set_topic_attributes(
                    TopicArn=arn, AttributeName=key, AttributeValue=desired[key]
                )

    return Step(
        Change(resource, "update", "set " + ", ".join(drift)), update, ("sns:SetTopicAttributes",)
    )


def plan_subscriptions(ctx: DeployContext, topic_is_new: bool) -> list[Step]:
    """One step per address of `alerts.email`; addresses subscribed by hand stay (a warning)."""
    wanted = list(ctx.settings.config.alerts.email)
    arn = topic_arn(ctx)
    sns = ctx.client("sns")
    current: dict[str, str] = {}
    if not topic_is_new:
        with aws_errors(f"sns topic {arn}", ("sns:ListSubscriptionsByTopic",)):
            paginator = sns.get_paginator("list_subscriptions_by_topic")
            for page in paginator.paginate(TopicArn=arn):
                for sub in page.get("Subscriptions", []):
                    if sub.get("Protocol") == "email":
                        current[sub["Endpoint"]] = sub["SubscriptionArn"]
    steps = []
    for address in wanted:
        resource = f"sns subscription {address}"
        if address in current:
            pending = True if current[address] == PENDING else _pending(sns, current[address])
            detail = {
                True: "pending confirmation (the e-mail's link)",
                False: "confirmed",
                None: "confirmation unknown (sns:GetSubscriptionAttributes was refused)",
            }[pending]
            steps.append(Step(Change(resource, "none", detail)))
            continue

        def subscribe(address: str = address, resource: str = resource) -> None:
            with aws_errors(resource, ("sns:Subscribe",)):
                sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=address)

        steps.append(
            Step(
                Change(resource, "create", "e-mail; pending until the recipient confirms"),
                subscribe,
                ("sns:Subscribe",),
            )
        )
    extra = sorted(set(current) - set(wanted))
    if extra:
        ctx.warnings.append(
            f"sns topic {names.topic_name(ctx.aws.environment)} has e-mail subscriptions not in "
            f"alerts.email ({', '.join(extra)}): add them to the config or unsubscribe them"
        )
    return steps


def _pending(sns: Any, subscription_arn: str) -> bool | None:
    """None when the attributes cannot be read (the plan says so rather than "confirmed")."""
    from botocore.exceptions import ClientError

    try:
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription_arn)
    except ClientError:
        return None
    return str(attributes.get("Attributes", {}).get("PendingConfirmation", "false")) == "true"
