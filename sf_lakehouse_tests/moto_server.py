"""A real moto server on 127.0.0.1 standing in for AWS (S3, Glue, IAM, Secrets Manager, Athena).

`aws_endpoint` (fixture): one server per pytest worker, emptied before every test (moto's reset
and its state-manager transitions), every AWS client pointed at it through AWS_ENDPOINT_URL and fake
credentials. AWS-managed IAM policies are loaded only for a test that asks for them
(`aws_managed_policies`): loading them costs about 3-6 s per reset.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

AWS_REGION = "eu-west-1"


def _insecure_transport_only(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    return condition == {"Bool": {"aws:SecureTransport": "false"}}


def _evaluate_bucket_policy_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto evaluates bucket policies without their conditions, so deploy's TLS-only Deny
    (`aws:SecureTransport` false) would deny every request. AWS applies that statement only to
    plain-HTTP requests, and the pipeline speaks HTTPS to AWS: evaluate policies as AWS does for
    a request over TLS (the moto server itself is plain HTTP on 127.0.0.1)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy.decode())
        statements = policy.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        kept = [s for s in statements if not _insecure_transport_only(s)]
        if not kept:
            return PermissionResult.NEUTRAL
        over_tls = IAMPolicy(json.dumps({**policy, "Statement": kept}))
        return over_tls.is_action_permitted(action, resource)

    monkeypatch.setattr(FakeBucket, "get_permission", get_permission)


# What the deploys of the AWS tests upload as the Glue job's wheelhouse: the wheels of two
# small pins of the lock instead of the job's 43 (91 MB, about 3 s per deploy on moto).
# test_glue_wheelhouse.py deploys the whole wheelhouse and installs it offline.
SMALL_WHEELHOUSE_REQUIREMENTS = ("dagster-pipes", "PyYAML")


def small_wheelhouse(monkeypatch: pytest.MonkeyPatch) -> None:
    from sf_lakehouse.aws.deploy import wheelhouse

    pins = wheelhouse.pins_of(SMALL_WHEELHOUSE_REQUIREMENTS)
    monkeypatch.setattr(wheelhouse, "glue_job_pins", lambda: list(pins))


MODELS_WITH_TRANSITIONS = ("glue::job_run",)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One moto server per pytest worker (starting one costs about 1-2 s); tests empty it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    endpoint = moto_server
    _evaluate_bucket_policy_over_tls(monkeypatch)
    small_wheelhouse(monkeypatch)
    # moto keeps its accounts in process-wide state: start every test from an empty AWS,
    # without the time-based transitions an earlier test set.
    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
    for model in MODELS_WITH_TRANSITIONS:
        requests.post(
            f"{endpoint}/moto-api/state-manager/unset-transition",
            json={"model_name": model},
            timeout=30,
        ).raise_for_status()
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "MOTO_IAM_LOAD_MANAGED_POLICIES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    yield endpoint


@pytest.fixture
def aws_managed_policies(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AWS-managed IAM policies on the emptied server (moto reads the variable when a test's
    first IAM request creates its IAM backend, in this process): for a test that attaches one."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    return aws_endpoint


# --- deploy helpers shared by the AWS tests ----------------------------------------------------


def deploy_command(*args: str) -> int:
    """`sf-lakehouse <args>` in this process: the parser and the handler `main` runs."""
    from sf_lakehouse.cli import build_parser

    parsed = build_parser().parse_args(list(args))
    return int(parsed.handler(parsed))


def user_only_config(directory: Path) -> Path:
    """A copy of the pipeline config with only the User object spec (the emulator serves
    Users only); returns the config file's path."""
    from sf_lakehouse.config import REPO_ROOT

    (directory / "objects").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "config" / "pipeline-config.yml", directory / "pipeline-config.yml")
    shutil.copy(REPO_ROOT / "config" / "objects" / "user.yml", directory / "objects" / "user.yml")
    return directory / "pipeline-config.yml"


def emulator_secret(emulator: Any, **overrides: str) -> dict[str, str]:
    """Secret values that log in to the emulator: the secret itself says where (login_url) and
    which CA to trust (ca_bundle); the process environment may not."""
    env = emulator.env_vars()
    values = {
        "username": env["SF_USERNAME"],
        "password": env["SF_PASSWORD"],
        "security_token": env["SF_SECURITY_TOKEN"],
        "domain": "login",
        "login_url": env["SF_LOGIN_URL"],
        "ca_bundle": env["SF_CA_BUNDLE"],
    }
    return {**values, **overrides}


def write_credentials_file(path: Path, values: dict[str, str]) -> Path:
    """A credentials file only its owner can read (deploy refuses any other)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(values, handle)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def user_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_factory: Any) -> Any:
    """An emulator with 20 users, the User-only config (SF_LAKEHOUSE_CONFIG) and a credentials
    file for it: what a deploy needs to log in and describe."""
    import datetime as dt

    from sf_lakehouse.emulator import generate_org

    start = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    history = generate_org(users=20, seed=8, start=start, days=2, accounts=0, opportunities=0)
    emulator = emulator_factory(history, now=start + dt.timedelta(days=3))
    config = user_only_config(tmp_path / "config")
    monkeypatch.setenv("SF_LAKEHOUSE_CONFIG", str(config))
    credentials = write_credentials_file(tmp_path / "creds.json", emulator_secret(emulator))
    return SimpleNamespace(
        emulator=emulator, history=history, config=config, credentials=credentials
    )
