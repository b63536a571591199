"""Real `sf-lakehouse run` processes for the crash, concurrency and chaos tests: start them,
watch their progress (emulator requests, the commit barrier, the run log, the process tree),
kill their whole process group, and read what they left in the lakehouse."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from sf_lakehouse.config import ObjectSpec, Settings, resolve_settings
from sf_lakehouse.config.environment import CONFIG_VAR, config_path_from_environment
from sf_lakehouse.emulator import SalesforceEmulator
from sf_lakehouse.lakehouse.tables import (
    TEST_BARRIER_VAR,
    TEST_PAUSE_VAR,
    load_table_or_none,
    open_catalog,
)
from sf_lakehouse.processes import alive, command_line, descendants
from sf_lakehouse_tests.histories import record_type
from sf_lakehouse_tests.scd2_reference import expected_dimension

CLI = [sys.executable, "-m", "sf_lakehouse.cli"]
# dbt's first console line: in the run's log whichever way dbt runs (dbt.invocation).
DBT_STARTED = "Running with dbt="


class FaultyEmulator:
    """The emulator (a real HTTPS server in this process) with its fault injection: a seeded
    plan (`plan`), which `hold_queries()` joins for a while with a `stall` of every query
    request, a Salesforce that stops answering in the middle of an extraction. Counts of the
    injected faults add up over plan changes (`injected()`, holds not included)."""

    def __init__(self, emulator: SalesforceEmulator, plan: dict | None = None) -> None:
        self.emulator = emulator
        self.plan = plan
        self._counted: Counter = Counter()
        self._holding = False
        if plan is not None:
            emulator.set_faults(plan)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.emulator, name)

    def _current(self) -> Counter:
        report = Counter(self.emulator.fault_report().get("injected") or {})
        if self._holding:
            report.pop("stall", None)  # the hold's (the plan's faults never fire meanwhile)
        return report

    def injected(self) -> Counter:
        return self._counted + self._current()

    def hold_queries(self) -> None:
        self._counted += self._current()
        query = f"/services/data/v{self.emulator.api_version}/query"
        stall = {"kind": "stall", "seconds": 3600, "path": query}
        base = self.plan or {"seed": 0, "faults": []}
        self.emulator.set_faults({"seed": base["seed"], "faults": [stall, *base["faults"]]})
        self._holding = True

    def holding(self) -> bool:
        """A query request is being held."""
        return self._holding and self.emulator.fault_report()["injected"].get("stall", 0) > 0

    def release(self) -> None:
        """Stop holding new requests (held ones wait until the emulator stops; their client
        was killed) and go back to the plan."""
        self._holding = False
        self.emulator.clear_faults()
        if self.plan is not None:
            self.emulator.set_faults(self.plan)


def cli_env(home: Path, emulator: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_HOME"))}
    env.update(emulator.env_vars())
    env["SF_LAKEHOUSE_HOME"] = str(home)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(extra)
    return env


def subprocess_dbt(folder: Path) -> dict[str, str]:
    """Environment for `sf-lakehouse` processes that run dbt as its own process (`dbt.invocation:
    subprocess`; local runs dbt in their own process by default): a copy of the configuration
    in `folder`, with the setting."""
    source = config_path_from_environment()
    shutil.copytree(source.parent, folder, dirs_exist_ok=True)
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["environments"]["local"]["dbt"] = {"invocation": "subprocess"}
    path = folder / source.name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return {CONFIG_VAR: str(path)}


def pause_at_commit(barrier: Path, table: str) -> dict[str, str]:
    """Environment that makes the process writing `table` stop just before its Iceberg commit
    (the test-only barrier of sf_lakehouse.lakehouse.tables)."""
    return {TEST_PAUSE_VAR: f"commit:{table}", TEST_BARRIER_VAR: str(barrier)}


class RunProcess:
    """One `sf-lakehouse` process in its own session (so its process group is its own)."""

    def __init__(self, env: dict[str, str], *args: str, output: Path) -> None:
        self.output = output
        self._out = output.with_suffix(".out").open("w", encoding="utf-8")
        self._err = output.with_suffix(".err").open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [*CLI, *args],
            env=env,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._out.close()
            self._err.close()

    @property
    def stdout(self) -> str:
        return self.output.with_suffix(".out").read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.output.with_suffix(".err").read_text(encoding="utf-8")

    def describe(self) -> str:
        code = self.process.poll()
        return f"rc={code}\nstdout:\n{self.stdout[-2000:]}\nstderr:\n{self.stderr[-3000:]}"

    def kill_group(self, sig: int = signal.SIGKILL) -> list[tuple[int, str]]:
        """Kill the whole process group; return the processes that were below the CLI."""
        below = [(pid, command_line(pid)) for pid in descendants(self.pid)]
        os.killpg(self.pid, sig)
        self.wait(timeout=60)
        wait_for(lambda: not any(alive(pid) for pid, _ in below), 30, "the children to end")
        return below

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def dbt_processes(pid: int) -> list[int]:
    """The `dbt build` processes below `pid`."""
    return [p for p in descendants(pid) if "dbt" in command_line(p) and " build" in command_line(p)]


def newest_log(home: Path) -> Path | None:
    logs = sorted((home / "logs").glob("run-*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def log_has(home: Path, text: str, since: float = 0.0) -> bool:
    log = newest_log(home)
    if log is None or log.stat().st_mtime < since:
        return False
    return text in log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def faulty_emulator(
    history: list[dict], workdir: Path, now: dt.datetime, plan: dict | None = None
) -> Iterator[FaultyEmulator]:
    emulator = SalesforceEmulator(history, workdir=workdir, now=now)
    emulator.start()
    try:
        yield FaultyEmulator(emulator, plan)
    finally:
        emulator.stop()


# --- what a never-killed replay stores --------------------------------------------------------


def _stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("+0000", "+00:00")).replace(tzinfo=None)


def visible_versions(
    history: list[dict], clock: dt.datetime, object_type: str
) -> set[tuple[str, dt.datetime]]:
    """(Id, SystemModstamp) of the version of each record Salesforce shows at `clock`."""
    naive = clock.astimezone(dt.UTC).replace(tzinfo=None)
    seen: dict[str, dt.datetime] = {}
    for record in history:
        if record_type(record) != object_type:
            continue
        stamp = _stamp(record["SystemModstamp"])
        if stamp <= naive and stamp > seen.get(record["Id"], dt.datetime.min):
            seen[record["Id"]] = stamp
    return set(seen.items())


def replay_versions(
    history: list[dict], clocks: list[dt.datetime], object_type: str
) -> set[tuple[str, dt.datetime]]:
    """What a replay with one successful run at each clock stores in a raw table."""
    stored: set[tuple[str, dt.datetime]] = set()
    for clock in clocks:
        stored |= visible_versions(history, clock, object_type)
    return stored


def home_settings(home: Path) -> Settings:
    return resolve_settings("local", home=home)


def rows(settings: Settings, key: tuple[str, str], snapshot: bool = True) -> list[dict] | None:
    """A table's rows as a reader sees them (None: no table, or no snapshot yet)."""
    table = load_table_or_none(
        open_catalog(settings.catalog_properties()), settings.table_identifier(key)
    )
    if table is None or table.current_snapshot() is None:
        return None
    return table.scan().to_arrow().to_pylist()


def raw_keys(settings: Settings, spec: ObjectSpec) -> list[tuple[str, dt.datetime]]:
    return sorted((r["id"], r["systemmodstamp"]) for r in rows(settings, spec.raw_asset_key) or [])


def dimension(settings: Settings, spec: ObjectSpec) -> list[dict]:
    """The dimension without scd_id, in the reference's order."""
    columns = [c for c in spec.dimension_columns if c != "scd_id"]
    found = [{c: r[c] for c in columns} for r in rows(settings, spec.dimension_asset_key) or []]
    return sorted(found, key=lambda r: (r[spec.key_column], r["effective_from"]))


def assert_tables_equal_a_clean_replay(
    settings: Settings, history: list[dict], clocks: list[dt.datetime]
) -> None:
    """Each raw table holds exactly the versions of one successful run per clock, each once;
    each dimension equals the SCD2 rules over it (what a never-killed replay leaves)."""
    for spec in settings.objects:
        keys = raw_keys(settings, spec)
        assert len(keys) == len(set(keys)), f"{spec.api_name}: a raw version is stored twice"
        assert set(keys) == replay_versions(history, clocks, spec.api_name), spec.api_name
        raw = rows(settings, spec.raw_asset_key) or []
        assert dimension(settings, spec) == expected_dimension(spec, raw), spec.api_name
