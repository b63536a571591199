"""Deploy creates the production runtime on the moto server (ECR, Logs, EC2 security groups,
IAM, Cloud Map, RDS, Secrets Manager, ECS), reads it back, and a second deploy changes nothing."""

from __future__ import annotations

import io
import json
import logging

import boto3
import pytest
import yaml

from sf_lakehouse.runtime.deployed import print_instance_config
from sf_lakehouse_tests.moto_server import deploy_command
from sf_lakehouse_tests.test_aws_iam import as_list, effective_statements

ENV = "development"
ACCOUNT = "123456789012"
IMAGE = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/sf-lakehouse:2026-12-03"
CLUSTER = "sf-lakehouse-development"
SERVICES = [f"{CLUSTER}-webserver", f"{CLUSTER}-daemon", f"{CLUSTER}-code-server"]
EXECUTION_ROLE = "SfLakehouseTaskExecution-development"
PIPELINE_ROLE = "SfLakehousePipeline-development"
# Each role's actions; anything else in its policies fails the test.
ALLOWED_ACTIONS = {
    EXECUTION_ROLE: {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
    },
    PIPELINE_ROLE: {
        "secretsmanager:GetSecretValue",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTables",
        "glue:GetPartitions",
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:DeleteTable",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
        "athena:GetWorkGroup",
        "ecs:RegisterTaskDefinition",
        "ecs:DescribeTaskDefinition",
        "ecs:RunTask",
        "ecs:TagResource",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "logs:GetLogEvents",
        "iam:PassRole",
        # monitoring (sf_lakehouse.aws.iam.monitoring_statements)
        "cloudwatch:PutMetricData",
        "cloudwatch:GetMetricData",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    },
}
# The only actions with a `*` resource: AWS has no resource-level permission for them.
WILDCARD_RESOURCE_ALLOWED = {
    "ecr:GetAuthorizationToken",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "cloudwatch:PutMetricData",  # only in the namespace SfLakehouse (a condition)
    "cloudwatch:GetMetricData",
}


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def check_runtime_role(statements: list[dict], role: str) -> None:
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
            assert action in ALLOWED_ACTIONS[role], f"{role}: action outside the list: {action}"
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= WILDCARD_RESOURCE_ALLOWED, f"{actions} on resource *"
                continue
            assert f":{ACCOUNT}:" in resource or resource.startswith("arn:aws:s3:::"), resource
            # This environment's resources only (the catalog, the shared repository and the
            # alerts key, held to this environment's alias by a condition, aside).
            if resource.endswith(":key/*"):
                assert "development" in json.dumps(statement["Condition"]), statement
                continue
            assert "development" in resource or resource.endswith(
                (":catalog", "repository/sf-lakehouse")
            ), resource


def test_deploy_creates_the_runtime_and_a_second_deploy_changes_nothing(
    aws_endpoint, capsys
) -> None:
    assert deploy_command("deploy", "--environment", ENV, "--yes", "--image-uri", IMAGE) == 0
    out = capsys.readouterr().out
    for resource in [
        "ecr repository sf-lakehouse",
        "log group /sf-lakehouse/development",
        f"iam role {EXECUTION_ROLE}",
        f"iam role {PIPELINE_ROLE}",
        "rds instance sf-lakehouse-development",
        f"ecs cluster {CLUSTER}",
        *(f"ecs service {s}" for s in SERVICES),
    ]:
        assert f"create  {resource}" in out, resource

    ecr = boto3.client("ecr")
    [repo] = ecr.describe_repositories(repositoryNames=["sf-lakehouse"])["repositories"]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["imageTagMutability"] == "IMMUTABLE"
    [group] = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/sf-lakehouse/")[
        "logGroups"
    ]
    assert group["logGroupName"] == "/sf-lakehouse/development"
    assert group["retentionInDays"] == 30

    ec2 = boto3.client("ec2")
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["sf-lakehouse-development-*"]}]
        )["SecurityGroups"]
    }
    webserver = groups["sf-lakehouse-development-webserver"]
    tasks = groups["sf-lakehouse-development-tasks"]
    postgres = groups["sf-lakehouse-development-postgres"]
    [ui_rule] = webserver["IpPermissions"]
    assert (ui_rule["FromPort"], ui_rule["IpRanges"]) == (3000, [{"CidrIp": "10.0.0.0/8"}])
    [grpc_rule] = tasks["IpPermissions"]
    assert grpc_rule["FromPort"] == 4000 and grpc_rule["IpRanges"] == []
    assert {p["GroupId"] for p in grpc_rule["UserIdGroupPairs"]} == {
        tasks["GroupId"],
        webserver["GroupId"],
    }
    [pg_rule] = postgres["IpPermissions"]
    assert pg_rule["FromPort"] == 5432 and pg_rule["IpRanges"] == []

    [database] = boto3.client("rds").describe_db_instances(
        DBInstanceIdentifier="sf-lakehouse-development"
    )["DBInstances"]
    assert database["StorageEncrypted"] is True
    assert database["PubliclyAccessible"] is False
    assert database["DeletionProtection"] is True
    assert database["BackupRetentionPeriod"] == 7
    assert [g["VpcSecurityGroupId"] for g in database["VpcSecurityGroups"]] == [postgres["GroupId"]]

    iam = boto3.client("iam")
    for role in (EXECUTION_ROLE, PIPELINE_ROLE):
        assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
        check_runtime_role(effective_statements(iam, role), role)
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        [statement] = trust["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    pipeline = {s["Sid"]: s for s in effective_statements(iam, PIPELINE_ROLE)}
    assert pipeline["PassRuntimeRoles"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/{EXECUTION_ROLE}",
        f"arn:aws:iam::{ACCOUNT}:role/{PIPELINE_ROLE}",
    ]

    ecs = boto3.client("ecs")
    services = {
        s["serviceName"]: s
        for s in ecs.describe_services(cluster=CLUSTER, services=SERVICES)["services"]
    }
    assert set(services) == set(SERVICES)
    daemon = services[f"{CLUSTER}-daemon"]
    assert daemon["desiredCount"] == 1
    assert services[f"{CLUSTER}-code-server"]["serviceRegistries"]
    network = services[f"{CLUSTER}-webserver"]["networkConfiguration"]["awsvpcConfiguration"]
    assert network["securityGroups"] == [webserver["GroupId"]]
    definition = ecs.describe_task_definition(taskDefinition=f"{CLUSTER}-daemon")["taskDefinition"]
    [container] = definition["containerDefinitions"]
    assert container["image"] == IMAGE
    assert definition["taskRoleArn"].endswith(f"role/{PIPELINE_ROLE}")
    assert definition["executionRoleArn"].endswith(f"role/{EXECUTION_ROLE}")
    environment = {e["name"]: e["value"] for e in container["environment"]}
    instance = yaml.safe_load(environment["SF_LAKEHOUSE_DAGSTER_YAML"])
    launcher = instance["run_launcher"]["config"]
    network = launcher["run_task_kwargs"]["networkConfiguration"]["awsvpcConfiguration"]
    assert network["securityGroups"] == [tasks["GroupId"]]
    assert (
        instance["storage"]["postgres"]["postgres_db"]["hostname"]
        == database["Endpoint"]["Address"]
    )
    [secret] = container["secrets"]
    assert secret["name"] == "DAGSTER_POSTGRES_PASSWORD"
    password = json.loads(
        boto3.client("secretsmanager").get_secret_value(
            SecretId="sf-lakehouse/development/postgres"
        )["SecretString"]
    )["password"]
    assert len(password) >= 32
    assert password not in json.dumps(definition) and password not in out

    # instance-config prints what the deployed services use.
    printed = io.StringIO()
    assert print_instance_config(ENV, out=printed, err=io.StringIO()) == 0
    assert yaml.safe_load(printed.getvalue()) == instance

    assert deploy_command("deploy", "--environment", ENV, "--image-uri", IMAGE) == 0
    second = capsys.readouterr().out
    assert "Everything is as declared: nothing to change" in second, second


def test_without_an_image_deploy_prints_how_to_push_one(aws_endpoint, capsys) -> None:
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    out = capsys.readouterr().out
    uri = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/sf-lakehouse"
    assert f"note: image repository: {uri}" in out
    assert f"docker push {uri}:<tag>" in out
    assert "ecs service" not in out
    assert "create  ecs cluster sf-lakehouse-development" in out
