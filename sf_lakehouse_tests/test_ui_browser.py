"""A person's path through the Dagster UI, in a real browser (Debian's Chromium, headless).

Emulator (a small synthetic org) -> `dagster dev` -> asset graph -> "Materialize all" -> the run
succeeds -> the raw and dimension assets' "Checks" tabs show the checks passed. Screenshots of each
stage go to $SF_LAKEHOUSE_ARTIFACTS (default: the test's tmp_path/screenshots).

Chromium comes from Debian (`.ci/install-browser`), never from `playwright install`.

The same `dagster dev` (one start-up, about 40 s of both cores) also serves the listing test:
every asset, check, schedule and sensor of the code location, over GraphQL.
"""

from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, Response, expect, sync_playwright

from sf_lakehouse.emulator import SalesforceEmulator, generate_org
from sf_lakehouse_tests.dagster_dev import DagsterDev, dagster_dev

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 1000}
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_S = 360  # the UI run took 40 s to 2 min here (2 cores, other tests running)

RAW_KEY = ["sf_raw", "sf_user"]
DIM_KEY = ["sf_curated", "dim_sf_user_scd"]
DIM_CHECK_PREFIXES = (
    "user_scd_id_unique",
    "user_one_current_row",
)
BAD_CHECK_STATUSES = {"FAILED", "EXECUTION_FAILED"}
# The UI's mutations that launch runs (it posts to /graphql?op=<Name>).
LAUNCH_OPS = re.compile(r"/graphql\?op=(LaunchPipelineExecution|LaunchMultipleRuns)\b")

RUN_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on PythonError { message } }
}
"""
RUN_FAILURE_QUERY = """
query ($runId: ID!) {
  logsForRun(runId: $runId) { ... on EventConnection { events {
    __typename
    ... on ExecutionStepFailureEvent { stepKey error { message stack } }
    ... on RunFailureEvent { message }
  } } }
}
"""
CHECKS_QUERY = """
{ assetNodes {
    assetKey { path }
    groupName
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
} }
"""


def chromium_is_installed() -> None:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: the browser test needs Debian's Chromium. "
        "Run `.ci/install-browser` (as root) first; never `playwright install`."
    )


def screenshot(page: Page, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    page.mouse.move(VIEWPORT["width"] - 1, VIEWPORT["height"] - 1)  # no hover effects
    page.screenshot(path=str(path))
    return path


def assert_real_png(path: Path) -> None:
    """A screenshot that exists, is a PNG of the viewport's size and is not a blank page."""
    assert path.is_file(), f"screenshot {path} was not written"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"]), (path, width, height)
    assert len(data) > 20_000, f"{path} is only {len(data)} bytes: a blank page?"


def find_run_ids(value: Any) -> list[str]:
    """The ids of the runs in a launch mutation's response (one launch, or several)."""
    if isinstance(value, dict):
        if value.get("__typename") == "Run":
            return [value.get("runId") or value["id"]]
        return [rid for v in value.values() for rid in find_run_ids(v)]
    if isinstance(value, list):
        return [rid for v in value for rid in find_run_ids(v)]
    return []


def click_materialize_all(page: Page, shots: Path) -> list[str]:
    """Click "Materialize all", confirm a launch dialog if one opens; the launched run ids."""
    launches: list[Response] = []

    def on_response(response: Response) -> None:
        if LAUNCH_OPS.search(response.url):
            launches.append(response)

    page.on("response", on_response)
    page.get_by_role("button", name="Materialize all").click()
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    confirmed = False
    while not launches:
        assert time.monotonic() < deadline, "clicking 'Materialize all' launched no run"
        dialog = page.get_by_role("dialog")
        if not confirmed and dialog.count() and dialog.first.is_visible():
            screenshot(page, shots, "01b-launch-dialog")
            dialog.first.get_by_role(
                "button", name=re.compile(r"^(Launch|Materialize|Confirm|Continue)")
            ).last.click()
            confirmed = True
        page.wait_for_timeout(250)
    page.remove_listener("response", on_response)
    body = launches[0].json()
    assert "errors" not in body, body
    run_ids = find_run_ids(body)
    assert run_ids, f"the launch did not start a run: {str(body)[:3000]}"
    return run_ids


def wait_for_run(server: DagsterDev, run_id: str) -> None:
    """Poll GraphQL until the run ends; fail with its errors unless it succeeded."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        status = run["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"run {run_id} still {status} after {RUN_TIMEOUT_S} s")
    if status != "SUCCESS":
        events = server.graphql(RUN_FAILURE_QUERY, {"runId": run_id})["logsForRun"]["events"]
        errors = [
            f"{e.get('stepKey')}: {e['error']['message']}\n{''.join(e['error']['stack'])}"
            if e["__typename"] == "ExecutionStepFailureEvent"
            else e["message"]
            for e in events
            if e["__typename"] in {"ExecutionStepFailureEvent", "RunFailureEvent"}
        ]
        raise AssertionError(f"run {run_id} ended {status}:\n" + "\n".join(errors))


def asset_checks(server: DagsterDev) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Asset key -> its checks with the status of their execution for the latest materialization."""
    checks = {}
    for node in server.graphql(CHECKS_QUERY)["assetNodes"]:
        result = node["assetChecksOrError"]
        assert result["__typename"] == "AssetChecks", result
        checks[tuple(node["assetKey"]["path"])] = [
            {
                "name": c["name"],
                "status": (c["executionForLatestMaterialization"] or {}).get("status"),
            }
            for c in result["checks"]
        ]
    return checks


def open_checks_tab(page: Page, server: DagsterDev, key: list[str], checks: list[dict]) -> None:
    """The asset's page, tab "Checks": each check listed as succeeded, none failed."""
    page.goto(f"{server.url}/assets/{'/'.join(key)}")
    page.get_by_role("tab", name="Checks").click()
    expect(page).to_have_url(re.compile(r"view=checks"), timeout=UI_TIMEOUT_MS)
    if not checks:
        expect(page.get_by_text("No checks defined for this asset")).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        return
    expect(page.get_by_text(f"Checks ({len(checks)})", exact=True)).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )
    # One check at a time through the list's filter (a long list may be virtualized): each is
    # listed as succeeded; the filter matches substrings, so count every check it matches.
    search = page.get_by_placeholder("Filter checks")
    for check in checks:
        search.fill(check["name"])
        matching = [c for c in checks if check["name"] in c["name"]]
        succeeded = sum(c["status"] == "SUCCEEDED" for c in matching)
        expect(page.get_by_text("Succeeded", exact=True)).to_have_count(succeeded)
        for bad in ("Failed", "Execution failed"):
            expect(page.get_by_text(bad, exact=True)).to_have_count(0)
    search.fill("")
    expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
    # The first check is selected: its latest execution shows as passed.
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)


def walk_through_the_ui(server: DagsterDev, page: Page, shots: Path) -> list[Path]:
    taken: list[Path] = []
    groups = sorted({n["groupName"] for n in server.graphql(CHECKS_QUERY)["assetNodes"]})
    # Groups expanded, so each asset shows in the graph (collapsed groups are the default).
    expanded = quote(",".join(f"global@global:{g}" for g in groups))
    graph_url = f"{server.url}/asset-groups?expanded={expanded}"

    # 1. The asset graph, nothing materialized yet.
    page.goto(graph_url)
    expect(page.get_by_role("button", name="Materialize all")).to_be_enabled(timeout=UI_TIMEOUT_MS)
    for name in ("sf_user", "dim_sf_user_scd", "sf_account", "dim_sf_opportunity_scd"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("Loading...")).to_have_count(0, timeout=UI_TIMEOUT_MS)
    taken.append(screenshot(page, shots, "01-asset-graph"))

    # 2. "Materialize all" launches one run of the whole graph; it succeeds.
    [run_id] = click_materialize_all(page, shots)
    expect(page.get_by_text(f"Launched run {run_id[:8]}")).to_be_visible(timeout=UI_TIMEOUT_MS)
    wait_for_run(server, run_id)
    page.goto(f"{server.url}/runs/{run_id}")
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("RUN_SUCCESS", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    taken.append(screenshot(page, shots, "02-run"))

    # 3. Checks, as the API reports them: the dimension's dbt tests all passed, none failed.
    checks = asset_checks(server)
    dim_checks = checks[tuple(DIM_KEY)]
    for prefix in DIM_CHECK_PREFIXES:
        assert any(c["name"].startswith(prefix) for c in dim_checks), (prefix, dim_checks)
    assert all(c["status"] == "SUCCEEDED" for c in dim_checks), dim_checks
    bad = {k: c for k, cs in checks.items() for c in cs if c["status"] in BAD_CHECK_STATUSES}
    assert not bad, f"checks that did not pass: {bad}"

    # 4. ... and as the UI shows them, on each asset's "Checks" tab.
    for key in (RAW_KEY, DIM_KEY):
        open_checks_tab(page, server, key, checks[tuple(key)])
        taken.append(screenshot(page, shots, f"03-checks-{'-'.join(key)}"))

    # 5. One dbt test picked from the list: the detail says it passed.
    name = next(c["name"] for c in dim_checks if c["name"].startswith(DIM_CHECK_PREFIXES[1]))
    page.get_by_placeholder("Filter checks").fill(name)
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(1)
    page.get_by_text("Succeeded", exact=True).click()
    # The detail pane's title is the check's full name (the list shows it shortened).
    expect(page.get_by_text(name, exact=True).filter(visible=True).first).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    taken.append(screenshot(page, shots, "04-check-exactly-one-current-row"))

    # 6. The graph again: every asset materialized, its checks passed.
    page.goto(graph_url)
    expect(page.get_by_text("Loading...")).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text(f"{len(dim_checks)} / {len(dim_checks)} Passed").first).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )
    expect(page.get_by_text("Materialized", exact=True)).to_have_count(len(checks))
    taken.append(screenshot(page, shots, "05-asset-graph-after-run"))
    return taken


def log_tail(path: Path, chars: int = 6000) -> str:
    """The end of `dagster dev`'s log, without its colour codes."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return re.sub(r"\x1b\[[0-9;]*m", "", text)[-chars:]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """`dagster dev` from the repository root against the emulator (a small synthetic org)."""
    tmp_path = tmp_path_factory.mktemp("dagster-dev")
    history = generate_org(users=40, seed=3, start=datetime(2026, 3, 1, 8, tzinfo=UTC), days=3)
    emulator = SalesforceEmulator(
        history, workdir=tmp_path / "emulator", now=datetime(2026, 3, 4, tzinfo=UTC)
    ).start()
    try:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("SF_") and k != "DAGSTER_HOME"
        }
        env.update(emulator.env_vars())
        env["SF_LAKEHOUSE_HOME"] = str(tmp_path / "lakehouse")
        env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        with dagster_dev(tmp_path, env) as server:
            yield server
    finally:
        emulator.stop()


def test_materialize_all_from_the_ui_and_see_the_checks_pass(
    tmp_path: Path, served: DagsterDev
) -> None:
    chromium_is_installed()
    shots = Path(os.environ.get("SF_LAKEHOUSE_ARTIFACTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    server = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(UI_TIMEOUT_MS)
            try:
                taken = walk_through_the_ui(server, page, shots)
            except Exception as exc:
                failure = shots / "failure.png"
                try:
                    page.screenshot(path=str(failure))
                except Exception as shot_error:
                    failure = Path(f"(no screenshot: {shot_error})")
                raise AssertionError(
                    f"{type(exc).__name__}: {exc}\n\nscreenshot: {failure}\n"
                    f"--- tail of {server.log_path} ---\n{log_tail(server.log_path)}"
                ) from exc
        finally:
            browser.close()

    for path in taken:
        assert_real_png(path)


ASSETS_QUERY = """
{ assetNodes {
    assetKey { path }
    groupName
    assetChecksOrError { ... on AssetChecks { checks { name } } }
} }
"""
AUTOMATION_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name
    schedules { name cronSchedule executionTimezone pipelineName scheduleState { status } }
    sensors { name sensorType targets { pipelineName } sensorState { status } }
    jobs { name }
} } } }
"""


def test_dagster_dev_lists_assets_checks_schedules_and_sensors(served: DagsterDev) -> None:
    """`dagster dev` from the repository root serves the code location with both assets and
    checks, its schedules, sensors and jobs (what a run changes is none of these)."""
    nodes = served.graphql(ASSETS_QUERY)["assetNodes"]
    [repository] = served.graphql(AUTOMATION_QUERY)["repositoriesOrError"]["nodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    for name in ("user", "account", "opportunity"):
        raw, dimension = f"sf_raw/sf_{name}", f"sf_curated/dim_sf_{name}_scd"
        assert {raw, dimension} <= set(by_key)
        assert by_key[raw]["groupName"] == "salesforce_raw"
        checks = {c["name"] for c in by_key[dimension]["assetChecksOrError"]["checks"]}
        assert {f"{name}_scd_id_unique", f"{name}_one_current_row"} <= checks
        assert {f"every_raw_{name}_in_dimension", "dimension_matches_the_scd2_rule"} <= checks
        raw_checks = {c["name"] for c in by_key[raw]["assetChecksOrError"]["checks"]}
        assert raw_checks == {
            "raw_versions_are_unique",
            f"raw_ids_are_18_character_{name}_ids",
            "raw_tracked_fields_exist",
            "raw_row_count_never_drops",
            "raw_column_types_unchanged",
        }
    schedules = {s["name"]: s for s in repository["schedules"]}
    assert schedules["salesforce_pipeline_schedule"]["cronSchedule"] == "0 */6 * * *"
    assert schedules["salesforce_pipeline_schedule"]["executionTimezone"] == "UTC"
    assert schedules["lakehouse_maintenance_schedule"]["pipelineName"] == "lakehouse_maintenance"
    sensors = {s["name"]: s for s in repository["sensors"]}
    assert sorted(t["pipelineName"] for t in sensors["salesforce_change_sensor"]["targets"]) == [
        "sf_account_pipeline",
        "sf_opportunity_pipeline",
        "sf_user_pipeline",
    ]
    assert sensors["run_failure_recorder"]["sensorType"] == "RUN_STATUS"
    assert sensors["run_success_monitor"]["sensorType"] == "RUN_STATUS"
    assert sensors["freshness_alert_sensor"]["sensorState"]["status"] == "RUNNING"
    jobs = {j["name"] for j in repository["jobs"]}
    assert {"salesforce_pipeline", "sf_user_pipeline", "lakehouse_maintenance"} <= jobs
