"""Glue: the two databases, the extraction job `sf-extraction-<env>` and its artifacts.

The job's script, the `sf_lakehouse` package (`--extra-py-files`), the pipeline config and the
object specs (`--extra-files`: Glue copies them flat next to the script, where the entry point
finds them) are uploaded to the scripts bucket under `glue/` when their content changed; the
job installs its packages from the wheelhouse beside them (`wheelhouse.py`), never an index.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import (
    AwsDeployError,
    Change,
    DeployError,
    Step,
    aws_errors,
    error_code,
    matches,
    split_s3,
)
from sf_lakehouse.aws.deploy.s3 import object_step
from sf_lakehouse.aws.deploy.wheelhouse import INSTALLER_OPTION
from sf_lakehouse.config.objects import OBJECTS_DIR_NAME

# The job runs the sf_lakehouse package (Python 3.11: datetime.UTC, pyiceberg 0.11 needs >= 3.10),
# so it is a Glue 5.0 job (Python 3.11); Python shell jobs stop at Python 3.9.
GLUE_VERSION = "5.0"
CONFIG_FILE_NAME = "pipeline-config.yml"


def plan_databases(ctx: DeployContext) -> list[Step]:
    settings = ctx.settings
    return [_database(ctx, db) for db in (settings.raw_database, settings.curated_database)]


def _database(ctx: DeployContext, database: str) -> Step:
    resource = f"glue database {database}"
    glue = ctx.client("glue")
    settings = ctx.settings
    kind = (
        "raw extracts (append-only)"
        if database == settings.raw_database
        else "curated SCD2 dimensions (dbt)"
    )
    desired = {
        "Name": database,
        "LocationUri": settings.database_location(database),
        "Description": f"sf_lakehouse {settings.environment}: Salesforce {kind}, Iceberg tables",
    }
    with aws_errors(resource, ("glue:GetDatabase",)):
        try:
            current = glue.get_database(Name=database)["Database"]
        except Exception as error:
            if error_code(error) != "EntityNotFoundException":
                raise
            current = None
    if current is None:
        ctx.new_databases.add(database)

        def create() -> None:
            with aws_errors(resource, ("glue:CreateDatabase",)):
                glue.create_database(DatabaseInput=desired)

        return Step(
            Change(resource, "create", f"location {desired['LocationUri']}"),
            create,
            ("glue:CreateDatabase",),
        )
    drift = [k for k in ("LocationUri", "Description") if current.get(k) != desired[k]]
    if not drift:
        return Step(Change(resource, "none", f"location {desired['LocationUri']}"))

    def update() -> None:
        # UpdateDatabase replaces the definition: keep parameters others set.
        database_input = dict(desired, Parameters=current.get("Parameters") or {})
        with aws_errors(resource, ("glue:UpdateDatabase",)):
            glue.update_database(Name=database, DatabaseInput=database_input)

    return Step(
        Change(resource, "update", "set " + ", ".join(drift)), update, ("glue:UpdateDatabase",)
    )


# --- the job's artifacts ---------------------------------------------------------------------


def package_zip(package_dir: Path) -> bytes:
    """The sf_lakehouse package as a zip for `--extra-py-files`; byte-stable for a given source
    (fixed timestamps, sorted names), so an unchanged package is not uploaded again."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        files = sorted(
            p
            for p in package_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".typed")
        )
        for path in files:
            relative = Path(package_dir.name) / path.relative_to(package_dir)
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def object_spec_files(config_path: Path) -> list[Path]:
    """The object specs beside the pipeline config (`objects/*.yml`), in file-name order."""
    return sorted((config_path.parent / OBJECTS_DIR_NAME).glob("*.yml"))


def plan_job_artifacts(ctx: DeployContext) -> list[Step]:
    if not ctx.script_path.is_file():
        raise DeployError(
            f"Glue job script {ctx.script_path} does not exist; it is part of the package "
            "(sf_lakehouse/aws/glue_entrypoint.py)"
        )
    if not ctx.config_path.is_file():
        raise DeployError(f"pipeline config {ctx.config_path} does not exist")
    specs = object_spec_files(ctx.config_path)
    names = [p.name for p in specs]
    if CONFIG_FILE_NAME in names:
        raise DeployError(
            f"object spec {CONFIG_FILE_NAME} would overwrite the pipeline config in the Glue "
            "job's working directory; rename it"
        )
    artifacts = [
        (ctx.aws.glue_script_location, ctx.script_path.read_bytes()),
        (package_location(ctx), package_zip(ctx.package_dir)),
        (config_location(ctx), ctx.config_path.read_bytes()),
        *[(spec_location(ctx, p.name), p.read_bytes()) for p in specs],
    ]
    return [object_step(ctx, uri, body) for uri, body in artifacts]


def _folder(ctx: DeployContext) -> str:
    bucket, key = split_s3(ctx.aws.glue_script_location)
    return f"s3://{bucket}/{key.rsplit('/', 1)[0]}"


def package_location(ctx: DeployContext) -> str:
    return f"{_folder(ctx)}/sf_lakehouse.zip"


def config_location(ctx: DeployContext) -> str:
    return f"{_folder(ctx)}/{CONFIG_FILE_NAME}"


def spec_location(ctx: DeployContext, file_name: str) -> str:
    return f"{_folder(ctx)}/{OBJECTS_DIR_NAME}/{file_name}"


# --- the job ---------------------------------------------------------------------------------


def desired_job(ctx: DeployContext) -> dict[str, Any]:
    aws = ctx.aws
    extra_files = [config_location(ctx)] + [
        spec_location(ctx, p.name) for p in object_spec_files(ctx.config_path)
    ]
    objects = ", ".join(spec.api_name for spec in ctx.settings.objects)
    return {
        "Description": f"sf_lakehouse: Salesforce extraction of one object per run "
        f"(--SF_OBJECT: {objects}), environment {aws.environment}",
        "Role": ctx.role_arn,
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": aws.glue_script_location,
            "PythonVersion": "3",
        },
        "DefaultArguments": {
            "--SF_LAKEHOUSE_ENV": aws.environment,
            # The config and the specs are in the job's working directory (--extra-files).
            "--SF_LAKEHOUSE_CONFIG": CONFIG_FILE_NAME,
            # The wheels of the exact pins, installed offline: no package index at run time.
            "--additional-python-modules": ",".join(ctx.wheel_locations),
            "--python-modules-installer-option": INSTALLER_OPTION,
            "--extra-py-files": package_location(ctx),
            "--extra-files": ",".join(extra_files),
            "--job-language": "python",
            # Job metrics, observability metrics and continuous logs in CloudWatch (the
            # dashboard's Glue widget and the logs of a run while it runs).
            "--enable-metrics": "true",
            "--enable-observability-metrics": "true",
            "--enable-continuous-cloudwatch-log": "true",
        },
        "GlueVersion": GLUE_VERSION,
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
        "Timeout": 60,
        "MaxRetries": 0,
        # One run per object at a time; runs of different objects may overlap.
        "ExecutionProperty": {"MaxConcurrentRuns": max(1, len(ctx.settings.objects))},
    }


def plan_job(ctx: DeployContext) -> Step:
    name = ctx.aws.glue_job_name
    resource = f"glue job {name}"
    glue = ctx.client("glue")
    desired = desired_job(ctx)
    with aws_errors(resource, ("glue:GetJob",)):
        try:
            current = glue.get_job(JobName=name)["Job"]
        except Exception as error:
            if error_code(error) != "EntityNotFoundException":
                raise
            current = None
    if current is None:
        return Step(
            Change(resource, "create", f"glueetl {GLUE_VERSION}, role {ctx.role_arn}"),
            lambda: _retry_new_role(ctx, resource, lambda: glue.create_job(Name=name, **desired)),
            ("glue:CreateJob", "iam:PassRole"),
        )
    drift = [k for k, v in desired.items() if not matches(current.get(k), v)]
    if not drift:
        return Step(Change(resource, "none", f"script {ctx.aws.glue_script_location}"))
    return Step(
        Change(resource, "update", "set " + ", ".join(drift)),
        lambda: _retry_new_role(
            ctx, resource, lambda: glue.update_job(JobName=name, JobUpdate=desired)
        ),
        ("glue:UpdateJob", "iam:PassRole"),
    )


def _retry_new_role(ctx: DeployContext, resource: str, call: Callable[[], Any]) -> None:
    # IAM is eventually consistent: Glue may not see a role created seconds ago yet.
    attempts = 6 if ctx.role_created else 1
    for attempt in range(attempts):
        try:
            with aws_errors(resource, ("glue:CreateJob", "glue:UpdateJob", "iam:PassRole")):
                call()
            return
        except AwsDeployError as error:
            if error.code != "InvalidInputException" or attempt == attempts - 1:
                raise
            time.sleep(5)
