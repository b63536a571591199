"""Shared fixtures: every test gets its own lakehouse under tmp_path; real parts only."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sf_lakehouse.config import Settings, resolve_settings
from sf_lakehouse.defs.dbt import dbt_command
from sf_lakehouse_tests.moto_server import aws_endpoint  # noqa: F401 - a fixture
from sf_lakehouse_tests.postgres import postgres_server  # noqa: F401 - a fixture

SF_VARS = (
    "SF_AUTH_METHOD",
    "SF_LOGIN_URL",
    "SF_DOMAIN",
    "SF_USERNAME",
    "SF_PASSWORD",
    "SF_SECURITY_TOKEN",
    "SF_CLIENT_ID",
    "SF_CLIENT_SECRET",
    "SF_SESSION_ID",
    "SF_INSTANCE_URL",
    "SF_CA_BUNDLE",
    "SF_API_VERSION",
    "SF_LAKEHOUSE_ENV",
    "SF_LAKEHOUSE_HOME",
    "DAGSTER_HOME",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees another test's (or the developer's) Salesforce or lakehouse settings."""
    for name in SF_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return resolve_settings("local", home=tmp_path / "lakehouse")


def run_dbt(
    settings: Settings, *args: str, target_path: Path | None = None
) -> subprocess.CompletedProcess:
    """Run dbt for real on DuckDB against this test's lakehouse."""
    command = dbt_command(
        *args,
        "--target-path",
        str(target_path or settings.home / "dbt_target"),
        "--vars",
        json.dumps(settings.dbt_vars()),
    )
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator:
    """Start real emulators (HTTPS on 127.0.0.1) and stop them after the test."""
    from sf_lakehouse.emulator import SalesforceEmulator

    started: list[SalesforceEmulator] = []

    def start(history: list[dict], **kwargs: object) -> SalesforceEmulator:
        emulator = SalesforceEmulator(
            history, workdir=tmp_path / f"emulator{len(started)}", **kwargs
        )
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def connected(emulator_factory, monkeypatch: pytest.MonkeyPatch):
    """Start an emulator for a history and point the SF_* variables at it."""

    def start(history: list[dict], now: dt.datetime):
        emulator = emulator_factory(history, now=now)
        for key, value in emulator.env_vars().items():
            monkeypatch.setenv(key, value)
        return emulator

    return start
