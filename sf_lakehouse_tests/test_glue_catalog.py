"""The raw asset on the AWS side: credentials from Secrets Manager, the Iceberg table in the Glue
catalog with its data on S3, all on a moto server on 127.0.0.1, Salesforce from the emulator."""

from __future__ import annotations

import datetime as dt
import logging

import boto3
import dagster as dg
import pytest

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests.moto_server import (
    deploy_command,
    emulator_secret,
    user_only_config,
    write_credentials_file,
)

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def root_error_message(error) -> str:
    """The innermost error's message (Dagster wraps the resource's error)."""
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return " | ".join(messages)


def test_raw_asset_writes_to_the_glue_catalog_on_s3(
    aws_endpoint: str, tmp_path, emulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    monkeypatch.setenv("SF_LAKEHOUSE_CONFIG", str(user_only_config(tmp_path / "config")))
    settings = resolve_settings("development", home=tmp_path / "lakehouse")
    [spec] = settings.objects
    history = generate_org(users=30, seed=2, start=START, days=2, accounts=0, opportunities=0)
    emulator = emulator_factory(history, now=START + dt.timedelta(days=3))
    # The operator's path: `sf-lakehouse deploy` (the secret says where to log in: the
    # emulator), then a run that takes everything from the secret.
    credentials = write_credentials_file(tmp_path / "creds.json", emulator_secret(emulator))
    deployed = deploy_command(
        "deploy", "--environment", "development", "--yes", "--credentials-file", str(credentials)
    )
    assert deployed == 0
    # Credentials in the environment are ignored when the environment reads a secret.
    monkeypatch.setenv("SF_PASSWORD", "not-used-when-a-secret-is-configured")

    result = dg.materialize(
        [build_raw_asset(settings, spec)],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success

    catalog = open_catalog(settings.catalog_properties())
    table = catalog.load_table(settings.table_identifier(spec.raw_asset_key))
    assert table.location().startswith(f"s3://{settings.require_aws().bucket('raw')}/")
    assert [f.name for f in table.spec().fields] == ["_extracted_date"]
    rows = table.scan().to_arrow()
    assert rows.num_rows == len({r["Id"] for r in history})
    assert "audit_phase__c" in rows.column_names
    objects = boto3.client("s3").list_objects_v2(Bucket=settings.require_aws().bucket("raw"))
    keys = [o["Key"] for o in objects["Contents"]]
    assert any(k.endswith(".parquet") for k in keys) and any(
        k.endswith(".metadata.json") for k in keys
    )
    glue_table = boto3.client("glue").get_table(DatabaseName=settings.raw_database, Name="sf_user")
    assert glue_table["Table"]["Parameters"]["table_type"].upper() == "ICEBERG"


def test_a_missing_secret_is_a_clear_error(aws_endpoint: str, tmp_path) -> None:
    settings = resolve_settings("development", home=tmp_path / "lakehouse")
    result = dg.materialize(
        [build_raw_asset(settings, settings.object("User"))],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = root_error_message(failure.step_failure_data.error)
    assert (
        "cannot read secret salesforce/development/credentials (ResourceNotFoundException)"
        in message
    )
    assert "sf-lakehouse deploy" in message
