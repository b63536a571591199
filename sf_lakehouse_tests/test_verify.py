"""`sf-lakehouse verify`: for real on the local lakehouse (DuckDB), and on a moto server for what
moto supports (Athena runs no SQL there: the test queues the results Athena would return and
checks which queries reached the workgroup)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import boto3
import dagster as dg
import pyarrow as pa
import pytest
import requests

from sf_lakehouse.config import Settings, resolve_settings
from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.lakehouse.tables import open_catalog, replace_rows
from sf_lakehouse.verify import AthenaEngine, verify
from sf_lakehouse_tests.moto_server import emulator_secret

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def _built_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict]]:
    """One pipeline run shared by the module's local tests (they read it; the one that breaks
    the dimension puts it back): a real emulator and a real run."""
    from sf_lakehouse.emulator import SalesforceEmulator

    folder = tmp_path_factory.mktemp("verify")
    settings = resolve_settings("local", home=folder / "lakehouse")
    history = generate_org(users=25, seed=9, start=START, days=3)
    emulator = SalesforceEmulator(
        history, workdir=folder / "emulator", now=START + dt.timedelta(days=4)
    )
    emulator.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in emulator.env_vars().items():
                patch.setenv(key, value)
            result = (
                build_definitions(settings)
                .resolve_job_def(PIPELINE_JOB_NAME)
                .execute_in_process(instance=dg.DagsterInstance.ephemeral())
            )
        assert result.success
        yield settings, emulator.env_vars()
    finally:
        emulator.stop()


@pytest.fixture
def built_lakehouse(
    _built_once: tuple[Settings, dict], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    settings, env_vars = _built_once
    for key, value in env_vars.items():
        monkeypatch.setenv(key, value)
    return settings


def test_verify_passes_on_a_healthy_local_lakehouse(built_lakehouse: Settings, capsys) -> None:
    assert verify(built_lakehouse) == 0
    out = capsys.readouterr().out
    assert "PASS  salesforce_connection" in out
    for spec in built_lakehouse.objects:
        for check in (
            "raw_table_exists",
            "dimension_exists",
            "scd_one_current_row",
            "scd_no_overlapping_intervals",
            "summary",
        ):
            assert f"PASS  {spec.name}_{check}" in out
    assert "object=User, raw_versions=" in out and "records=25, " in out
    checks = 1 + 5 * len(built_lakehouse.objects)
    assert f"All {checks} checks passed." in out


def test_verify_fails_and_names_the_broken_check(built_lakehouse: Settings, capsys) -> None:
    settings = built_lakehouse
    catalog = open_catalog(settings.catalog_properties())
    table = catalog.load_table(
        settings.table_identifier(settings.object("User").dimension_asset_key)
    )
    rows = table.scan().to_arrow()
    # A second current row for one user.
    scd_id = pa.array(["a-second-current-row"], rows.schema.field("scd_id").type)
    replace_rows(table, pa.concat_tables([rows, rows.slice(0, 1).set_column(0, "scd_id", scd_id)]))
    try:
        assert verify(settings) == 1
    finally:
        replace_rows(table, rows)  # the other tests share this lakehouse
    out = capsys.readouterr().out
    assert "FAIL  user_scd_one_current_row: 1 User records without exactly one" in out
    assert "PASS  user_raw_table_exists" in out and "PASS  account_scd_one_current_row" in out
    assert "checks FAILED: user_scd_one_current_row" in out


def test_verify_without_salesforce_reports_the_connection_and_goes_on(
    built_lakehouse: Settings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("SF_PASSWORD", "wrong")
    assert verify(built_lakehouse) == 1
    out = capsys.readouterr().out
    assert "FAIL  salesforce_connection" in out and "check the credentials" in out
    assert "PASS  user_summary" in out


def athena_result(columns: list[str], values: list[str]) -> dict:
    header = {"Data": [{"VarCharValue": c} for c in columns]}
    row = {"Data": [{"VarCharValue": v} for v in values]}
    return {"rows": [header, row], "column_info": [{"Name": c, "Type": "varchar"} for c in columns]}


def test_verify_on_aws_sends_each_query_to_the_workgroup(
    aws_endpoint: str, tmp_path, emulator_factory, capsys
) -> None:
    settings = resolve_settings("development", home=tmp_path / "lakehouse")
    aws = settings.require_aws()
    emulator = emulator_factory(generate_org(users=5, seed=1, start=START, days=1), now=START)
    boto3.client("secretsmanager", region_name=aws.region).create_secret(
        Name=settings.auth.secret_id, SecretString=json.dumps(emulator_secret(emulator))
    )
    boto3.client("s3", region_name=aws.region).create_bucket(
        Bucket=aws.bucket("athena-results"),
        CreateBucketConfiguration={"LocationConstraint": aws.region},
    )
    athena = boto3.client("athena", region_name=aws.region)
    athena.create_work_group(
        Name=aws.athena_workgroup,
        Configuration={"ResultConfiguration": {"OutputLocation": aws.athena_results_location}},
    )
    # What Athena would answer, in the order verify asks (five queries per object).
    summary_columns = [
        "object",
        "raw_versions",
        "records",
        "scd_rows",
        "current_rows",
        "historical_rows",
        "deleted_now",
    ]
    results = []
    for spec in settings.objects:
        results += [
            athena_result(["row_count"], ["742"]),
            athena_result(["row_count"], ["642"]),
            athena_result(["records_failing"], ["0"]),
            athena_result(["rows_failing"], ["0"]),
            athena_result(summary_columns, [spec.api_name, "742", "300", "642", "300", "342", "0"]),
        ]
    queued = requests.post(
        f"{aws_endpoint}/moto-api/static/athena/query-results",
        json={"results": results, "region": aws.region},
        timeout=30,
    )
    assert queued.status_code == 201

    assert verify(settings, AthenaEngine(settings, timeout_seconds=30)) == 0
    out = capsys.readouterr().out
    assert "Verifying development (Athena)" in out
    assert "PASS  user_summary: object=User, raw_versions=742, records=300, scd_rows=642" in out
    executions = athena.list_query_executions(WorkGroup=aws.athena_workgroup)["QueryExecutionIds"]
    queries = [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
        for q in executions
    ]
    assert len(queries) == 5 * len(settings.objects)
    for spec in settings.objects:
        assert any(f'"sf_curated_development"."{spec.dimension_model}"' in q for q in queries)
        assert any(f'"sf_raw_development"."sf_{spec.name}"' in q for q in queries)
