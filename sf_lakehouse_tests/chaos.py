"""A seeded chaos replay: a history replayed through the emulator, one clock step at a time,
with `sf-lakehouse run` processes killed (SIGKILL, whole process group) at seeded points and
emulator faults injected; each step is run again until a run succeeds, as a scheduler would.
Used by `test_chaos.py` (a short replay) and `benchmarks/chaos_replay.py` (a long one).

Kill points: `extraction` (a query page held by the emulator), `raw_commit` and
`dimension_commit` (the test-only barrier before an Iceberg commit), `dbt` (while a dbt process
runs), `checks` (when a check step starts), `anytime` (a seeded delay after the start).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sf_lakehouse_tests.cli_runs import (
    DBT_STARTED,
    FaultyEmulator,
    RunProcess,
    cli_env,
    dbt_processes,
    home_settings,
    log_has,
    pause_at_commit,
    raw_keys,
    wait_for,
)

KILL_POINTS = ("extraction", "raw_commit", "dbt", "dimension_commit", "checks", "anytime")


def transient_faults(seed: int, rate: float = 1.0) -> dict:
    """A seeded plan of the faults a client with retries rides out; none changes what the org
    holds (no `malformed` values, no `commit_lag`), so a replay under them must end as a
    fault-free one. `rate` scales the probabilities."""
    return {
        "seed": seed,
        "faults": [
            {"kind": "http_503", "body": "html", "probability": 0.05 * rate},
            {"kind": "http_500", "body": "json", "probability": 0.03 * rate},
            {"kind": "session_expired", "every": 11},
            {"kind": "rate_limited", "probability": 0.03 * rate},
            {"kind": "reset", "probability": 0.03 * rate},
            {"kind": "stall", "seconds": 3, "probability": 0.02 * rate},
            {"kind": "invalid_locator", "probability": 0.2 * rate},
        ],
    }


def quick_retries_config(directory: Path) -> Path:
    """A copy of config/ whose client retries after fractions of a second (and gives a stalled
    request 2 s), so faults cost little time; returns its pipeline-config.yml."""
    import shutil

    from sf_lakehouse.config import REPO_ROOT

    config = directory / "config"
    if not config.exists():
        shutil.copytree(REPO_ROOT / "config", config)
    path = config / "pipeline-config.yml"
    text = path.read_text(encoding="utf-8")
    quick = (
        '    api_version: "59.0"\n    timeout_seconds: 2\n    max_retries: 8\n'
        "    retry_base_seconds: 0.05\n    retry_max_seconds: 0.5\n"
        "    rate_limit_retry_seconds: 0.2\n"
    )
    assert '    api_version: "59.0"\n' in text
    path.write_text(text.replace('    api_version: "59.0"\n', quick, 1), encoding="utf-8")
    return path


@dataclass
class ChaosReport:
    clocks: int = 0
    runs: int = 0
    succeeded: int = 0
    failed: int = 0  # ended with an error (an injected fault the client gave up on)
    kills: Counter = field(default_factory=Counter)  # kill point -> kills
    missed_kills: int = 0  # the run finished before its kill point came
    kills_before_a_run: int = 0  # killed while no Dagster run of the attempt existed yet
    faults_injected: Counter = field(default_factory=Counter)
    client: Counter = field(default_factory=Counter)  # the client's retries, re-logins, ...
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults_injected.items()))
        kills = ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items()))
        rows = ", ".join(f"{k} {v}" for k, v in sorted(self.rows.items()))
        return [
            f"clock steps: {self.clocks}",
            f"runs: {self.runs} ({self.succeeded} succeeded, {self.failed} failed, "
            f"{sum(self.kills.values())} killed, {self.missed_kills} finished before their kill)",
            f"kills: {kills or 'none'} ({self.kills_before_a_run} before a Dagster run existed)",
            f"faults injected: {faults or 'none'}",
            "client: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.client.items()) if v) or "no retries"),
            f"rows: {rows}",
            f"wall time: {self.seconds:.0f} s",
        ]


class ChaosReplay:
    """Replay `history` into the lakehouse at `home` through `emulator`."""

    def __init__(
        self,
        emulator: FaultyEmulator,
        home: Path,
        workdir: Path,
        *,
        seed: int,
        kill_probability: float,
        kill_points: Sequence[str] = KILL_POINTS,
        max_kills_per_clock: int = 2,
        max_kills: int | None = None,
        env: dict[str, str] | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.emulator = emulator
        self.home = home
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.kill_probability = kill_probability
        self.kill_points = tuple(kill_points)
        self.max_kills_per_clock = max_kills_per_clock
        self.max_kills = max_kills
        self.env = dict(env or {})
        self.log = log
        self.settings = home_settings(home)
        self.report = ChaosReport()
        self._count = 0

    def replay(self, clocks: Sequence[dt.datetime]) -> ChaosReport:
        started = time.monotonic()
        for clock in clocks:
            self.emulator.set_clock(clock)
            self.report.clocks += 1
            kills = 0
            while True:
                point = None
                total = sum(self.report.kills.values())
                allowed = self.max_kills is None or total < self.max_kills
                if (
                    allowed
                    and kills < self.max_kills_per_clock
                    and self.rng.random() < self.kill_probability
                ):
                    point = self.rng.choice(self.kill_points)
                outcome = self._attempt(clock, point)
                self._assert_no_duplicate_versions()
                if outcome == "killed":
                    kills += 1
                elif outcome == "succeeded":
                    break
        self.report.seconds = time.monotonic() - started
        for spec in self.settings.objects:
            self.report.rows[spec.api_name] = len(raw_keys(self.settings, spec))
        self.report.faults_injected = self.emulator.injected()
        self.report.client = client_recoveries(self.home)
        return self.report

    # --- one attempt ---------------------------------------------------------------------

    def _attempt(self, clock: dt.datetime, point: str | None) -> str:
        self._count += 1
        name = f"run-{self._count:03d}"
        barrier = self.workdir / f"barrier-{self._count:03d}"
        extra: dict[str, str] = {}
        target = None
        if point in ("raw_commit", "dimension_commit"):
            spec = self.rng.choice(self.settings.objects)
            key = spec.raw_asset_key if point == "raw_commit" else spec.dimension_asset_key
            target = self.settings.table_identifier(key)
            extra = pause_at_commit(barrier, target)
        if point == "extraction":
            self.emulator.hold_queries()
        delay = self.rng.uniform(1.0, 25.0) if point == "anytime" else 0.0
        check = self.rng.choice(["raw", "dimension"]) if point == "checks" else ""
        since = time.time()
        runs_before = self._dagster_runs()
        run = RunProcess(
            cli_env(self.home, self.emulator, **self.env, **extra),
            "run",
            "--quiet",
            "--wait",
            "60",
            output=self.workdir / name,
        )
        self.report.runs += 1
        reached = self._wait_for_point(run, point, barrier, delay, check, since)
        if point == "extraction":
            self.emulator.release()
        if reached:
            run.kill_group()
            self.report.kills[point] += 1
            if self._dagster_runs() <= runs_before:  # the kill landed before any run existed
                self.report.kills_before_a_run += 1
            self.log(f"{clock:%Y-%m-%d %H:%M} {name}: killed at {point} {target or ''}".rstrip())
            return "killed"
        code = run.wait(timeout=600)
        if point is not None:
            self.report.missed_kills += 1
        if code == 0:
            self.report.succeeded += 1
            self.log(f"{clock:%Y-%m-%d %H:%M} {name}: succeeded")
            return "succeeded"
        self.report.failed += 1
        self.log(f"{clock:%Y-%m-%d %H:%M} {name}: failed\n{run.describe()}")
        return "failed"

    def _wait_for_point(
        self,
        run: RunProcess,
        point: str | None,
        barrier: Path,
        delay: float,
        check: str,
        since: float,
    ) -> bool:
        """Wait until the run reaches its kill point (True) or ends (False)."""
        if point is None:
            return False
        deadline = time.monotonic() + delay
        reachers: dict[str, Callable[[], bool]] = {
            "extraction": self.emulator.holding,
            "raw_commit": (barrier / "commit.reached").exists,
            "dimension_commit": (barrier / "commit.reached").exists,
            # A `dbt build` subprocess, or dbt's first line from the run's own process.
            "dbt": lambda: bool(dbt_processes(run.pid)) or log_has(self.home, DBT_STARTED, since),
            "checks": lambda: log_has(self.home, f'_{check}_checks".', since),
            "anytime": lambda: time.monotonic() >= deadline,
        }
        reached = reachers[point]
        state = wait_for(
            lambda: "reached" if reached() else ("ended" if run.process.poll() is not None else ""),
            600,
            f"kill point {point}",
            every=0.01,
        )
        if state == "reached" and point == "dbt":
            time.sleep(self.rng.uniform(0.0, 3.0))  # somewhere inside dbt's build
        return state == "reached" and run.process.poll() is None

    def _dagster_runs(self) -> int:
        """Runs in this lakehouse's Dagster instance (a killed run's record stays)."""
        import dagster as dg

        if not (self.home / "dagster").exists():
            return 0
        with dg.DagsterInstance.from_config(str(self.home / "dagster")) as instance:
            return instance.get_runs_count()

    def _assert_no_duplicate_versions(self) -> None:
        for spec in self.settings.objects:
            keys = raw_keys(self.settings, spec)
            assert len(keys) == len(set(keys)), f"{spec.api_name}: a raw version stored twice"


CLIENT_COUNTS = ("retries", "rate_limited", "relogins", "query_restarts")


def client_recoveries(home: Path) -> Counter:
    """What the Salesforce client rode out in every run of this lakehouse (its per-run metadata
    on the raw assets: retried requests, rate limits, new logins, restarted queries)."""
    import dagster as dg

    totals: Counter = Counter()
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    for run in instance.get_runs():
        for entry in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ):
            event = entry.dagster_event
            metadata = event.event_specific_data.materialization.metadata if event else {}
            for name in CLIENT_COUNTS:
                value = metadata.get(name)
                if value is not None and isinstance(value.value, int):
                    totals[name] += value.value
    return totals
