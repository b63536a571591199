"""The Glue-job extraction option on a moto server: the raw asset launches the Glue job
through Dagster Pipes. moto does not execute Glue scripts, so this test plays the Glue worker:
it watches moto for the job run Dagster started and runs the job's script (the real
`glue_entrypoint.main`) with that run's arguments, against the emulator and moto's S3/Glue."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import boto3
import dagster as dg
import pytest
import requests
from dagster_pipes import PipesContext

from sf_lakehouse.aws import glue_entrypoint
from sf_lakehouse.aws.pipes import PIPES_PREFIX, pipes_glue_client
from sf_lakehouse.config import Settings, load_config, resolve_settings
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests.moto_server import emulator_secret

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def load_config_with_glue() -> dict:
    config = load_config()
    config["environments"]["development"]["extraction"] = {"mode": "glue"}
    return config


def glue_settings(tmp_path) -> Settings:
    return resolve_settings(
        "development", home=tmp_path / "lakehouse", config=load_config_with_glue()
    )


def provision(settings: Settings, credentials: dict[str, str]) -> None:
    aws = settings.require_aws()
    s3 = boto3.client("s3", region_name=aws.region)
    for kind in ("raw", "scripts"):
        s3.create_bucket(
            Bucket=aws.bucket(kind), CreateBucketConfiguration={"LocationConstraint": aws.region}
        )
    boto3.client("glue", region_name=aws.region).create_database(
        DatabaseInput={
            "Name": settings.raw_database,
            "LocationUri": settings.database_location(settings.raw_database),
        }
    )
    boto3.client("glue", region_name=aws.region).create_job(
        Name=aws.glue_job_name,
        Role=f"arn:aws:iam::123456789012:role/{aws.glue_role_name}",
        Command={"Name": "pythonshell", "ScriptLocation": aws.glue_script_location},
    )
    boto3.client("secretsmanager", region_name=aws.region).create_secret(
        Name=settings.auth.secret_id, SecretString=json.dumps(credentials)
    )


class GlueWorker(threading.Thread):
    """Runs the job script for the first run moto reports for the job."""

    def __init__(self, job_name: str, config: dict) -> None:
        super().__init__(daemon=True)
        self.job_name = job_name
        self.config = config
        self.arguments: dict[str, str] | None = None
        self.metadata: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        glue = boto3.client("glue")
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                runs = glue.get_job_runs(JobName=self.job_name)["JobRuns"]
                if runs:
                    # open_dagster_pipes() hands back the process's first context, closed by an
                    # earlier test in this worker; each Glue job run is a fresh process.
                    PipesContext._instance = None
                    self.arguments = runs[0]["Arguments"]
                    argv = [part for item in self.arguments.items() for part in item]
                    self.metadata = glue_entrypoint.main(argv, config=self.config)
                    return
                time.sleep(0.2)
            raise TimeoutError("no Glue job run started")
        except BaseException as error:  # reported by the test
            self.error = error


def run_through_pipes(
    aws_endpoint: str, settings: Settings, emulator, instance: dg.DagsterInstance | None = None
) -> tuple[dg.ExecuteInProcessResult, GlueWorker]:
    """Materialize the User raw asset as the Glue job, this test playing the Glue worker."""
    aws = settings.require_aws()
    # The secret says where to log in (the emulator); SF_LOGIN_URL would be refused.
    provision(settings, emulator_secret(emulator))
    # Keep the moto job run RUNNING for a few seconds, as a real one is while the script works.
    requests.post(
        f"{aws_endpoint}/moto-api/state-manager/set-transition",
        timeout=30,
        json={"model_name": "glue::job_run", "transition": {"progression": "time", "seconds": 6}},
    )
    worker = GlueWorker(aws.glue_job_name, load_config_with_glue())
    worker.start()
    instance = instance or dg.DagsterInstance.ephemeral()
    # Pipes context and messages under pipes/ (the only scripts-bucket prefix the role writes).
    resources = {**build_resources(settings), "pipes_glue": pipes_glue_client(settings)}
    result = dg.materialize(
        [build_raw_asset(settings, settings.object("User"))],
        resources=resources,
        instance=instance,
    )
    worker.join(timeout=60)
    assert worker.error is None, repr(worker.error)
    assert result.success
    return result, worker


def test_raw_asset_runs_as_the_glue_job_through_pipes(
    aws_endpoint: str, tmp_path, emulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = glue_settings(tmp_path)
    aws = settings.require_aws()
    history = generate_org(users=20, seed=8, start=START, days=2, accounts=0, opportunities=0)
    emulator = emulator_factory(history, now=START + dt.timedelta(days=3))
    result, worker = run_through_pipes(aws_endpoint, settings, emulator)
    spec = settings.object("User")

    # Dagster started the job with the environment and the Pipes bootstrap arguments.
    assert worker.arguments["--SF_LAKEHOUSE_ENV"] == "development"
    assert worker.arguments["--SF_OBJECT"] == "User"
    assert "--dagster-pipes-context" in worker.arguments
    keys = [
        o["Key"]
        for o in boto3.client("s3").list_objects_v2(Bucket=aws.bucket("scripts"))["Contents"]
    ]
    assert keys and all(k.startswith(PIPES_PREFIX) for k in keys), keys
    # The script's metadata came back through Pipes onto the materialization.
    [materialization] = result.asset_materializations_for_node("sf_raw__sf_user")
    assert materialization.metadata["rows_extracted"].value == len({r["Id"] for r in history})
    assert materialization.metadata["rows_appended"].value == worker.metadata["rows_appended"]
    # And the rows are in the Glue catalog, on S3.
    identifier = settings.table_identifier(spec.raw_asset_key)
    table = open_catalog(settings.catalog_properties()).load_table(identifier)
    assert table.scan().to_arrow().num_rows == len({r["Id"] for r in history})


def test_the_glue_job_stores_rejects_and_reports_them_through_pipes(
    aws_endpoint: str, tmp_path, emulator_factory
) -> None:
    """Regression (issue 16, item 2): in Glue mode values that did not convert were never
    written to the rejects table while the watermark moved past them."""
    settings = glue_settings(tmp_path)
    history = generate_org(users=20, seed=8, start=START, days=2, accounts=0, opportunities=0)
    emulator = emulator_factory(history, now=START + dt.timedelta(days=3))
    emulator.set_faults(
        {"seed": 1, "faults": [{"kind": "malformed", "field": "IsActive", "every": 4}]}
    )
    instance = dg.DagsterInstance.ephemeral()
    result, worker = run_through_pipes(aws_endpoint, settings, emulator, instance)
    spec = settings.object("User")
    rejects_table = f"{settings.raw_database}.sf_user_rejects"
    catalog = open_catalog(settings.catalog_properties())
    rejects = catalog.load_table(rejects_table).scan().to_arrow()
    assert rejects.num_rows > 0
    assert set(rejects.column("field").to_pylist()) == {"IsActive"}
    [materialization] = result.asset_materializations_for_node("sf_raw__sf_user")
    assert materialization.metadata["rows_rejected"].value == rejects.num_rows
    assert materialization.metadata["rejects_table"].value == rejects_table
    assert worker.metadata["rejects_table"] == rejects_table
    # The warning came back through Pipes into the run's log.
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    warnings = [m for m in logged if f"set aside into {rejects_table}" in m]
    assert warnings, logged
    raw = catalog.load_table(settings.table_identifier(spec.raw_asset_key)).scan().to_arrow()
    assert raw.num_rows + rejects.num_rows >= len({r["Id"] for r in history})
