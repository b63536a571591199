"""Launch-time run config may not redirect credentials, the catalog or the dbt executable.

Regression (issue 16, item 1): `SalesforceResource` was configurable at launch, so anyone who
could launch a run in a Secrets Manager environment could set `login_url` and `ca_bundle` next
to the environment's `secret_id` and receive the password and token. These runs are launched
through Dagster (the environment's own job and resources, with run config) against a moto
Secrets Manager and two emulators: the org the secret names, and another server that accepts
the same credentials and counts the logins it gets.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from sf_lakehouse.config import load_config, resolve_settings
from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.launch_lock import LaunchConfigRefused
from sf_lakehouse_tests.moto_server import AWS_REGION, emulator_secret

ENVIRONMENT = "lockdown"
SECRET_ID = f"salesforce/{ENVIRONMENT}/credentials"
START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def _config(home: Path) -> dict[str, Any]:
    """A lakehouse on this machine whose Salesforce credentials come from Secrets Manager."""
    config = copy.deepcopy(load_config())
    entry = copy.deepcopy(config["environments"]["local"])
    entry |= {
        "salesforce_auth": {"source": "secretsmanager", "secret_id": SECRET_ID},
        "bucket_prefix": "lumata-lakehouse-lockdown",
        "aws": {"region": AWS_REGION, "athena_workgroup": "sf-lakehouse-lockdown"},
    }
    config["environments"] = {ENVIRONMENT: entry}
    return config


@pytest.fixture
def lockdown(aws_endpoint, emulator_factory, tmp_path):
    history = generate_org(users=4, seed=3, start=START, days=1, accounts=0, opportunities=0)
    org = emulator_factory(history, now=START + dt.timedelta(days=2))
    # Another server that would accept the same credentials: it must never see a login.
    attacker = emulator_factory(history, now=START + dt.timedelta(days=2))
    secrets = boto3.client("secretsmanager", region_name=AWS_REGION)
    # As in production, the secret names no login URL: the login would go to Salesforce.
    values = {k: v for k, v in emulator_secret(org).items() if k not in ("login_url", "ca_bundle")}
    secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps(values))
    # A secret of another environment, which this one's runs may not read.
    secrets.create_secret(
        Name="salesforce/prod/credentials", SecretString=json.dumps(emulator_secret(attacker))
    )
    user = next(s for s in resolve_settings("local").objects if s.api_name == "User")
    settings = resolve_settings(
        ENVIRONMENT, home=tmp_path / "lakehouse", config=_config(tmp_path), objects=(user,)
    )
    return settings, org, attacker


def _launch(settings, run_config: dict[str, Any], selection: str = "sf_raw/sf_user"):
    """Launch the environment's pipeline job (its own resources) for one asset."""
    job = build_definitions(settings).get_job_def(PIPELINE_JOB_NAME)
    return job.execute_in_process(
        run_config=run_config,
        asset_selection=[dg.AssetKey.from_user_string(selection)],
        raise_on_error=False,
    )


def _failure(result) -> str:
    messages = [
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.is_failure and event.event_specific_data.error is not None
    ]
    return "\n".join(messages)


def _salesforce_config(**values: Any) -> dict[str, Any]:
    return {"resources": {"salesforce": {"config": values}}}


@pytest.mark.parametrize(
    "attack",
    ["login_url", "credential_fields", "another_secret"],
)
def test_a_launch_that_redirects_the_secret_is_refused_before_any_login(lockdown, attack) -> None:
    settings, org, attacker = lockdown
    redirect = {"login_url": attacker.base_url, "ca_bundle": str(attacker.ca_bundle)}
    values = {
        # The environment's own secret, sent elsewhere.
        "login_url": {"secret_id": SECRET_ID, "aws_region": AWS_REGION, **redirect},
        # Credentials of the launcher's choice instead of the secret's.
        "credential_fields": {
            **redirect,
            "username": org.credentials.username,
            "password": org.credentials.password,
            "security_token": org.credentials.security_token,
        },
        # Another environment's secret.
        "another_secret": {
            "secret_id": "salesforce/prod/credentials",
            "aws_region": AWS_REGION,
        },
    }[attack]
    result = _launch(settings, _salesforce_config(**values))
    assert not result.success
    message = _failure(result)
    assert "of the salesforce resource: refused" in message, message
    assert org.credentials.password not in message
    assert (attacker.soap_logins, org.soap_logins) == (0, 0)
    assert attacker.api_calls == 0


def test_api_version_and_timeout_stay_launch_configurable(lockdown, aws_endpoint) -> None:
    settings, org, attacker = lockdown
    # This secret says where the org is (the emulator), as the deploy tests' secrets do.
    boto3.client("secretsmanager", region_name=AWS_REGION).put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps(emulator_secret(org))
    )
    # Run config replaces the resource's whole config: the fixed fields come along unchanged.
    fixed = {"secret_id": SECRET_ID, "aws_region": AWS_REGION}
    launched = _salesforce_config(**fixed, timeout_seconds=30.0, api_version="59.0")
    result = _launch(settings, launched)
    assert result.success, _failure(result)
    assert (org.soap_logins, attacker.soap_logins) == (1, 0)


def test_a_launch_that_changes_the_catalog_is_refused(lockdown, tmp_path) -> None:
    settings, org, _ = lockdown
    elsewhere = tmp_path / "elsewhere"
    lakehouse = build_definitions(settings).resources["lakehouse"]
    config = {
        "environment": lakehouse.environment,
        "catalog_properties": {
            "type": "sql",
            "uri": f"sqlite:///{elsewhere / 'catalog.db'}",
            "warehouse": elsewhere.as_uri(),
        },
        "raw_database": lakehouse.raw_database,
        "curated_database": lakehouse.curated_database,
        "lakehouse_home": lakehouse.lakehouse_home,
        "dbt_variables": dict(lakehouse.dbt_variables),
    }
    result = _launch(settings, {"resources": {"lakehouse": {"config": config}}})
    assert not result.success
    assert "catalog_properties of the lakehouse resource: refused" in _failure(result)
    assert not elsewhere.exists()
    assert org.soap_logins == 0


def test_a_launch_that_changes_the_dbt_executable_is_refused(lockdown, tmp_path) -> None:
    settings, _, _ = lockdown
    marker = tmp_path / "ran"
    executable = tmp_path / "dbt"
    executable.write_text(f"#!/bin/sh\ntouch {marker}\n", encoding="utf-8")
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    dbt = build_definitions(settings).resources["dbt"]
    config = {"project_dir": dbt.project_dir, "dbt_executable": str(executable)}
    result = _launch(
        settings, {"resources": {"dbt": {"config": config}}}, "sf_curated/dim_sf_user_scd"
    )
    assert not result.success
    message = _failure(result)
    assert "dbt_executable" in message and "of the dbt resource: refused" in message, message
    assert not marker.exists()


def test_resources_used_outside_a_run_are_not_checked(lockdown) -> None:
    settings, _, _ = lockdown
    resource = build_definitions(settings).resources["salesforce"]
    assert resource.secret_id == SECRET_ID
    context = dg.build_init_resource_context()
    resource.setup_for_execution(context)  # nothing launched, nothing to refuse
    assert issubclass(LaunchConfigRefused, ValueError)  # a configuration error, one line
