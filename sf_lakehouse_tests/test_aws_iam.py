"""The Glue role's effective permissions, read back from moto after a deploy: no managed policy,
no `*` resource outside a short allow-list, no action outside what the job does."""

from __future__ import annotations

import json
import logging
import urllib.parse

import boto3
import pytest

from sf_lakehouse.aws.iam import GLUE_MANAGED_POLICY_ARN, INLINE_POLICY_NAME
from sf_lakehouse_tests.moto_server import deploy_command

ENV = "development"
ACCOUNT = "123456789012"
ROLE = "GlueServiceRole-development"
# Everything the extraction job may do; anything else in the role's policies fails the test.
ALLOWED_ACTIONS = {
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartitions",
    "glue:CreateTable",
    "glue:UpdateTable",
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "cloudwatch:PutMetricData",
}
# The only actions that may have a `*` resource (no resource-level permissions exist for them),
# and the condition each must carry.
WILDCARD_RESOURCE_ALLOWED = {
    "cloudwatch:PutMetricData": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
}

# With Lake Formation: its temporary credentials for the data (no resource-level permission).
LAKE_FORMATION_ACTIONS = {"lakeformation:GetDataAccess"}
LAKE_FORMATION_WILDCARDS = {"lakeformation:GetDataAccess": None}


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _document(value: object) -> dict:
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    assert isinstance(value, dict)
    return value


def effective_statements(iam: object, role: str) -> list[dict]:
    """Every Allow/Deny statement that applies to the role: attached managed + inline."""
    statements = []
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
        )
        statements += _document(version["PolicyVersion"]["Document"])["Statement"]
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        statements += document["Statement"]
    return statements


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def check_least_privilege(statements: list[dict], lake_formation: bool = False) -> None:
    allowed_actions = ALLOWED_ACTIONS | (LAKE_FORMATION_ACTIONS if lake_formation else set())
    wildcards = WILDCARD_RESOURCE_ALLOWED | (LAKE_FORMATION_WILDCARDS if lake_formation else {})
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = as_list(statement["Action"])
        resources = as_list(statement["Resource"])
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
            assert action in allowed_actions, f"action outside the allow-list: {action}"
        for resource in resources:
            if resource == "*":
                for action in actions:
                    assert action in wildcards, f"{action} on resource *"
                    assert statement.get("Condition") == wildcards[action]
                continue
            assert f":{ACCOUNT}:" in resource or resource.startswith("arn:aws:s3:::"), resource
            assert ":eu-west-1:" in resource or resource.startswith("arn:aws:s3:::"), resource


def test_glue_role_has_no_managed_policy_and_no_wildcard(aws_endpoint, capsys) -> None:
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    iam = boto3.client("iam")
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    statements = effective_statements(iam, ROLE)
    check_least_privilege(statements)

    by_sid = {s["Sid"]: s for s in statements}
    glue = by_sid["RawCatalog"]
    assert set(glue["Action"]) == {
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTables",
        "glue:GetPartitions",
        "glue:CreateTable",
        "glue:UpdateTable",
    }
    assert glue["Resource"] == [
        f"arn:aws:glue:eu-west-1:{ACCOUNT}:catalog",
        f"arn:aws:glue:eu-west-1:{ACCOUNT}:database/sf_raw_development",
        f"arn:aws:glue:eu-west-1:{ACCOUNT}:table/sf_raw_development/*",
    ]
    assert by_sid["RawTableObjects"]["Resource"] == [
        "arn:aws:s3:::lumata-lakehouse-development-raw/sf_raw_development/*"
    ]
    assert by_sid["JobArtifacts"]["Action"] == ["s3:GetObject"]
    assert by_sid["JobArtifacts"]["Resource"] == [
        "arn:aws:s3:::lumata-lakehouse-development-scripts/glue/*"
    ]
    assert by_sid["PipesMessages"]["Resource"] == [
        "arn:aws:s3:::lumata-lakehouse-development-scripts/pipes/*"
    ]
    assert by_sid["SalesforceSecret"]["Resource"] == [
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:salesforce/development/credentials-??????"
    ]
    assert by_sid["GlueJobLogs"]["Resource"] == [
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws-glue/jobs/*",
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws-glue/jobs/*:log-stream:*",
    ]
    everything = json.dumps(statements)
    for absent in ("athena:", "Delete", "CreateDatabase", "sf_curated_", "-staging", "-athena"):
        assert absent not in everything
    for other in ("staging", "prod", "local"):
        assert f"_{other}" not in everything and f"salesforce/{other}/" not in everything

    trust = _document(iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "glue.amazonaws.com"}
    # Regression (issue 16, item 5): any Glue job of the account could assume the role.
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:glue:eu-west-1:{ACCOUNT}:job/sf-extraction-{ENV}"},
    }


def test_the_lake_formation_variant_of_the_role_is_least_privilege(
    aws_endpoint, monkeypatch
) -> None:
    """With `aws.lake_formation: true` the role adds Lake Formation's data access, and only
    that: the allow-list test of the IAM-only role, read back from moto, for this variant."""
    from sf_lakehouse.aws.deploy import run as deploy_run
    from sf_lakehouse.aws.options import hardening_options
    from sf_lakehouse.config import load_config, resolve_settings

    config = load_config()
    config["environments"][ENV]["aws"] |= {"lake_formation": True}
    options = hardening_options(resolve_settings(ENV, config=config))
    monkeypatch.setattr(deploy_run, "hardening_options", lambda settings: options)
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    iam = boto3.client("iam")
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    statements = effective_statements(iam, ROLE)
    check_least_privilege(statements, lake_formation=True)
    [data_access] = [s for s in statements if "lakeformation:GetDataAccess" in s["Action"]]
    assert data_access["Action"] == ["lakeformation:GetDataAccess"]
    # Without the flag the same checker refuses that statement.
    with pytest.raises(AssertionError, match="outside the allow-list"):
        check_least_privilege([data_access])


def test_the_checker_fails_on_wildcards_and_unlisted_actions() -> None:
    with pytest.raises(AssertionError, match="wildcard action"):
        check_least_privilege([{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}])
    with pytest.raises(AssertionError, match="athena:StartQueryExecution"):
        check_least_privilege(
            [{"Effect": "Allow", "Action": "athena:StartQueryExecution", "Resource": "x"}]
        )
    with pytest.raises(AssertionError, match="on resource"):
        check_least_privilege([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])


def test_upgrade_detaches_the_managed_policy_and_restores_the_inline_one(
    aws_managed_policies, capsys
) -> None:
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    capsys.readouterr()
    iam = boto3.client("iam")
    # What an earlier deploy left: AWSGlueServiceRole attached, a wide inline policy.
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=GLUE_MANAGED_POLICY_ARN)
    iam.put_role_policy(
        RoleName=ROLE,
        PolicyName=INLINE_POLICY_NAME,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    with pytest.raises(AssertionError):
        check_least_privilege(effective_statements(iam, ROLE))

    assert deploy_command("deploy", "--environment", ENV, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"update  iam role {ROLE}  (detach AWSGlueServiceRole, inline policy differs)" in out

    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    check_least_privilege(effective_statements(iam, ROLE))
    capsys.readouterr()
    assert deploy_command("deploy", "--environment", ENV) == 0
    assert f"none    iam role {ROLE}" in capsys.readouterr().out


def test_policies_deploy_did_not_put_there_are_warned_about(aws_endpoint, capsys) -> None:
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    boto3.client("iam").put_role_policy(
        RoleName=ROLE,
        PolicyName="added-by-hand",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    capsys.readouterr()
    assert deploy_command("deploy", "--environment", ENV) == 0
    err = capsys.readouterr().err
    assert f"warning: iam role {ROLE} has policies deploy did not put there (added-by-hand)" in err


def test_the_pipeline_identity_may_drop_curated_tables_only() -> None:
    """Regression (issue 16, item 3): the README gave the pipeline identity glue:DeleteTable on
    both databases; raw history cannot be rebuilt, so no statement may drop a raw table."""
    from sf_lakehouse.aws.iam import pipeline_catalog_statements
    from sf_lakehouse.config import resolve_settings

    statements = pipeline_catalog_statements(resolve_settings(ENV), ACCOUNT)
    drops = [s for s in statements if "glue:DeleteTable" in s["Action"]]
    assert drops
    for statement in drops:
        assert not [r for r in statement["Resource"] if "sf_raw_development" in r]
        assert (
            f"arn:aws:glue:eu-west-1:{ACCOUNT}:table/sf_curated_development/*"
            in (statement["Resource"])
        )
    writes = {a for s in statements for a in s["Action"]}
    assert {"glue:CreateTable", "glue:UpdateTable", "glue:GetTable"} <= writes
