"""The Glue job's script runs where `dagster` and `dagster_dbt` cannot be imported (the job
installs only `dagster-pipes`), and finds the object specs Glue copied flat next to it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import boto3
import pytest

from sf_lakehouse.config import REPO_ROOT, resolve_settings
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests import moto_server
from sf_lakehouse_tests.moto_server import deploy_command

user_org = moto_server.user_org  # a fixture

BLOCKER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("dagster", "dagster_dbt"):
                raise ImportError(f"{name} is not installed in the Glue job")
            return None

    sys.meta_path.insert(0, Blocked())
    """
)


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def run_blocked(tmp_path, code: str, env: dict[str, str] | None = None, cwd=None):
    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO_ROOT)])
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd or tmp_path,
        timeout=300,
        check=False,
    )


def test_the_blocker_blocks(tmp_path) -> None:
    result = run_blocked(tmp_path, "import dagster")
    assert result.returncode != 0
    assert "dagster is not installed in the Glue job" in result.stderr


def test_the_import_chain_needs_no_dagster(tmp_path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from sf_lakehouse.aws import glue_entrypoint
        import sf_lakehouse.config, sf_lakehouse.extraction, sf_lakehouse.lakehouse.tables
        import sf_lakehouse.salesforce.client, sf_lakehouse.aws.secrets, dagster_pipes
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dagster", "dagster_dbt"))
        print("loaded:", loaded)
        """
    )
    result = run_blocked(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert "loaded: []" in result.stdout


def test_the_job_runs_without_dagster_with_specs_copied_flat(
    aws_endpoint, capsys, tmp_path, user_org
) -> None:
    """Deploy (User only, against the emulator), then run the entry point as Glue would: the
    config and the specs flat in the working directory, the arguments of the deployed job."""
    code = deploy_command(
        "deploy",
        "--environment",
        "development",
        "--yes",
        "--credentials-file",
        str(user_org.credentials),
    )
    assert code == 0, capsys.readouterr().err
    settings = resolve_settings("development")
    job = boto3.client("glue").get_job(JobName=settings.require_aws().glue_job_name)["Job"]
    workdir = tmp_path / "glue-workdir"
    workdir.mkdir()
    s3 = boto3.client("s3")
    for uri in job["DefaultArguments"]["--extra-files"].split(","):
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        (workdir / key.rsplit("/", 1)[1]).write_bytes(body)
    assert sorted(p.name for p in workdir.iterdir()) == ["pipeline-config.yml", "user.yml"]
    arguments = {
        "--SF_LAKEHOUSE_ENV": job["DefaultArguments"]["--SF_LAKEHOUSE_ENV"],
        "--SF_LAKEHOUSE_CONFIG": job["DefaultArguments"]["--SF_LAKEHOUSE_CONFIG"],
        "--SF_OBJECT": "User",
    }
    argv = [part for item in arguments.items() for part in item]
    script = textwrap.dedent(
        f"""
        import json, sys
        from sf_lakehouse.aws import glue_entrypoint
        metadata = glue_entrypoint.main({argv!r})
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dagster", "dagster_dbt"))
        print(json.dumps({{"appended": metadata["rows_appended"], "dagster": loaded}}))
        """
    )
    # Not the checkout's config: what Glue copied. The package comes from the checkout here.
    env = {"SF_LAKEHOUSE_CONFIG": "", "SF_LAKEHOUSE_HOME": str(tmp_path / "home")}
    result = run_blocked(tmp_path, script, env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dagster"] == []
    users = len({r["Id"] for r in user_org.history})
    assert report["appended"] == users
    table = open_catalog(settings.catalog_properties()).load_table("sf_raw_development.sf_user")
    assert table.scan().to_arrow().num_rows == users


def test_specs_beside_the_config(tmp_path) -> None:
    from sf_lakehouse.aws.glue_entrypoint import object_specs_beside
    from sf_lakehouse.config import ConfigError

    shutil.copy(REPO_ROOT / "config" / "pipeline-config.yml", tmp_path / "pipeline-config.yml")
    with pytest.raises(ConfigError, match="no object spec"):
        object_specs_beside(tmp_path / "pipeline-config.yml")
    for name in ("user.yml", "account.yml"):
        shutil.copy(REPO_ROOT / "config" / "objects" / name, tmp_path / name)
    specs = object_specs_beside(tmp_path / "pipeline-config.yml")
    assert [s.api_name for s in specs] == ["Account", "User"]
    # A checkout: objects/ beside the config.
    checkout = object_specs_beside(REPO_ROOT / "config" / "pipeline-config.yml")
    assert {s.api_name for s in checkout} == {"User", "Account", "Opportunity"}
