"""`sf-lakehouse deploy` against a real moto server on 127.0.0.1 (S3, Glue, IAM, STS, Secrets
Manager, Athena) and pyiceberg's Glue catalog on it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from sf_lakehouse.aws import deploy as deploy_module
from sf_lakehouse.aws.deploy import (
    DEFAULT_SCRIPT_PATH,
    DeployError,
    collect_credentials,
    plan_deploy,
)
from sf_lakehouse.aws.iam import GLUE_MANAGED_POLICY_ARN, INLINE_POLICY_NAME
from sf_lakehouse.cli import main
from sf_lakehouse.config import BUCKET_KINDS, REPO_ROOT, resolve_settings
from sf_lakehouse.lakehouse.tables import open_catalog

ENV = "development"
REGION = "eu-west-1"
PASSWORD = "s3cr3t-Passw0rd-value"
TOKEN = "tok3n-Value-XYZ"
SF_OPTIONS = [
    "--sf-username",
    "etl@example.com",
    "--sf-password",
    PASSWORD,
    "--sf-token",
    TOKEN,
    "--sf-domain",
    "test",
]


@pytest.fixture
def settings():
    return resolve_settings(ENV)


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    """The moto server's request log would mix with the command's stderr."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Glue entrypoint; a placeholder in tmp_path only when the package has none yet."""
    if DEFAULT_SCRIPT_PATH.is_file():
        return DEFAULT_SCRIPT_PATH
    placeholder = tmp_path / "glue_entrypoint.py"
    placeholder.write_text("print('placeholder')\n", encoding="utf-8")
    monkeypatch.setattr(deploy_module, "DEFAULT_SCRIPT_PATH", placeholder)
    return placeholder


def deploy(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["deploy", "--environment", ENV, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plan_lines(out: str) -> dict[str, str]:
    """resource -> action, from the printed plan."""
    actions = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("create", "update", "none"):
            resource = line.split("  (")[0].strip().split(None, 1)[1]
            actions[resource] = parts[0]
    return actions


def test_deploy_twice_second_run_changes_nothing(aws_endpoint, capsys, settings) -> None:
    code, out, err = deploy(capsys, *SF_OPTIONS)
    assert code == 0, err
    first = plan_lines(out)
    assert set(first.values()) == {"create"}, out
    # 4 buckets, 2 databases, role, secret, workgroup, 2 tables, 3 objects, job = 15
    assert len(first) == 15
    assert "Applied 15 change(s)" in out

    code, out, err = deploy(capsys)
    assert code == 0, err
    second = plan_lines(out)
    assert second.keys() == first.keys()
    assert set(second.values()) == {"none"}, out
    assert "nothing to change" in out
    assert "unchanged (no credentials given)" in out


def test_dry_run_on_a_fresh_account_creates_nothing(aws_endpoint, capsys, settings) -> None:
    code, out, err = deploy(capsys, "--dry-run", *SF_OPTIONS)
    assert code == 0, err
    assert "Dry run: nothing was changed (15 change(s) planned)" in out
    assert set(plan_lines(out).values()) == {"create"}
    assert f"s3 bucket {settings.require_aws().bucket('raw')}" in out
    assert "password: ***" in out
    assert PASSWORD not in out + err and TOKEN not in out + err

    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert boto3.client("glue").get_databases()["DatabaseList"] == []
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_deploy_provisions_every_resource(aws_endpoint, capsys, settings) -> None:
    code, _, err = deploy(capsys, *SF_OPTIONS)
    assert code == 0, err
    aws = settings.require_aws()
    s3 = boto3.client("s3")

    for kind in BUCKET_KINDS:
        bucket = aws.bucket(kind)
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }

    glue = boto3.client("glue")
    for database in (settings.raw_database, settings.curated_database):
        found = glue.get_database(Name=database)["Database"]
        assert found["LocationUri"] == settings.database_location(database)
        assert found["Description"]
    assert settings.database_location(settings.raw_database) == (
        "s3://lumata-lakehouse-development-raw/sf_raw_development"
    )

    workgroup = boto3.client("athena").get_work_group(WorkGroup=aws.athena_workgroup)["WorkGroup"]
    config = workgroup["Configuration"]
    assert config["ResultConfiguration"]["OutputLocation"] == aws.athena_results_location
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"


def test_glue_role_is_least_privilege(aws_endpoint, capsys, settings) -> None:
    assert deploy(capsys)[0] == 0
    aws = settings.require_aws()
    iam = boto3.client("iam")
    role = iam.get_role(RoleName="GlueServiceRole-development")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "glue.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [GLUE_MANAGED_POLICY_ARN]
    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=INLINE_POLICY_NAME)
    statements = policy["PolicyDocument"]["Statement"]

    resources_by_service: dict[str, set[str]] = {}
    for statement in statements:
        for action in statement["Action"]:
            resources_by_service.setdefault(action.split(":")[0], set()).update(
                statement["Resource"]
            )
    for service in ("s3", "glue", "secretsmanager"):
        assert "*" not in resources_by_service[service]
    assert set(resources_by_service["s3"]) == {
        f"arn:aws:s3:::{aws.bucket(k)}{suffix}" for k in BUCKET_KINDS for suffix in ("", "/*")
    }
    glue_resources = resources_by_service["glue"]
    assert "arn:aws:glue:eu-west-1:123456789012:catalog" in glue_resources
    assert all(
        r.endswith(":catalog") or "sf_raw_development" in r or "sf_curated_development" in r
        for r in glue_resources
    )
    assert resources_by_service["secretsmanager"] == {
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:salesforce/development/credentials-*"
    }
    everything = json.dumps(policy["PolicyDocument"])
    for other in ("staging", "prod", "local"):
        for name in (f"lumata-lakehouse-{other}", f"_{other}", f"salesforce/{other}/"):
            assert name not in everything

    # A drifted inline policy is put back.
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName=INLINE_POLICY_NAME,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    code, out, _ = deploy(capsys)
    assert code == 0
    assert plan_lines(out)[f"iam role {role['RoleName']}"] == "update"
    assert "inline policy differs" in out
    restored = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=INLINE_POLICY_NAME)
    assert restored["PolicyDocument"] == policy["PolicyDocument"]


def test_secret_round_trip_and_password_change(aws_endpoint, capsys, settings) -> None:
    code, out, err = deploy(capsys, *SF_OPTIONS)
    assert code == 0, err
    secret_id = settings.salesforce.secret_id
    assert plan_lines(out)[f"secret {secret_id}"] == "create"
    sm = boto3.client("secretsmanager")
    stored = json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    assert stored == {
        "username": "etl@example.com",
        "password": PASSWORD,
        "security_token": TOKEN,
        "domain": "test",
    }
    assert PASSWORD not in out + err and TOKEN not in out + err

    # The same values again: nothing to change.
    code, out, err = deploy(capsys, *SF_OPTIONS)
    assert code == 0
    assert plan_lines(out)[f"secret {secret_id}"] == "none"
    assert "nothing to change" in out

    new_password = "An0ther-Secret-Value"
    options = [new_password if v == PASSWORD else v for v in SF_OPTIONS]
    code, out, err = deploy(capsys, *options)
    assert code == 0, err
    assert plan_lines(out)[f"secret {secret_id}"] == "update"
    assert "changed: password" in out
    assert "password: ***" in out
    assert new_password not in out + err and PASSWORD not in out + err
    stored = json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    assert stored["password"] == new_password


def test_credentials_file_with_oauth_fields(aws_endpoint, capsys, settings, tmp_path) -> None:
    path = tmp_path / "creds.json"
    values = {"client_id": "3MVG9-client", "client_secret": "oauth-secret-123", "domain": "acme.my"}
    path.write_text(json.dumps(values), encoding="utf-8")
    code, out, err = deploy(capsys, "--credentials-file", str(path))
    assert code == 0, err
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=settings.salesforce.secret_id)
    assert json.loads(stored["SecretString"]) == values
    assert "oauth-secret-123" not in out + err and "3MVG9-client" not in out + err


def test_credential_input_is_validated_before_any_aws_call(aws_endpoint, capsys, tmp_path) -> None:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"username": "u", "pasword": "typo", "domain": "login"}))
    code, _, err = deploy(capsys, "--credentials-file", str(path))
    assert code == 2
    assert "unknown key(s) pasword" in err
    assert "typo" not in err

    path.write_text(json.dumps({"username": "u", "password": "p"}))
    code, _, err = deploy(capsys, "--credentials-file", str(path))
    assert code == 2
    assert "missing security_token" in err and "client_id, client_secret" in err

    # No TTY here: a missing password is an error naming the options, not a prompt.
    code, _, err = deploy(capsys, "--sf-username", "u")
    assert code == 2
    assert "--sf-password and --sf-token" in err
    assert boto3.client("s3").list_buckets()["Buckets"] == []

    prompted = collect_credentials(
        username="u", interactive=True, prompt=lambda label: f"typed-{label.split()[1]}"
    )
    assert prompted == {
        "username": "u",
        "password": "typed-password:",
        "security_token": "typed-security",
        "domain": "login",
    }
    with pytest.raises(DeployError, match="not both"):
        collect_credentials(username="u", credentials_file=path)


def test_missing_secret_is_reported_and_the_rest_deploys(aws_endpoint, capsys, settings) -> None:
    code, out, err = deploy(capsys)
    assert code == 0
    assert "MISSING" in out
    assert "warning: secret salesforce/development/credentials is missing" in err
    assert "--sf-username" in err
    assert boto3.client("glue").get_job(JobName=settings.require_aws().glue_job_name)


def test_iceberg_tables_load_through_the_glue_catalog(aws_endpoint, capsys, settings) -> None:
    assert deploy(capsys)[0] == 0
    catalog = open_catalog(settings.catalog_properties())

    raw = catalog.load_table(settings.raw_table_identifier)
    assert [(f.name, str(f.transform)) for f in raw.spec().fields] == [("_extracted_date", "day")]
    assert raw.properties["write.parquet.compression-codec"] == "snappy"
    assert raw.properties["write.target-file-size-bytes"] == str(128 * 1024 * 1024)
    columns = {f.name: str(f.field_type) for f in raw.schema().fields}
    assert columns["id"] == "string"
    assert columns["isactive"] == "boolean"
    assert columns["systemmodstamp"] == "timestamp"
    assert columns["createddate"] == "timestamp"
    assert columns["_extracted_at"] == "timestamp"
    assert columns["_run_id"] == "string"
    assert raw.location().startswith("s3://lumata-lakehouse-development-raw/")

    dim = catalog.load_table(settings.dimension_identifier)
    assert [(f.name, str(f.transform)) for f in dim.spec().fields] == [
        ("is_current", "identity"),
        ("division", "identity"),
    ]
    assert dim.properties["write.parquet.compression-codec"] == "zstd"
    assert dim.properties["write.target-file-size-bytes"] == str(256 * 1024 * 1024)
    assert {f.name for f in dim.schema().fields} >= {
        "scd_id",
        "user_id",
        "effective_from",
        "effective_to",
        "is_current",
    }
    assert dim.location().startswith("s3://lumata-lakehouse-development-staging/")

    # Drifted properties are fixed in place (the table, and so its data, stays).
    with dim.transaction() as tx:
        tx.set_properties({"write.parquet.compression-codec": "gzip"})
    code, out, _ = deploy(capsys)
    assert code == 0
    assert plan_lines(out)[f"iceberg table {settings.dimension_identifier}"] == "update"
    reloaded = catalog.load_table(settings.dimension_identifier)
    assert reloaded.properties["write.parquet.compression-codec"] == "zstd"
    assert reloaded.metadata.table_uuid == dim.metadata.table_uuid


def test_glue_job_and_script_upload_only_when_changed(
    aws_endpoint, capsys, settings, tmp_path
) -> None:
    assert deploy(capsys)[0] == 0
    aws = settings.require_aws()
    job = boto3.client("glue").get_job(JobName=aws.glue_job_name)["Job"]
    assert job["Role"] == "arn:aws:iam::123456789012:role/GlueServiceRole-development"
    assert job["Command"]["ScriptLocation"] == aws.glue_script_location
    arguments = job["DefaultArguments"]
    assert arguments["--SF_LAKEHOUSE_ENV"] == ENV
    assert "simple-salesforce==1.12.10" in arguments["--additional-python-modules"]
    assert "pyiceberg[pyarrow]==0.11.1" in arguments["--additional-python-modules"]
    assert arguments["--extra-py-files"].endswith("/glue/sf_lakehouse.zip")

    s3 = boto3.client("s3")
    bucket, key = aws.glue_script_location.removeprefix("s3://").split("/", 1)
    assert bucket == aws.bucket("scripts")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == deploy_module.DEFAULT_SCRIPT_PATH.read_bytes()

    def versions() -> int:
        return len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"])

    assert versions() == 1
    code, out, _ = deploy(capsys)
    assert code == 0
    assert plan_lines(out)[f"s3 object {aws.glue_script_location}"] == "none"
    assert versions() == 1

    # A changed script is uploaded again (and only the script).
    changed = tmp_path / "entrypoint_v2.py"
    changed.write_bytes(deploy_module.DEFAULT_SCRIPT_PATH.read_bytes() + b"\n# v2\n")
    plan = plan_deploy(settings, script_path=changed)
    pending = {c.resource: c.action for c in plan.pending}
    assert pending == {f"s3 object {aws.glue_script_location}": "update"}
    deploy_module.apply_plan(plan)
    assert versions() == 2
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().endswith(b"# v2\n")


def test_drifted_bucket_job_and_workgroup_are_planned_as_updates(
    aws_endpoint, capsys, settings
) -> None:
    assert deploy(capsys)[0] == 0
    aws = settings.require_aws()
    s3 = boto3.client("s3")
    raw = aws.bucket("raw")
    s3.put_bucket_versioning(Bucket=raw, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=raw)
    # moto has no UpdateJob / UpdateWorkGroup: drift is made by recreating them, and checked at
    # plan level (a dry run) for those two.
    glue = boto3.client("glue")
    job = glue.get_job(JobName=aws.glue_job_name)["Job"]
    glue.delete_job(JobName=aws.glue_job_name)
    glue.create_job(
        Name=aws.glue_job_name,
        Role=job["Role"],
        Command=job["Command"],
        DefaultArguments={**job["DefaultArguments"], "--SF_LAKEHOUSE_ENV": "prod"},
    )
    athena = boto3.client("athena")
    athena.delete_work_group(WorkGroup=aws.athena_workgroup)
    athena.create_work_group(
        Name=aws.athena_workgroup,
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://elsewhere/"}},
    )

    code, out, _ = deploy(capsys, "--dry-run")
    assert code == 0
    actions = plan_lines(out)
    assert actions[f"s3 bucket {raw}"] == "update"
    assert "set public access block, versioning" in out
    assert actions[f"glue job {aws.glue_job_name}"] == "update"
    assert actions[f"athena workgroup {aws.athena_workgroup}"] == "update"
    assert "results location s3://lumata-lakehouse-development-athena-results/" in out
    assert s3.get_bucket_versioning(Bucket=raw)["Status"] == "Suspended"

    # Buckets are fixed for real.
    plan = plan_deploy(settings)
    bucket_step = next(s for s in plan.steps if s.change.resource == f"s3 bucket {raw}")
    bucket_step.apply()
    assert s3.get_bucket_versioning(Bucket=raw)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=raw)["PublicAccessBlockConfiguration"][
        "BlockPublicAcls"
    ]


def test_local_and_unknown_environments_are_clear_errors(capsys) -> None:
    assert main(["deploy", "--environment", "local"]) == 2
    err = capsys.readouterr().err
    assert "'local' is not an AWS environment" in err
    assert "development, prod, staging" in err

    assert main(["deploy", "--environment", "qa"]) == 2
    err = capsys.readouterr().err
    assert "unknown environment 'qa'" in err
    assert "Traceback" not in err


def test_aws_errors_are_one_line_with_code_and_exit_1(
    aws_endpoint, capsys, settings, monkeypatch
) -> None:
    # A real ClientError: the secret is scheduled for deletion, so its value cannot be read.
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=settings.salesforce.secret_id, SecretString="{}")
    sm.delete_secret(SecretId=settings.salesforce.secret_id, RecoveryWindowInDays=7)
    code, out, err = deploy(capsys, *SF_OPTIONS)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: secret salesforce/development/credentials: AWS error ")
    assert "InvalidRequestException" in lines[0]
    assert PASSWORD not in out + err

    # Nothing listens: STS is the first call.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, out, err = deploy(capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: sts caller identity: AWS error EndpointConnectionError")
    assert "Traceback" not in err


def test_cli_subprocess_dry_run(aws_endpoint, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sf_lakehouse.cli", "deploy", "--environment", ENV, "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Deploy plan for environment 'development' (account 123456789012" in result.stdout
    assert "Dry run: nothing was changed" in result.stdout
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 120
