"""Lake Formation: with `aws.lake_formation: true` deploy grants the Glue role (and the pipeline
identity, when configured) what they need, on moto's Lake Formation; without a pipeline
principal the plan says which grants are missing and how to add them."""

from __future__ import annotations

import logging

import boto3
import pytest

from sf_lakehouse.aws.deploy import format_plan, plan_deploy
from sf_lakehouse.aws.deploy import run as deploy_run
from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.lakeformation import check_account_settings
from sf_lakehouse.aws.iam import glue_role_inline_policy
from sf_lakehouse.aws.options import hardening_options
from sf_lakehouse.config import ConfigError, load_config, resolve_settings
from sf_lakehouse_tests.moto_server import deploy_command

ENV = "development"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/GlueServiceRole-development"
PIPELINE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sf-lakehouse-dagster-development"


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def with_aws_options(**values: object):
    """Settings of a config whose `aws` section carries these keys (validated like the file)."""
    config = load_config()
    config["environments"][ENV]["aws"] |= values
    return resolve_settings(ENV, config=config)


def test_options_are_read_from_the_aws_section_with_defaults() -> None:
    defaults = hardening_options(resolve_settings(ENV))
    assert (defaults.lake_formation, defaults.athena_results_expiration_days) == (False, 30)
    assert defaults.athena_bytes_scanned_cutoff_per_query == 10 * 1024**3
    options = hardening_options(
        with_aws_options(
            lake_formation=True,
            athena_results_expiration_days=7,
            athena_bytes_scanned_cutoff_per_query=1024**3,
            pipeline_principal_arn=PIPELINE_ARN,
        )
    )
    assert options.lake_formation is True
    assert options.athena_results_expiration_days == 7
    assert options.athena_bytes_scanned_cutoff_per_query == 1024**3
    with pytest.raises(ConfigError, match="athena_bytes_scanned_cutoff_per_query"):
        with_aws_options(athena_bytes_scanned_cutoff_per_query=1000)
    with pytest.raises(ConfigError, match="pipeline_principal_arn"):
        with_aws_options(pipeline_principal_arn="dagster")


def held(principal: str, resource: dict) -> set[str]:
    entries = boto3.client("lakeformation").list_permissions(
        Principal={"DataLakePrincipalIdentifier": principal}, Resource=resource
    )["PrincipalResourcePermissions"]
    return {p for e in entries for p in e["Permissions"]}


def test_grants_for_the_glue_role_and_the_pipeline_identity(
    aws_endpoint, capsys, monkeypatch
) -> None:
    options = hardening_options(
        with_aws_options(lake_formation=True, pipeline_principal_arn=PIPELINE_ARN)
    )
    monkeypatch.setattr(deploy_run, "hardening_options", lambda settings: options)
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    out, err = capsys.readouterr()
    # moto's account lets IAM alone govern new tables, as a new AWS account does.
    assert "but the account lets IAM alone govern new databases and tables" in err
    assert f"create  lake formation grants for the glue role {ROLE_ARN}" in out
    assert f"create  lake formation grants for the pipeline identity {PIPELINE_ARN}" in out

    raw_db = {"Database": {"Name": "sf_raw_development"}}
    raw_tables = {"Table": {"DatabaseName": "sf_raw_development", "TableWildcard": {}}}
    curated_tables = {"Table": {"DatabaseName": "sf_curated_development", "TableWildcard": {}}}
    assert held(ROLE_ARN, raw_db) == {"DESCRIBE", "CREATE_TABLE"}
    assert held(ROLE_ARN, raw_tables) == {"ALTER", "DESCRIBE", "INSERT", "SELECT"}
    assert held(ROLE_ARN, curated_tables) == set()
    # Raw history cannot be rebuilt: nobody may drop or delete the raw tables.
    assert held(PIPELINE_ARN, raw_tables) == {"ALTER", "DESCRIBE", "INSERT", "SELECT"}
    assert held(PIPELINE_ARN, curated_tables) == {
        "ALTER",
        "DELETE",
        "DESCRIBE",
        "DROP",
        "INSERT",
        "SELECT",
    }
    # The role may fetch Lake Formation's temporary credentials for the data.
    policy = glue_role_inline_policy(resolve_settings(ENV), ACCOUNT, lake_formation=True)
    assert "lakeformation:GetDataAccess" in str(policy)

    # Second deploy: nothing to grant.
    assert deploy_command("deploy", "--environment", ENV) == 0
    out = capsys.readouterr().out
    assert f"none    lake formation grants for the glue role {ROLE_ARN}" in out
    assert "nothing to change" in out

    # A revoked grant is planned again.
    boto3.client("lakeformation").revoke_permissions(
        Principal={"DataLakePrincipalIdentifier": ROLE_ARN},
        Resource=raw_tables,
        Permissions=["INSERT"],
    )
    assert deploy_command("deploy", "--environment", ENV, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"update  lake formation grants for the glue role {ROLE_ARN}" in out
    assert "grant sf_raw_development.* INSERT" in out


def test_without_a_pipeline_principal_the_plan_says_what_is_missing(
    aws_endpoint, monkeypatch
) -> None:
    monkeypatch.setattr(
        deploy_run,
        "hardening_options",
        lambda settings: hardening_options(with_aws_options(lake_formation=True)),
    )
    plan = plan_deploy(resolve_settings(ENV))
    text = format_plan(plan)
    assert "none    lake formation grants for the pipeline identity  (MISSING" in text
    [warning] = [w for w in plan.warnings if "pipeline identity" in w]
    assert "aws.pipeline_principal_arn" in warning
    assert (
        "aws lakeformation grant-permissions --principal DataLakePrincipalIdentifier="
        "<PIPELINE_ROLE_ARN> --permissions DESCRIBE CREATE_TABLE --resource "
        '\'{"Database": {"Name": "sf_curated_development"}}\''
    ) in warning


def test_no_lake_formation_steps_when_the_account_does_not_enforce_it(aws_endpoint) -> None:
    plan = plan_deploy(resolve_settings(ENV))
    assert not [c for c in plan.changes if "lake formation" in c.resource]


def test_drop_and_delete_on_the_raw_tables_are_revoked(aws_endpoint, capsys, monkeypatch) -> None:
    """Regression (issue 16, item 3): deploy granted the pipeline identity DROP and DELETE on
    the raw tables; an account deployed before keeps them until deploy revokes them."""
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0  # databases, role
    raw_tables = {"Table": {"DatabaseName": "sf_raw_development", "TableWildcard": {}}}
    curated_tables = {"Table": {"DatabaseName": "sf_curated_development", "TableWildcard": {}}}
    lakeformation = boto3.client("lakeformation")
    # What an earlier deploy granted, one call each (moto cannot revoke from merged grants).
    earlier = {
        PIPELINE_ARN: ["ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"],
        ROLE_ARN: ["ALL"],
    }
    for principal, permissions in earlier.items():
        lakeformation.grant_permissions(
            Principal={"DataLakePrincipalIdentifier": principal},
            Resource=raw_tables,
            Permissions=permissions,
        )
    options = hardening_options(
        with_aws_options(lake_formation=True, pipeline_principal_arn=PIPELINE_ARN)
    )
    monkeypatch.setattr(deploy_run, "hardening_options", lambda settings: options)
    capsys.readouterr()
    assert deploy_command("deploy", "--environment", ENV, "--yes") == 0
    out = capsys.readouterr().out
    assert "revoke sf_raw_development.* DELETE/DROP (raw history cannot be rebuilt)" in out
    assert "revoke sf_raw_development.* ALL (raw history cannot be rebuilt)" in out
    for principal in (PIPELINE_ARN, ROLE_ARN):
        assert held(principal, raw_tables) == {"ALTER", "DESCRIBE", "INSERT", "SELECT"}
    assert {"DROP", "DELETE"} <= held(PIPELINE_ARN, curated_tables)
    # And the next deploy has nothing to change.
    assert deploy_command("deploy", "--environment", ENV) == 0
    assert "nothing to change" in capsys.readouterr().out


ENFORCING = {
    "DataLakeAdmins": [],
    "CreateDatabaseDefaultPermissions": [],
    "CreateTableDefaultPermissions": [],
}


@pytest.mark.parametrize(
    ("flag", "enforcing", "expected"),
    [
        (False, True, "the account enforces Lake Formation permissions"),
        (True, False, "but the account lets IAM alone govern"),
        (False, False, None),
        (True, True, None),
    ],
)
def test_deploy_warns_when_the_account_disagrees_with_the_flag(
    aws_endpoint, flag, enforcing, expected
) -> None:
    """Regression (issue 16, item 5): deploy never read the account's Lake Formation settings,
    so a wrong `aws.lake_formation` left the job without grants (or grants restricting
    nothing) in silence."""
    if enforcing:
        boto3.client("lakeformation").put_data_lake_settings(DataLakeSettings=ENFORCING)
    settings = with_aws_options(lake_formation=flag, pipeline_principal_arn=PIPELINE_ARN)
    ctx = DeployContext(
        settings=settings,
        options=hardening_options(settings),
        credentials=None,
        script_path=deploy_run.DEFAULT_SCRIPT_PATH,
        package_dir=deploy_run.PACKAGE_DIR,
        config_path=settings.config_path,
    )
    check_account_settings(ctx)
    found = [w for w in ctx.warnings if "aws.lake_formation" in w]
    if expected is None:
        assert found == []
    else:
        [warning] = found
        assert expected in warning and f"environments.{ENV}.aws.lake_formation" in warning
