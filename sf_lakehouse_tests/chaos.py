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
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sf_lakehouse.processes import command_line, descendants
from sf_lakehouse_tests.cli_runs import (
    RunProcess,
    StallableEmulator,
    cli_env,
    home_settings,
    log_has,
    pause_at_commit,
    raw_keys,
    wait_for,
)

KILL_POINTS = ("extraction", "raw_commit", "dbt", "dimension_commit", "checks", "anytime")


@dataclass
class ChaosReport:
    clocks: int = 0
    runs: int = 0
    succeeded: int = 0
    failed: int = 0  # ended with an error (an injected fault the client gave up on)
    kills: Counter = field(default_factory=Counter)  # kill point -> kills
    missed_kills: int = 0  # the run finished before its kill point came
    faults_injected: Counter = field(default_factory=Counter)
    retries: int = 0  # HTTP requests retried by the client (its run metadata)
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
            f"kills: {kills or 'none'}",
            f"faults injected: {faults or 'none'}",
            f"client retries: {self.retries}",
            f"rows: {rows}",
            f"wall time: {self.seconds:.0f} s",
        ]


def _dbt_running(pid: int) -> bool:
    return any("dbt" in command_line(p) and " build" in command_line(p) for p in descendants(pid))


class ChaosReplay:
    """Replay `history` into the lakehouse at `home` through `emulator`."""

    def __init__(
        self,
        emulator: StallableEmulator,
        home: Path,
        workdir: Path,
        *,
        seed: int,
        kill_probability: float,
        kill_points: Sequence[str] = KILL_POINTS,
        max_kills_per_clock: int = 2,
        max_kills: int | None = None,
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
            self.emulator.stall.set()
        delay = self.rng.uniform(1.0, 25.0) if point == "anytime" else 0.0
        check = self.rng.choice(["raw", "dimension"]) if point == "checks" else ""
        since = time.time()
        run = RunProcess(
            cli_env(self.home, self.emulator, **extra),
            "run",
            "--quiet",
            "--wait",
            "60",
            output=self.workdir / name,
        )
        self.report.runs += 1
        reached = self._wait_for_point(run, point, barrier, delay, check, since)
        if point == "extraction":
            self.emulator.unstall()
        if reached:
            run.kill_group()
            self.report.kills[point] += 1
            self.log(f"{clock:%Y-%m-%d %H:%M} {name}: killed at {point} {target or ''}".rstrip())
            return "killed"
        code = run.wait(timeout=600)
        self._count_retries(run)
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
            "extraction": self.emulator.stalled.is_set,
            "raw_commit": (barrier / "commit.reached").exists,
            "dimension_commit": (barrier / "commit.reached").exists,
            "dbt": lambda: _dbt_running(run.pid),
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

    def _count_retries(self, run: RunProcess) -> None:
        """The client's retries, when its run log reports them (`retries` metadata)."""
        for line in run.stderr.splitlines():
            if "full log: " in line or "; log: " in line:
                path = Path(line.split("log: ", 1)[1].strip())
                if path.is_file():
                    for found in _metadata_values(path.read_text(errors="replace"), "retries"):
                        self.report.retries += found

    def _assert_no_duplicate_versions(self) -> None:
        for spec in self.settings.objects:
            keys = raw_keys(self.settings, spec)
            assert len(keys) == len(set(keys)), f"{spec.api_name}: a raw version stored twice"


def _metadata_values(text: str, name: str) -> list[int]:
    """Integer values of `"name": N` in a run log (the client's per-run metadata)."""
    values = []
    for line in text.splitlines():
        marker = f'"{name}": '
        if marker in line:
            tail = line.split(marker, 1)[1]
            digits = ""
            for char in tail:
                if not char.isdigit():
                    break
                digits += char
            if digits:
                values.append(int(digits))
    return values


def faults_injected(emulator: Any) -> Counter:
    """The emulator's count of injected faults per kind (empty without fault injection)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    answer = session.get(
        f"{emulator.base_url}/_emulator/faults", verify=str(emulator.ca_bundle), timeout=30
    )
    if answer.status_code != 200:
        return Counter()
    body = json.loads(answer.text)
    return Counter(body.get("injected") or {})
