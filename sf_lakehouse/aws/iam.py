"""IAM policy documents of one environment's Glue service role (built as data, compared parsed).

No AWS managed policy: every statement names this account's and region's resources of one
environment. The only `*` resources are for actions that support no resource-level permission
(`cloudwatch:PutMetricData`, restricted by a namespace condition; `lakeformation:GetDataAccess`
when Lake Formation governs the tables); `WILDCARD_RESOURCE_ACTIONS` lists them.
"""

from __future__ import annotations

from typing import Any

from sf_lakehouse.aws.pipes import PIPES_PREFIX
from sf_lakehouse.config import Settings

# Attached by earlier versions of deploy; deploy detaches it now (upgrade path).
GLUE_MANAGED_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole"
INLINE_POLICY_NAME = "sf-lakehouse-least-privilege"
# The CloudWatch namespace of Glue job metrics.
GLUE_METRICS_NAMESPACE = "Glue"
# Actions that support no resource-level permissions: the only ones with a `*` resource.
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {"cloudwatch:PutMetricData", "cloudwatch:GetMetricData", "lakeformation:GetDataAccess"}
)

GLUE_READ_ACTIONS = ("glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions")
GLUE_WRITE_ACTIONS = ("glue:CreateTable", "glue:UpdateTable")
# Only on the curated database: dbt-athena's table swap drops `__ha`/`__bkp` tables. Never on
# raw, whose history cannot be rebuilt from Salesforce.
GLUE_DROP_ACTIONS = ("glue:DeleteTable",)
LOGS_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
# Secrets Manager appends `-` and six random characters to a secret's name in its ARN.
SECRET_SUFFIX = "-??????"


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def secret_arn(settings: Settings, account_id: str) -> str:
    """`arn:aws:secretsmanager:<region>:<account>:secret:salesforce/<env>/credentials-??????`."""
    region = settings.require_aws().region
    secret_id = settings.auth.secret_id or f"salesforce/{settings.environment}/credentials"
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{secret_id}{SECRET_SUFFIX}"


def glue_job_arn(settings: Settings, account_id: str) -> str:
    aws = settings.require_aws()
    return f"arn:aws:glue:{aws.region}:{account_id}:job/{aws.glue_job_name}"


def glue_trust_policy(account_id: str, job_arn: str) -> dict[str, Any]:
    """Only the Glue service, on behalf of this account and of the extraction job alone, may
    assume the role (no other job, crawler or session of the account: confused deputy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": job_arn},
                },
            }
        ],
    }


def glue_role_inline_policy(
    settings: Settings, account_id: str, *, lake_formation: bool = False
) -> dict[str, Any]:
    """What the extraction job does, and nothing else:

    - Glue: read its raw database and tables, create and update (commit) tables in it;
    - S3: objects under the raw database's prefix of the raw bucket; in the scripts bucket,
      read the job's artifacts (`glue/`) and read/write Dagster Pipes messages (`pipes/`);
    - the environment's Salesforce secret; the job's CloudWatch log groups and Glue metrics.
    """
    aws = settings.require_aws()
    region = aws.region
    raw_db = settings.raw_database
    raw_bucket = aws.bucket("raw")
    scripts = aws.bucket("scripts")
    glue_prefix = f"arn:aws:glue:{region}:{account_id}"
    logs_prefix = f"arn:aws:logs:{region}:{account_id}:log-group:/aws-glue/jobs/"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "RawCatalog",
            "Effect": "Allow",
            "Action": [*GLUE_READ_ACTIONS, *GLUE_WRITE_ACTIONS],
            "Resource": [
                f"{glue_prefix}:catalog",
                f"{glue_prefix}:database/{raw_db}",
                f"{glue_prefix}:table/{raw_db}/*",
            ],
        },
        {
            "Sid": "RawTableObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{raw_bucket}/{raw_db}/*"],
        },
        {
            "Sid": "RawTableListing",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{raw_bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [raw_db, f"{raw_db}/*"]}},
        },
        {
            "Sid": "JobArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{scripts}/glue/*"],
        },
        {
            "Sid": "PipesMessages",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{scripts}/{PIPES_PREFIX}*"],
        },
        {
            "Sid": "SalesforceSecret",
            "Effect": "Allow",
            "Action": list(SECRET_ACTIONS),
            "Resource": [secret_arn(settings, account_id)],
        },
        {
            "Sid": "GlueJobLogs",
            "Effect": "Allow",
            "Action": list(LOGS_ACTIONS),
            "Resource": [f"{logs_prefix}*", f"{logs_prefix}*:log-stream:*"],
        },
        {
            "Sid": "GlueJobMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"cloudwatch:namespace": GLUE_METRICS_NAMESPACE}},
        },
    ]
    if lake_formation:
        statements.append(
            {
                "Sid": "LakeFormationDataAccess",
                "Effect": "Allow",
                "Action": ["lakeformation:GetDataAccess"],
                "Resource": ["*"],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def monitoring_statements(settings: Settings, account_id: str) -> list[dict[str, Any]]:
    """What the pipeline's identity needs for monitoring: publish the run metrics (namespace
    `SfLakehouse` only) and read them back (`sf-lakehouse status`), publish alerts to the
    environment's topic (encrypted with its key), and read the Slack token's secret."""
    from sf_lakehouse.monitoring import names
    from sf_lakehouse.monitoring.metrics import NAMESPACE

    region = settings.require_aws().region
    env = settings.environment
    statements: list[dict[str, Any]] = [
        {
            "Sid": "RunMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
        },
        {
            "Sid": "ReadRunMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:GetMetricData"],
            "Resource": ["*"],
        },
        {
            "Sid": "AlertsTopic",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": [names.topic_arn(env, region, account_id)],
        },
        {
            "Sid": "AlertsTopicKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": [f"arn:aws:kms:{region}:{account_id}:key/*"],
            "Condition": {
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": [names.topic_key_alias(env)]}
            },
        },
    ]
    slack = settings.config.alerts.slack
    if slack is not None and slack.token_secret_id:
        statements.append(
            {
                "Sid": "SlackToken",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [
                    f"arn:aws:secretsmanager:{region}:{account_id}:secret:"
                    f"{slack.token_secret_id}{SECRET_SUFFIX}"
                ],
            }
        )
    return statements


def pipeline_catalog_statements(settings: Settings, account_id: str) -> list[dict[str, Any]]:
    """The pipeline identity's Glue catalog permissions: read and write both databases (the
    in-process extraction commits raw tables, dbt-athena builds the curated ones), drop tables
    only in the curated database."""
    region = settings.require_aws().region
    glue_prefix = f"arn:aws:glue:{region}:{account_id}"
    raw, curated = settings.raw_database, settings.curated_database
    return [
        {
            "Sid": "Catalog",
            "Effect": "Allow",
            "Action": [*GLUE_READ_ACTIONS, *GLUE_WRITE_ACTIONS],
            "Resource": [
                f"{glue_prefix}:catalog",
                *(f"{glue_prefix}:database/{db}" for db in (raw, curated)),
                *(f"{glue_prefix}:table/{db}/*" for db in (raw, curated)),
            ],
        },
        {
            "Sid": "CuratedTableDrops",
            "Effect": "Allow",
            "Action": list(GLUE_DROP_ACTIONS),
            "Resource": [
                f"{glue_prefix}:catalog",
                f"{glue_prefix}:database/{curated}",
                f"{glue_prefix}:table/{curated}/*",
            ],
        },
    ]
