"""A short seeded chaos replay: a multi-object history replayed over a clock step under a seeded
plan of emulator faults (5xx, resets, expired sessions, rate limits, lost query locators,
stalls), with a run killed (SIGKILL, whole process group) at each progress point in turn (one
test per point: a query page held, the raw commit, dbt running, the dimension commit, the checks)
and run again; the kill must land there, inside a Dagster run, and the tables end as a
fault-free replay's.
`benchmarks/chaos_replay.py` is the long version, with a real fault-free replay to compare
with."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sf_lakehouse.emulator import generate_org
from sf_lakehouse_tests.chaos import (
    KILL_POINTS,
    ChaosReplay,
    quick_retries_config,
    transient_faults,
)
from sf_lakehouse_tests.cli_runs import (
    assert_tables_equal_a_clean_replay,
    faulty_emulator,
    home_settings,
)

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
SEED = 20260301
# Every kill point but `anytime` (a delay, which may end before a run exists): progress points.
PROGRESS_POINTS = [point for point in KILL_POINTS if point != "anytime"]
# `make test` kills at the raw commit (75-145 s on 2 cores); `make nightly` at every point.
EVERY_RUN_POINTS = ("raw_commit",)


@pytest.mark.parametrize(
    "point",
    [
        point if point in EVERY_RUN_POINTS else pytest.param(point, marks=pytest.mark.nightly)
        for point in PROGRESS_POINTS
    ],
)
def test_a_run_killed_at_a_progress_point_ends_with_the_tables_of_a_fault_free_replay(
    tmp_path: Path, point: str
) -> None:
    history = generate_org(users=6, seed=SEED % 1000, start=START, days=2)
    clocks = [START + dt.timedelta(days=1, hours=20)]
    home = tmp_path / "lakehouse"
    lines: list[str] = []
    plan = transient_faults(SEED, rate=2.0)
    config = quick_retries_config(tmp_path)
    with faulty_emulator(history, tmp_path / "emulator", clocks[0], plan) as emulator:
        chaos = ChaosReplay(
            emulator,
            home,
            tmp_path,
            seed=SEED,
            kill_probability=1.0,
            kill_points=[point],
            max_kills=1,
            env={"SF_LAKEHOUSE_CONFIG": str(config)},
            log=lines.append,
        )
        report = chaos.replay(clocks)
    print("\n".join([*lines, *report.lines()]))
    # The kill landed where it was meant to, inside a Dagster run; a run that ended before its
    # kill point, or a kill before any run existed, fails the test.
    assert dict(report.kills) == {point: 1} and report.missed_kills == 0, lines
    assert report.kills_before_a_run == 0, lines
    assert report.succeeded == len(clocks), lines
    assert sum(report.faults_injected.values()) > 0 and report.client["retries"] > 0
    assert_tables_equal_a_clean_replay(home_settings(home), history, clocks)
