"""Issue 16, item 9: every extraction has an overall deadline (login, requests, retries,
backoffs and slow bodies together). A server that never answers, or trickles one byte at a
time, ends the extraction within its deadline with one line, whatever the per-request timeout
(120 s here) and the retries (5) would allow; nothing is appended."""

from __future__ import annotations

import datetime as dt
import threading
import time

import dagster as dg
import pytest

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.extraction import extract_increment
from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog
from sf_lakehouse.pipeline import short_error
from sf_lakehouse.salesforce.client import ClientPolicy, ConnectionSettings, connect
from sf_lakehouse.salesforce.connection import settings_from_environment
from sf_lakehouse.salesforce.deadline import Deadline, DeadlineExceeded
from sf_lakehouse_tests.histories import at, user

HISTORY = [user(f"005000000000000A{i:02d}", i, "EMEA") for i in range(30)]
SLOW_POLICY = ClientPolicy(timeout_seconds=120, max_retries=5, retry_base_seconds=1)
RUN = {"run_id": "run-d", "extracted_at": dt.datetime(2026, 3, 2, tzinfo=dt.UTC)}
FAULTS = {
    "stall": {"kind": "stall", "seconds": 3600, "path": "/services/data"},
    "trickle": {"kind": "trickle", "seconds": 1.5, "path": "/services/data"},
}


def extract_in_thread(emulator, settings: Settings, deadline: Deadline) -> tuple[object, float]:
    """The extraction's outcome and how long it took (a thread, so a hang shows as a time)."""
    outcome: list[object] = []

    def work() -> None:
        try:
            values = settings_from_environment(emulator.env_vars())
            client = connect(ConnectionSettings(**values, policy=SLOW_POLICY), deadline=deadline)
            outcome.append(extract_increment(client, None, settings.object("User"), **RUN))
        except Exception as error:  # the outcome under test
            outcome.append(error)

    started = time.monotonic()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout=30)
    return (outcome[0] if outcome else None), time.monotonic() - started


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_stalled_or_trickling_server_ends_within_the_deadline(
    settings: Settings, emulator_factory, fault: str
) -> None:
    emulator = emulator_factory(HISTORY, now=at(60))
    emulator.set_faults({"seed": 1, "faults": [FAULTS[fault]]})
    outcome, took = extract_in_thread(emulator, settings, Deadline(3, "User extraction"))
    assert isinstance(outcome, DeadlineExceeded), outcome
    assert took < 8, took  # 3 s, plus the read that was waiting when it passed
    message = str(outcome)
    assert "\n" not in message and "User extraction passed its deadline of 3 s" in message
    assert "nothing was appended" in message and "extraction.deadline_seconds" in message


def test_a_run_ends_within_the_object_deadline_with_one_line(settings: Settings, connected) -> None:
    """Through the raw asset: the spec's `extraction.deadline_seconds` bounds the step; the
    step's failure is one line and the raw table is not written."""
    emulator = connected(HISTORY, at(60))
    emulator.set_faults({"seed": 1, "faults": [FAULTS["trickle"]]})
    spec = settings.object("User")
    data = spec.model_dump()
    data["extraction"] = {**data["extraction"], "deadline_seconds": 2}
    started = time.monotonic()
    result = dg.materialize(
        [build_raw_asset(settings, ObjectSpec.model_validate(data))],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert time.monotonic() - started < 15
    assert not result.success
    [failure] = result.get_step_failure_events()
    line = short_error(failure.step_failure_data.error)
    assert line.startswith("User extraction passed its deadline of 2 s while"), line
    catalog = open_catalog(settings.catalog_properties())
    raw = load_table_or_none(catalog, "sf_raw_local.sf_user")
    assert raw is None or raw.current_snapshot() is None


def test_objects_extract_in_parallel_up_to_the_configured_limit(tmp_path) -> None:
    """Runs that Dagster launches (schedule, UI) run each step in its own process: at most
    extraction.max_parallel_objects extractions at once (before: no limit was configurable)."""
    from sf_lakehouse.config import load_config, resolve_settings
    from sf_lakehouse.definitions import build_definitions
    from sf_lakehouse.defs.jobs import executor_config

    config = load_config()
    config["defaults"].setdefault("extraction", {})["max_parallel_objects"] = 2
    settings = resolve_settings("local", home=tmp_path / "lakehouse", config=config)
    job = build_definitions(settings).resolve_job_def("salesforce_pipeline")
    assert job.executor_def.name == "multiprocess"
    limits = executor_config(settings.config.extraction.max_parallel_objects)
    assert limits["tag_concurrency_limits"] == [
        {"key": "sf_lakehouse/step", "value": "extraction", "limit": 2}
    ]
    raw_nodes = [n for n in job.nodes if n.name.startswith("sf_raw__")]
    assert len(raw_nodes) == len(settings.objects)
    assert all(n.definition.tags.get("sf_lakehouse/step") == "extraction" for n in raw_nodes)
