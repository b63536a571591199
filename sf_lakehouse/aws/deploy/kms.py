"""KMS: the customer managed key `alias/sf-lakehouse-<env>-alerts` that encrypts the alerts
topic. An AWS managed key (`alias/aws/sns`) would not do: its policy cannot let CloudWatch
alarms and EventBridge rules use it, so their messages would be dropped."""

from __future__ import annotations

import json
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, policy_document
from sf_lakehouse.monitoring import names

READ_ACTIONS = (
    "kms:ListAliases",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
)
WRITE_ACTIONS = ("kms:CreateKey", "kms:CreateAlias", "kms:PutKeyPolicy", "kms:EnableKeyRotation")
# The services that publish to the topic: they encrypt with the key.
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


def key_policy(account_id: str) -> dict[str, Any]:
    """The account administers the key (IAM policies decide who else uses it); CloudWatch and
    EventBridge of this account may encrypt messages for the topic."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "AlarmsAndRulesPublish",
                "Effect": "Allow",
                "Principal": {"Service": list(PUBLISHING_SERVICES)},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ],
    }


def find_key(ctx: DeployContext, alias: str) -> str | None:
    """The key id behind `alias`, or None."""
    kms = ctx.client("kms")
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page.get("Aliases", []):
            if entry.get("AliasName") == alias and entry.get("TargetKeyId"):
                return str(entry["TargetKeyId"])
    return None


def plan_topic_key(ctx: DeployContext) -> Step:
    alias = names.topic_key_alias(ctx.aws.environment)
    resource = f"kms key {alias}"
    kms = ctx.client("kms")
    policy = key_policy(ctx.account_id)
    with aws_errors(resource, READ_ACTIONS):
        key_id = find_key(ctx, alias)
        if key_id is not None:
            current = policy_document(
                kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
            )
            rotation = kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled")
    summary = "encrypts the alerts topic; CloudWatch and EventBridge may use it; yearly rotation"
    if key_id is None:

        def create() -> None:
            with aws_errors(resource, WRITE_ACTIONS):
                created = kms.create_key(
                    Description=f"sf_lakehouse {ctx.aws.environment}: the alerts topic",
                    Policy=json.dumps(policy),
                    Tags=[{"TagKey": "sf-lakehouse", "TagValue": ctx.aws.environment}],
                )["KeyMetadata"]["KeyId"]
                kms.enable_key_rotation(KeyId=created)
                kms.create_alias(AliasName=alias, TargetKeyId=created)

        return Step(Change(resource, "create", summary), create, WRITE_ACTIONS)
    drift = []
    if current != policy:
        drift.append("key policy")
    if not rotation:
        drift.append("rotation")
    if not drift:
        return Step(Change(resource, "none", summary))

    def update() -> None:
        with aws_errors(resource, ("kms:PutKeyPolicy", "kms:EnableKeyRotation")):
            kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
            kms.enable_key_rotation(KeyId=key_id)

    return Step(Change(resource, "update", "set " + ", ".join(drift)), update, WRITE_ACTIONS)
