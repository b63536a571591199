"""The Glue job's packages: a wheelhouse of the lock's exact pins, uploaded by deploy, installed
offline (`--no-index`).

Regression (issue 16, item 4): the job installed `simple-salesforce==...` and the rest from
the internet at every start, pinned by version only.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from sf_lakehouse.aws.deploy import DeployError, wheelhouse
from sf_lakehouse.aws.deploy.wheelhouse import (
    GLUE_PLATFORMS,
    GLUE_PYTHON,
    cache_folder,
    download_wheels,
    lock_pins,
    pins_of,
    wheel_files,
)
from sf_lakehouse.config import resolve_settings
from sf_lakehouse_tests.moto_server import deploy_command

# Before moto_server.aws_endpoint swaps in two small pins for the other deploy tests.
ALL_PINS = wheelhouse.glue_job_pins()


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def full_wheelhouse() -> Path:
    """The job's wheels, downloaded once per machine (about 10 s, 91 MB) into deploy's cache."""
    folder = cache_folder(ALL_PINS)
    if not folder.is_dir():
        download_wheels(ALL_PINS, folder)
    return folder


def test_the_pins_are_the_closure_of_the_job_requirements_at_the_lock_versions() -> None:
    locked = lock_pins()
    names = {pin.split("==")[0] for pin in ALL_PINS}
    # The four the entry point imports, what they need on Glue, never Dagster itself.
    assert {"simple-salesforce", "pyiceberg", "pyarrow", "dagster-pipes", "pyyaml"} <= names
    assert {"zeep", "lxml", "requests", "pydantic"} <= names  # their dependencies
    assert not names & {"dagster", "dagster-aws", "dagster-dbt", "dbt-core"}
    for pin in ALL_PINS:
        name, _, version = pin.partition("==")
        assert locked[name] == version, pin


def test_an_installed_version_that_differs_from_the_lock_is_refused(tmp_path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("dagster-pipes==0.0.1\npyyaml==6.0.4\n", encoding="utf-8")
    with pytest.raises(DeployError, match=r"dagster-pipes .* requirements.lock pins 0.0.1"):
        pins_of(("dagster-pipes",), lock)


def test_a_prepared_wheelhouse_without_a_pin_is_refused(tmp_path, full_wheelhouse) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for wheel in wheel_files(full_wheelhouse, ALL_PINS):
        if not wheel.name.startswith("simple_salesforce-"):
            (partial / wheel.name).symlink_to(wheel)
    with pytest.raises(DeployError, match=r"has no wheel of simple-salesforce==1\.12\.10"):
        wheel_files(partial, ALL_PINS)


def test_deploy_uploads_the_wheelhouse_and_the_job_installs_it_offline(
    aws_endpoint, capsys, monkeypatch, tmp_path, full_wheelhouse
) -> None:
    monkeypatch.setattr(wheelhouse, "glue_job_pins", lambda: list(ALL_PINS))
    assert deploy_command("deploy", "--environment", "development", "--yes") == 0
    out = capsys.readouterr().out
    assert f"{len(ALL_PINS)} wheels" in out and "the exact pins of requirements.lock" in out
    aws = resolve_settings("development").require_aws()
    job = boto3.client("glue").get_job(JobName=aws.glue_job_name)["Job"]
    arguments = job["DefaultArguments"]
    # pip never asks an index: only these wheels.
    assert arguments["--python-modules-installer-option"] == "--no-index"
    modules = arguments["--additional-python-modules"].split(",")
    local = wheel_files(full_wheelhouse, ALL_PINS)
    folder = f"s3://{aws.bucket('scripts')}/glue/wheelhouse"
    assert modules == [f"{folder}/{wheel.name}" for wheel in local]

    # What Glue does at start: fetch the listed wheels, install them with --no-index.
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    s3 = boto3.client("s3")
    for uri, wheel in zip(modules, local, strict=True):
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(wheel.read_bytes()).digest()
        (fetched / wheel.name).write_bytes(body)
    platforms = [option for platform in GLUE_PLATFORMS for option in ("--platform", platform)]
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            arguments["--python-modules-installer-option"],
            "--ignore-installed",
            "--only-binary=:all:",
            *platforms,
            "--python-version",
            GLUE_PYTHON,
            "--implementation",
            "cp",
            "--target",
            str(tmp_path / "site"),
            *(str(p) for p in sorted(fetched.iterdir())),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    assert "simple-salesforce-1.12.10" in install.stdout and "pyiceberg-0.11.1" in install.stdout

    # A second deploy uploads nothing.
    assert deploy_command("deploy", "--environment", "development") == 0
    out = capsys.readouterr().out
    assert "none    glue job wheelhouse" in out and "nothing to change" in out
