"""`sf-lakehouse deploy` against a real moto server on 127.0.0.1 (S3, Glue, IAM, STS, Secrets
Manager, Athena) and pyiceberg's Glue catalog on it; Salesforce is the emulator (User only)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from sf_lakehouse.aws import deploy as deploy_package
from sf_lakehouse.aws.deploy import DEFAULT_SCRIPT_PATH, plan_deploy
from sf_lakehouse.aws.deploy.s3 import TLS_ONLY_SID
from sf_lakehouse.config import BUCKET_KINDS, REPO_ROOT, resolve_settings
from sf_lakehouse.extraction import raw_table_schema
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse.salesforce.client import ConnectionSettings, connect
from sf_lakehouse.salesforce.types import select_fields
from sf_lakehouse_tests import moto_server
from sf_lakehouse_tests.moto_server import deploy_command, emulator_secret

user_org = moto_server.user_org  # a fixture

ENV = "development"
REGION = "eu-west-1"
ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    """The moto server's request log would mix with the command's stderr."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def deploy(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = deploy_command("deploy", "--environment", ENV, *args)
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


def test_deploy_twice_second_run_changes_nothing(aws_endpoint, capsys, user_org) -> None:
    code, out, err = deploy(capsys, "--yes", "--credentials-file", str(user_org.credentials))
    assert code == 0, err
    first = plan_lines(out)
    assert set(first.values()) == {"create"}, out
    # 4 buckets, 2 databases, role, secret, workgroup, 1 raw table (User), script, package,
    # config, 1 object spec, the job's wheelhouse, job = 16; monitoring: the topic's key, the
    # topic, the dashboard,
    # 4 alarms of User + 2 of the environment, the Glue job rule = 10
    assert len(first) == 26, out
    assert "Applied 26 change(s)" in out
    assert "are created by dbt's first build on Athena" in out

    # No terminal and no --yes: fine, there is nothing to apply.
    code, out, err = deploy(capsys)
    assert code == 0, err
    second = plan_lines(out)
    assert second.keys() == first.keys()
    assert set(second.values()) == {"none"}, out
    assert "nothing to change" in out
    assert "unchanged (no credentials given), login works" in out


def test_without_a_terminal_nothing_changes_unless_yes(aws_endpoint, capsys, user_org) -> None:
    code, out, _ = deploy(capsys, "--credentials-file", str(user_org.credentials))
    assert code == 1
    assert "Not a terminal: nothing was changed; pass --yes to apply these 26 change(s)" in out
    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_dry_run_on_a_fresh_account_creates_nothing(aws_endpoint, capsys, user_org) -> None:
    code, out, err = deploy(capsys, "--dry-run", "--credentials-file", str(user_org.credentials))
    assert code == 0, err
    assert "Dry run: nothing was changed (26 change(s) planned)" in out
    assert set(plan_lines(out).values()) == {"create"}
    assert "password: ***" in out and "security_token: ***" in out
    secret = emulator_secret(user_org.emulator)
    assert secret["password"] not in out + err and secret["security_token"] not in out + err

    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert boto3.client("glue").get_databases()["DatabaseList"] == []
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_buckets_are_tls_only_with_lifecycle_rules(aws_endpoint, capsys) -> None:
    code, _, err = deploy(capsys, "--yes")
    assert code == 0, err
    aws = resolve_settings(ENV).require_aws()
    s3 = boto3.client("s3")
    for kind in BUCKET_KINDS:
        bucket = aws.bucket(kind)
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4

        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        [tls] = [s for s in policy["Statement"] if s["Sid"] == TLS_ONLY_SID]
        assert tls["Effect"] == "Deny"
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert set(tls["Resource"]) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}

        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        noncurrent = rules["sf-lakehouse-expire-noncurrent-versions"]
        assert noncurrent["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
        multipart = rules["sf-lakehouse-abort-incomplete-multipart-uploads"]
        assert multipart["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
        results = rules.get("sf-lakehouse-expire-athena-results")
        if kind == "athena-results":
            assert results["Expiration"]["Days"] == 30
        else:
            assert results is None

    workgroup = boto3.client("athena").get_work_group(WorkGroup=aws.athena_workgroup)["WorkGroup"]
    config = workgroup["Configuration"]
    assert config["ResultConfiguration"]["OutputLocation"] == aws.athena_results_location
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_S3"
    }
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"

    # A foreign bucket-policy statement and lifecycle rule survive; a removed rule comes back.
    raw = aws.bucket("raw")
    policy = json.loads(s3.get_bucket_policy(Bucket=raw)["Policy"])
    policy["Statement"] = [
        {
            "Sid": "AuditorRead",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{raw}/*",
        }
    ]
    s3.put_bucket_policy(Bucket=raw, Policy=json.dumps(policy))
    s3.put_bucket_lifecycle_configuration(
        Bucket=raw,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "keep-me",
                    "Filter": {"Prefix": "tmp/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 1},
                }
            ]
        },
    )
    code, out, err = deploy(capsys, "--yes")
    assert code == 0, err
    assert plan_lines(out)[f"s3 bucket {raw}"] == "update"
    assert "set TLS-only policy, lifecycle rules" in out
    sids = {s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=raw)["Policy"])["Statement"]}
    assert sids == {"AuditorRead", TLS_ONLY_SID}
    ids = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=raw)["Rules"]}
    assert ids == {
        "keep-me",
        "sf-lakehouse-expire-noncurrent-versions",
        "sf-lakehouse-abort-incomplete-multipart-uploads",
    }
    assert set(plan_lines(deploy(capsys)[1]).values()) == {"none"}


def test_every_call_on_an_existing_bucket_names_the_expected_owner(
    aws_endpoint, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    boto3.setup_default_session()
    calls: list[tuple[str, dict]] = []

    def record(params: dict, model, **_: object) -> None:
        calls.append((model.name, dict(params)))

    boto3.DEFAULT_SESSION.events.register("provide-client-params.s3", record)
    assert deploy(capsys, "--yes")[0] == 0
    assert deploy(capsys)[0] == 0
    names = {name for name, _ in calls}
    assert {"HeadBucket", "PutBucketPolicy", "GetBucketLifecycleConfiguration"} <= names
    assert {"PutObject", "HeadObject", "PutPublicAccessBlock"} <= names
    unchecked = [name for name, params in calls if params.get("ExpectedBucketOwner") != ACCOUNT]
    assert set(unchecked) <= {"CreateBucket", "ListBuckets"}, unchecked


def test_raw_tables_are_typed_from_describe_and_dimensions_left_to_dbt(
    aws_endpoint, capsys, user_org
) -> None:
    code, out, err = deploy(capsys, "--yes", "--credentials-file", str(user_org.credentials))
    assert code == 0, err
    settings = resolve_settings(ENV)
    [spec] = settings.objects
    catalog = open_catalog(settings.catalog_properties())
    raw = catalog.load_table(settings.table_identifier(spec.raw_asset_key))
    assert [(f.name, str(f.transform)) for f in raw.spec().fields] == [("_extracted_date", "day")]
    assert raw.properties["write.parquet.compression-codec"] == "snappy"
    assert raw.location().startswith("s3://lumata-lakehouse-development-raw/")

    # Exactly the extraction's schema, from the org's describe (custom fields included).
    client = connect(ConnectionSettings(**emulator_secret(user_org.emulator)))
    fields = select_fields(client.describe("User"), spec.extracted_fields, "User")
    expected = raw_table_schema(fields)
    assert raw.schema().as_arrow().names == expected.names
    columns = {f.name: str(f.field_type) for f in raw.schema().fields}
    assert columns["isactive"] == "boolean"
    assert columns["systemmodstamp"] == "timestamp"
    assert columns["audit_phase__c"] == "string"
    assert columns["_extracted_at"] == "timestamp"

    # The dimension is dbt's to create.
    assert (
        boto3.client("glue").get_tables(DatabaseName=settings.curated_database)["TableList"] == []
    )

    # Drifted properties are fixed in place (the table, and so its data, stays).
    with raw.transaction() as tx:
        tx.set_properties({"write.parquet.compression-codec": "gzip"})
    code, out, _ = deploy(capsys, "--yes")
    assert code == 0
    assert plan_lines(out)[f"iceberg table {raw.name()[-2]}.{raw.name()[-1]}"] == "update"
    reloaded = catalog.load_table(settings.table_identifier(spec.raw_asset_key))
    assert reloaded.properties["write.parquet.compression-codec"] == "snappy"
    assert reloaded.metadata.table_uuid == raw.metadata.table_uuid


def test_without_a_login_raw_tables_are_reported_not_guessed(aws_endpoint, capsys) -> None:
    code, out, err = deploy(capsys, "--yes")
    assert code == 0, err
    assert "MISSING" in out
    assert "warning: secret salesforce/development/credentials is missing" in err
    assert "iceberg table sf_raw_development.sf_user not checked" in err
    settings = resolve_settings(ENV)
    assert boto3.client("glue").get_tables(DatabaseName=settings.raw_database)["TableList"] == []
    assert boto3.client("glue").get_job(JobName=settings.require_aws().glue_job_name)


def test_glue_job_carries_the_object_specs_and_uploads_only_changes(
    aws_endpoint, capsys, tmp_path
) -> None:
    assert deploy(capsys, "--yes")[0] == 0
    settings = resolve_settings(ENV)
    aws = settings.require_aws()
    job = boto3.client("glue").get_job(JobName=aws.glue_job_name)["Job"]
    assert aws.glue_job_name == "sf-extraction-development"
    assert job["Role"] == f"arn:aws:iam::{ACCOUNT}:role/GlueServiceRole-development"
    assert (
        job["Command"]["ScriptLocation"]
        == "s3://lumata-lakehouse-development-scripts/glue/sf_extraction.py"
    )
    arguments = job["DefaultArguments"]
    assert arguments["--SF_LAKEHOUSE_ENV"] == ENV
    assert arguments["--SF_LAKEHOUSE_CONFIG"] == "pipeline-config.yml"
    # Installed offline from the wheelhouse deploy uploaded (test_glue_wheelhouse.py).
    assert arguments["--python-modules-installer-option"] == "--no-index"
    modules = arguments["--additional-python-modules"].split(",")
    assert modules and all(
        m.startswith(f"s3://{aws.bucket('scripts')}/glue/wheelhouse/") for m in modules
    )
    assert arguments["--extra-py-files"].endswith("/glue/sf_lakehouse.zip")
    folder = "s3://lumata-lakehouse-development-scripts/glue"
    assert arguments["--extra-files"].split(",") == [
        f"{folder}/pipeline-config.yml",
        f"{folder}/objects/account.yml",
        f"{folder}/objects/opportunity.yml",
        f"{folder}/objects/user.yml",
    ]
    s3 = boto3.client("s3")
    bucket = aws.bucket("scripts")
    spec = s3.get_object(Bucket=bucket, Key="glue/objects/account.yml")["Body"].read()
    assert spec == (REPO_ROOT / "config" / "objects" / "account.yml").read_bytes()
    body = s3.get_object(Bucket=bucket, Key="glue/sf_extraction.py")["Body"].read()
    assert body == DEFAULT_SCRIPT_PATH.read_bytes()

    def versions() -> int:
        return len(
            s3.list_object_versions(Bucket=bucket, Prefix="glue/sf_extraction.py")["Versions"]
        )

    assert versions() == 1
    code, out, _ = deploy(capsys)
    assert code == 0
    assert plan_lines(out)[f"s3 object {aws.glue_script_location}"] == "none"

    # A changed script is uploaded again (and only the script).
    changed = tmp_path / "entrypoint_v2.py"
    changed.write_bytes(DEFAULT_SCRIPT_PATH.read_bytes() + b"\n# v2\n")
    plan = plan_deploy(settings, script_path=changed)
    assert {c.resource: c.action for c in plan.pending} == {
        f"s3 object {aws.glue_script_location}": "update"
    }
    deploy_package.apply_plan(plan)
    assert versions() == 2


def test_drifted_bucket_job_and_workgroup_are_planned_as_updates(aws_endpoint, capsys) -> None:
    assert deploy(capsys, "--yes")[0] == 0
    settings = resolve_settings(ENV)
    aws = settings.require_aws()
    s3 = boto3.client("s3")
    raw = aws.bucket("raw")
    s3.put_bucket_versioning(Bucket=raw, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=raw)
    s3.delete_bucket_policy(Bucket=raw)
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
        Configuration={"ResultConfiguration": {"OutputLocation": aws.athena_results_location}},
    )

    code, out, _ = deploy(capsys, "--dry-run")
    assert code == 0
    actions = plan_lines(out)
    assert actions[f"s3 bucket {raw}"] == "update"
    assert "set versioning, public access block, TLS-only policy" in out
    assert actions[f"glue job {aws.glue_job_name}"] == "update"
    assert actions[f"athena workgroup {aws.athena_workgroup}"] == "update"
    assert "results location and encryption" in out and "bytes scanned cutoff" in out
    assert "CloudWatch metrics" in out
    assert s3.get_bucket_versioning(Bucket=raw)["Status"] == "Suspended"

    # Buckets are fixed for real.
    plan = plan_deploy(settings)
    next(s for s in plan.steps if s.change.resource == f"s3 bucket {raw}").apply()
    assert s3.get_bucket_versioning(Bucket=raw)["Status"] == "Enabled"
    assert json.loads(s3.get_bucket_policy(Bucket=raw)["Policy"])["Statement"][0]["Sid"] == (
        TLS_ONLY_SID
    )


def test_local_and_unknown_environments_are_clear_errors(capsys) -> None:
    assert deploy_command("deploy", "--environment", "local") == 2
    err = capsys.readouterr().err
    assert "'local' is not an AWS environment" in err
    assert "development, prod, staging" in err


def test_aws_errors_are_one_line_with_code_and_exit_1(aws_endpoint, capsys, monkeypatch) -> None:
    settings = resolve_settings(ENV)
    # A real ClientError: the secret is scheduled for deletion, so its value cannot be read.
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=settings.auth.secret_id, SecretString="{}")
    sm.delete_secret(SecretId=settings.auth.secret_id, RecoveryWindowInDays=7)
    code, _, err = deploy(capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: secret salesforce/development/credentials: AWS error ")
    assert "InvalidRequestException" in lines[0]

    # Nothing listens: STS is the first call.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = deploy(capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: sts caller identity: AWS error EndpointConnectionError")


def test_a_glue_table_that_is_not_iceberg_is_one_line(aws_endpoint, capsys, user_org) -> None:
    """pyiceberg's error for a Glue table that is not an Iceberg table: one line, the table,
    the fix; never a traceback."""
    assert deploy(capsys, "--yes")[0] == 0
    settings = resolve_settings(ENV)
    boto3.client("glue").create_table(
        DatabaseName=settings.raw_database,
        TableInput={"Name": "sf_user", "TableType": "EXTERNAL_TABLE", "Parameters": {}},
    )
    code, out, err = deploy(capsys, "--credentials-file", str(user_org.credentials))
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: iceberg table sf_raw_development.sf_user: AWS error ")
    assert "not an Iceberg table" in lines[0] and "Traceback" not in err


def test_cli_subprocess_dry_run(aws_endpoint, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    runner = (
        "import sys; from sf_lakehouse.cli import build_parser; "
        "a = build_parser().parse_args(sys.argv[1:]); sys.exit(a.handler(a))"
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, "deploy", "--environment", ENV, "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert f"Deploy plan for environment 'development' (account {ACCOUNT}" in result.stdout
    assert "Dry run: nothing was changed" in result.stdout
    assert "Traceback" not in result.stderr


def test_package_zip_is_byte_stable(tmp_path: Path) -> None:
    from sf_lakehouse.aws.deploy.glue import package_zip

    assert package_zip(deploy_package.PACKAGE_DIR) == package_zip(deploy_package.PACKAGE_DIR)
