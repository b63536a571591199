"""dbt in the run's process (`sf_lakehouse.defs.dbt_in_process`): the same Dagster events as
dagster-dbt's `dbt` subprocess, a second invocation in one process like the first, a failing dbt
test failing its check and the step, and the `dbt.invocation` setting. Real runs: the emulator,
the Iceberg catalog, dbt on DuckDB."""

from __future__ import annotations

import dataclasses
import json
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import DagsterDbtCliRuntimeError

from sf_lakehouse.config import DBT_PROJECT_DIR, Settings, resolve_settings
from sf_lakehouse.config.environment import PROJECT_DIR_VAR
from sf_lakehouse.config.sections import DbtSection
from sf_lakehouse.defs.dbt_in_process import InProcessDbtBuild, RunnerManifest
from sf_lakehouse.defs.dbt_in_process import _release as release_dbt
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse_tests.histories import at
from sf_lakehouse_tests.scd2_reference import expected_dimension
from sf_lakehouse_tests.test_dbt_selection import HISTORY
from sf_lakehouse_tests.test_pipeline_e2e import dimension_rows, materialize_once, raw_rows

# Differ between any two runs, whichever way dbt ran.
_PER_INVOCATION = {"invocation_id", "Execution Duration"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())


def with_invocation(settings: Settings, invocation: str) -> Settings:
    config = settings.config.model_copy(update={"dbt": DbtSection(invocation=invocation)})
    return dataclasses.replace(settings, config=config)


def test_local_runs_dbt_in_process_and_athena_in_a_subprocess() -> None:
    """The default follows the engine (docs/design.md); the setting overrides it."""
    local = resolve_settings("local")
    assert local.dbt_invocation == "in_process"
    assert build_resources(local)["dbt"].invocation == "in_process"
    prod = resolve_settings("prod")
    assert prod.dbt_invocation == "subprocess"
    assert with_invocation(local, "subprocess").dbt_invocation == "subprocess"
    with pytest.raises(ValueError):
        DbtSection(invocation="thread")  # type: ignore[arg-type]


def test_generic_tests_keep_their_arguments(manifest: dict) -> None:
    """Regression guard: the manifest artifact read generic tests back as singular ones, which
    dbt then compiled without their arguments (`_dbt_generic_test_kwargs` is undefined)."""
    runner = RunnerManifest(manifest).dbt_manifest
    generic = [
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and "test_metadata" in node
    ]
    assert generic
    for unique_id in generic:
        assert type(runner.nodes[unique_id]).__name__ == "GenericTestNode"
        assert (
            runner.nodes[unique_id].test_metadata.kwargs
            == (manifest["nodes"][unique_id]["test_metadata"]["kwargs"])
        )


def test_a_manifest_parsed_with_other_databases_does_not_fit(manifest: dict) -> None:
    """dbt renders source and model schemas at parse time: a run on other databases must not
    use relations named after the local ones."""
    runner = RunnerManifest(manifest)
    local = resolve_settings("local")
    assert runner.fits({"source": local.raw_database, "model": local.curated_database})
    assert not runner.fits({"source": "sf_raw_other", "model": local.curated_database})
    assert not runner.fits({"source": local.raw_database, "model": "sf_curated_other"})


def _outcome(result: dg.ExecuteInProcessResult) -> dict:
    """What a run reported: materialized keys with their metadata keys and statuses, and each
    check's result."""
    materialized = {}
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        materialized[tuple(event.asset_key.path)] = (
            sorted(set(metadata) - _PER_INVOCATION),
            metadata["status"].value if "status" in metadata else None,
        )
    checks = {
        (tuple(e.asset_key.path), e.check_name): (e.passed, e.severity, e.metadata["status"].value)
        for e in result.get_asset_check_evaluations()
        if "status" in e.metadata
    }
    return {"materialized": materialized, "checks": checks}


def _runs_in_this_process_only(result: dg.ExecuteInProcessResult, instance) -> bool:
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return any(m.startswith("Running dbt command in process") for m in messages)


@pytest.mark.slow
def test_in_process_dbt_reports_what_the_subprocess_reports(
    settings: Settings, connected, tmp_path: Path
) -> None:
    """One org into two lakehouses, dbt in a subprocess for one and in this process for the
    other: the same materializations (metadata keys, statuses), the same check results and the
    same dimensions. Then a second in-process invocation in this process after a change, which
    must build like the first, and leave the DuckDB file free for another process."""
    emulator = connected(HISTORY, at(50))
    home = tmp_path / "subprocess-home"  # its own lakehouse
    subprocess_settings = with_invocation(resolve_settings("local", home=home), "subprocess")
    in_process_settings = with_invocation(settings, "in_process")

    by_subprocess = materialize_once(subprocess_settings, dg.DagsterInstance.ephemeral())
    instance = dg.DagsterInstance.ephemeral()
    in_process = materialize_once(in_process_settings, instance)
    assert by_subprocess.success and in_process.success
    assert _runs_in_this_process_only(in_process, instance)
    reported = _outcome(in_process)
    assert reported == _outcome(by_subprocess)
    assert len(reported["checks"]) == 24  # every dbt data test of the project, as a check
    assert all(passed for passed, _, _ in reported["checks"].values())
    for spec in settings.objects:
        assert dimension_rows(in_process_settings, spec) == dimension_rows(
            subprocess_settings, spec
        )

    emulator.set_clock(at(150))  # User changes: a second dbt invocation in this process
    second = materialize_once(in_process_settings, instance)
    assert second.success, second
    assert _runs_in_this_process_only(second, instance)
    for spec in settings.objects:
        expected = expected_dimension(spec, raw_rows(in_process_settings, spec.api_name))
        assert dimension_rows(in_process_settings, spec) == expected, spec.api_name
    opened = subprocess.run(
        [sys.executable, "-c", OPEN_DUCKDB, str(in_process_settings.duckdb_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert opened.returncode == 0, opened.stderr  # dbt-duckdb's environment was closed


OPEN_DUCKDB = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
FAILING_TEST = """-- A data test that fails whenever the dimension has rows.
select * from {{ ref('dim_sf_user_scd') }}
"""


@pytest.fixture(scope="module")
def project_with_a_failing_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project (config/ and dbt_project/) with one more dbt test that fails,
    parsed once."""
    root = tmp_path_factory.mktemp("project")
    source = DBT_PROJECT_DIR.parent
    shutil.copytree(source / "config", root / "config")
    shutil.copytree(
        DBT_PROJECT_DIR,
        root / "dbt_project",
        ignore=shutil.ignore_patterns("logs", "dbt_packages", "sf_lakehouse_dbt-*", "parse-*"),
    )
    (root / "dbt_project" / "tests" / "user_dimension_is_empty.sql").write_text(FAILING_TEST)
    project = str(root / "dbt_project")
    # In this process (dbt is imported here anyway): a `dbt` subprocess would import it again.
    from dbt.cli.main import dbtRunner

    try:
        parsed = dbtRunner().invoke(
            [
                *("parse", "--quiet", "--no-send-anonymous-usage-stats"),
                *("--project-dir", project, "--profiles-dir", project),
            ]
        )
    finally:
        release_dbt()
    assert parsed.success, parsed.exception
    return root


@pytest.mark.slow
@pytest.mark.parametrize("invocation", ["in_process", "subprocess"])
def test_a_failing_dbt_test_fails_its_check_and_the_step(
    invocation: str,
    project_with_a_failing_test: Path,
    connected,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PROJECT_DIR_VAR, str(project_with_a_failing_test))
    settings = with_invocation(resolve_settings("local", home=tmp_path / "lakehouse"), invocation)
    connected(HISTORY, at(50))
    result = materialize_once(settings, dg.DagsterInstance.ephemeral())
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "sf_lakehouse_dbt"
    assert "user_dimension_is_empty" in str(failure.event_specific_data.error)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["user_dimension_is_empty"].passed
    assert checks["user_dimension_is_empty"].asset_key.path[-1] == "dim_sf_user_scd"
    # The other tests ran and passed; the dimensions were written before their tests.
    assert all(e.passed for name, e in checks.items() if name != "user_dimension_is_empty")
    assert len(checks) == 25


def test_a_runner_thread_that_died_without_reporting_ends_the_step() -> None:
    """Regression: an import that failed in dbt's thread (CPython 3.11's AST compile in a new
    thread) never sent the last message, and the step waited until pytest's 10-minute timeout."""
    events: queue.Queue = queue.Queue()
    events.put("a message sent before dying")
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    assert InProcessDbtBuild._next(events, dead) == "a message sent before dying"
    with pytest.raises(DagsterDbtCliRuntimeError, match="ended without reporting its result"):
        InProcessDbtBuild._next(events, dead)
