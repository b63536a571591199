"""Shared fixtures: every test gets its own lakehouse under tmp_path; real parts only."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sf_lakehouse.config import Settings, resolve_settings
from sf_lakehouse_tests import network_guard
from sf_lakehouse_tests.moto_server import (  # noqa: F401 - fixtures
    aws_endpoint,
    aws_managed_policies,
    moto_server,
)
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


# Test modules that run the pipeline end to end (Dagster runs, dbt builds, `sf-lakehouse`
# processes, dagster dev, the browser, deploy and the Glue job on moto, 100k-version orgs):
# `make test-fast` leaves them out (DEVELOPERS.md, "Which tests to run"). A test elsewhere can
# mark itself `@pytest.mark.slow`.
SLOW_MODULES = frozenset(
    {
        "test_athena_execution",
        "test_athena_sql",
        "test_aws_glue_entrypoint",
        "test_bad_input",
        "test_chaos",
        "test_check_scope",
        "test_cli",
        "test_concurrency",
        "test_crash_recovery",
        "test_dbt_selection",
        "test_deadlines",
        "test_deploy",
        "test_deploy_credentials",
        "test_emulator_scale",
        "test_extraction_raw_asset",
        "test_glue_catalog",
        "test_glue_job",
        "test_glue_wheelhouse",
        "test_image",
        "test_incremental_dimension",
        "test_launch_lock",
        "test_maintenance",
        "test_monitoring_aws",
        "test_pipeline_e2e",
        "test_production_shape",
        "test_scd2_dbt",
        "test_sensors",
        "test_type_change_e2e",
        "test_ui_browser",
        "test_unwritable_home",
        "test_verify",
        "test_watermark",
    }
)
# A test that starts one of these (a moto server deploy, PostgreSQL) is slow wherever it lives.
SLOW_FIXTURES = frozenset({"aws_endpoint", "aws_managed_policies", "postgres_server"})


# The longest single tests (minutes each on 2 cores): started first, so that the two workers
# do not end with one of them running a long test alone (work stealing packs the rest).
LONGEST_MODULES = ("test_production_shape", "test_cli", "test_ui_browser", "test_image")


def _module_name(item: pytest.Item) -> str:
    return item.module.__name__.rpartition(".")[2] if item.module is not None else ""


NIGHTLY_TIMEOUT_SECONDS = 3 * 3600


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_slow_module = _module_name(item) in SLOW_MODULES
        if in_slow_module or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("nightly") and not item.get_closest_marker("timeout"):
            # A nightly profile runs hundreds of examples: pyproject's 600 s is for one test.
            item.add_marker(pytest.mark.timeout(NIGHTLY_TIMEOUT_SECONDS))


class _LongestFirst:
    """Orders the collected tests (trylast: after pytest-randomly's shuffle, whose order within
    a tier stays; every xdist worker computes the same order)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        def start_rank(item: pytest.Item) -> int:
            if _module_name(item) in LONGEST_MODULES:
                return 0
            return 1 if item.get_closest_marker("slow") else 2

        items.sort(key=start_rank)


# The tests' temporary directories in memory when the machine has room there: the pipeline's
# runs commit to SQLite (Dagster's event log), Iceberg and DuckDB many times a second, and each
# commit's fsync to disk costs more than the work. Killed processes (the crash tests) lose
# nothing either way: the page cache outlives them.
MEMORY_TMP = Path("/dev/shm")
MEMORY_TMP_MIN_FREE_BYTES = 8 * 2**30


def _memory_basetemp(config: pytest.Config) -> Path | None:
    """A fresh directory under /dev/shm for this session (None: --basetemp was given, this is
    an xdist worker, which gets its part from the controller, or /dev/shm lacks room)."""
    if config.option.basetemp or hasattr(config, "workerinput"):
        return None
    if os.environ.get("SF_LAKEHOUSE_TESTS_ON_DISK") == "1":
        return None
    try:
        if shutil.disk_usage(MEMORY_TMP).free < MEMORY_TMP_MIN_FREE_BYTES:
            return None
        return Path(tempfile.mkdtemp(prefix="sf-lakehouse-tests-", dir=MEMORY_TMP))
    except OSError:
        return None


@pytest.hookimpl(tryfirst=True)  # before pytest's tmpdir plugin reads --basetemp
def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_LongestFirst(), "sf_lakehouse_longest_first")
    basetemp = _memory_basetemp(config)
    if basetemp is not None:
        config.option.basetemp = str(basetemp)
        config.add_cleanup(lambda: shutil.rmtree(basetemp, ignore_errors=True))


@pytest.fixture(scope="session")
def network_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The network guard (sf_lakehouse_tests/network_guard), in this process and, through
    PYTHONPATH's sitecustomize, in every Python subprocess started with this environment."""
    log = tmp_path_factory.getbasetemp() / "network-guard.log"
    log.touch()
    guard_dir = str(Path(network_guard.__file__).parent)
    os.environ[network_guard.LOG_VARIABLE] = str(log)
    inherited = os.environ.get("PYTHONPATH")
    paths = [guard_dir, *filter(None, inherited.split(os.pathsep) if inherited else [])]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    network_guard.install(log)
    return log


@pytest.fixture(autouse=True)
def _no_connection_beyond_loopback(network_log: Path) -> Iterator[None]:
    """Fails the test that tried to connect beyond 127.0.0.1 / ::1 (even if the code under test
    caught the refusal): a test never needs the internet."""
    before = network_log.stat().st_size
    yield
    with network_log.open(encoding="utf-8") as handle:
        handle.seek(before)
        attempts = handle.read().strip()
    if attempts:
        pytest.fail(f"connections beyond loopback (the network guard refused them):\n{attempts}")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees another test's (or the developer's) Salesforce or lakehouse settings."""
    for name in SF_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return resolve_settings("local", home=tmp_path / "lakehouse")


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
