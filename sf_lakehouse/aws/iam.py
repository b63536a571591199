"""IAM policy documents of one environment's Glue service role (built as data, compared parsed)."""

from __future__ import annotations

from typing import Any

from sf_lakehouse.config import BUCKET_KINDS, Settings

GLUE_MANAGED_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole"
INLINE_POLICY_NAME = "sf-lakehouse-least-privilege"

GLUE_TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "glue.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}

S3_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket")
GLUE_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:CreateDatabase",
    "glue:UpdateDatabase",
    "glue:DeleteDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:DeleteTable",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:CreatePartition",
    "glue:BatchCreatePartition",
    "glue:UpdatePartition",
    "glue:DeletePartition",
    "glue:BatchDeletePartition",
)
SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
ATHENA_ACTIONS = (
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
)
LOGS_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def glue_role_inline_policy(settings: Settings, account_id: str) -> dict[str, Any]:
    """Least privilege for the Glue job: only this environment's buckets, databases, secret,
    workgroup and Glue log groups (no `*` resource for S3, Glue or Secrets Manager)."""
    aws = settings.require_aws()
    region = aws.region
    buckets = [aws.bucket(kind) for kind in BUCKET_KINDS]
    databases = [settings.raw_database, settings.curated_database]
    glue_prefix = f"arn:aws:glue:{region}:{account_id}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LakehouseBuckets",
                "Effect": "Allow",
                "Action": list(S3_ACTIONS),
                "Resource": [f"arn:aws:s3:::{b}" for b in buckets]
                + [f"arn:aws:s3:::{b}/*" for b in buckets],
            },
            {
                "Sid": "LakehouseCatalog",
                "Effect": "Allow",
                "Action": list(GLUE_ACTIONS),
                "Resource": [f"{glue_prefix}:catalog"]
                + [f"{glue_prefix}:database/{db}" for db in databases]
                + [f"{glue_prefix}:table/{db}/*" for db in databases],
            },
            {
                "Sid": "SalesforceSecret",
                "Effect": "Allow",
                "Action": list(SECRET_ACTIONS),
                # Secrets Manager appends a random 6-character suffix to secret ARNs.
                "Resource": [
                    f"arn:aws:secretsmanager:{region}:{account_id}:secret:"
                    f"{settings.salesforce.secret_id}-*"
                ],
            },
            {
                "Sid": "AthenaWorkgroup",
                "Effect": "Allow",
                "Action": list(ATHENA_ACTIONS),
                "Resource": [
                    f"arn:aws:athena:{region}:{account_id}:workgroup/{aws.athena_workgroup}"
                ],
            },
            {
                "Sid": "GlueJobLogs",
                "Effect": "Allow",
                "Action": list(LOGS_ACTIONS),
                "Resource": [
                    f"arn:aws:logs:{region}:{account_id}:log-group:/aws-glue/*",
                    f"arn:aws:logs:{region}:{account_id}:log-group:/aws-glue/*:*",
                ],
            },
        ],
    }
