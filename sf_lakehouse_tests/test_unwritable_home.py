"""A lakehouse home that cannot be written (issue 16, item 12): read-only (the home, or one of the
folders and files a run writes), a full disk before the run and in the middle of it. Each ends
in one line naming the place and the fix, never a traceback, and leaves no unfinished run for
the next command to call killed. Real `sf-lakehouse run` processes: as root, chmod alone does
not make a folder read-only, so the child runs without the capabilities that bypass file
permissions; a full disk is the child's file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: writes
fail with EFBIG as on a full disk)."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sf_lakehouse.defs.jobs import IN_PROGRESS
from sf_lakehouse.emulator import SalesforceEmulator
from sf_lakehouse.pipeline import dagster_instance, runs_of_home
from sf_lakehouse_tests.cli_runs import home_settings
from sf_lakehouse_tests.histories import at, user

CLI = [sys.executable, "-m", "sf_lakehouse.cli", "run", "--quiet", "--object", "User"]
PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root write where modes forbid.
PERMISSION_BYPASSES = (1, 2, 3)


def _drop_permission_bypasses() -> None:
    """In the child before exec: the program it executes has no permission bypass."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in PERMISSION_BYPASSES:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _full_disk(limit: int) -> Callable[[], None]:
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], None] | None:
    """How to start a child that file modes bind (None: this user already is), or skip."""
    if os.geteuid() != 0:
        return None
    folder = tmp_path_factory.mktemp("read-only")
    folder.chmod(0o555)
    probe = [sys.executable, "-c", f"open({str(folder / 'x')!r}, 'w')"]
    try:
        done = subprocess.run(probe, preexec_fn=_drop_permission_bypasses, capture_output=True)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"cannot start a child without root's permission bypass: {error}")
    if done.returncode == 0 or b"PermissionError" not in done.stderr:
        pytest.skip("a child without CAP_DAC_OVERRIDE still writes into a 0555 folder here")
    return _drop_permission_bypasses


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceEmulator]:
    workdir = tmp_path_factory.mktemp("emulator")
    history = [user("005000000000000AAA", 0, "EMEA"), user("005000000000000BBB", 1, "APAC")]
    with SalesforceEmulator(history, workdir=workdir, now=at(60)) as running:
        yield running


def run(
    emulator: SalesforceEmulator, home: Path, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_HOME"))}
    env = {**clean, **emulator.env_vars(), "SF_LAKEHOUSE_HOME": str(home)}
    return subprocess.run(
        CLI, env=env, capture_output=True, text=True, timeout=600, preexec_fn=preexec
    )


def one_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def unfinished_runs(home: Path) -> list[str]:
    """What the next `sf-lakehouse run` would call runs of a killed process."""
    settings = home_settings(home)
    if not settings.dagster_home.is_dir():
        return []
    runs = runs_of_home(dagster_instance(settings), settings)
    return [r.run_id for r in runs if r.status in IN_PROGRESS]


def test_a_read_only_home_or_part_of_it_is_one_line_naming_it_and_the_fix(
    tmp_path: Path, emulator: SalesforceEmulator, unprivileged: Callable[[], None] | None
) -> None:
    """Regression: a read-only `logs/` ended in a 25-line traceback, a read-only catalog in a
    step failure that named no fix; only the home itself was checked."""
    home = tmp_path / "lakehouse"
    first = run(emulator, home)
    assert first.returncode == 0, first.stderr
    parts = {
        ".": 0o555,
        "logs": 0o555,
        "catalog.db": 0o444,
        "warehouse/sf_raw_local/sf_user/metadata": 0o555,
        "dagster/history/runs.db": 0o444,
    }
    for part, mode in parts.items():
        path = (home / part).resolve()
        before = path.stat().st_mode
        path.chmod(mode)
        try:
            line = one_line(run(emulator, home, unprivileged))
        finally:
            path.chmod(before)
        named = "" if part == "." else f"{part}: "
        assert f"lakehouse home {home} cannot be written ({named}permission denied)" in line, line
        assert f"make {path} writable" in line and "SF_LAKEHOUSE_HOME" in line, line
        assert unfinished_runs(home) == []


def test_a_full_disk_before_or_during_a_run_is_one_line_naming_the_fix(
    tmp_path: Path, emulator: SalesforceEmulator
) -> None:
    """Regression: a disk that could hold nothing more said "File too large"; one that filled
    up while the Dagster instance was created ended in a 100-line traceback, and one that
    filled up during the run named no fix."""
    empty = tmp_path / "no-space"
    line = one_line(run(emulator, empty, _full_disk(0)))
    assert f"lakehouse home {empty} cannot be written (a file may not grow" in line, line
    assert "free space on the disk" in line and "ulimit -f" in line, line

    # Room for the checks, not for the Dagster instance's databases.
    small = tmp_path / "small"
    line = one_line(run(emulator, small, _full_disk(40_000)))
    assert f"lakehouse home {small} cannot be written" in line
    assert f"fix: free space on the disk of {small}" in line, line
    assert unfinished_runs(small) == []

    # Room for the instance, not for the whole run: the run fails and names the fix.
    during = tmp_path / "during"
    done = run(emulator, during, _full_disk(200_000))
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 6, lines
    assert any(f"fix: free space on the disk of {during}" in x for x in lines), lines
    # The run's end is recorded, unless the full file is the instance's own event log: then
    # the next run says so (never that a process was killed) and marks it failed.
    left = unfinished_runs(during)
    after = run(emulator, during)
    assert after.returncode == 0, after.stderr
    assert "killed" not in after.stderr, after.stderr
    notes = [x for x in after.stderr.splitlines() if x.startswith("note:")]
    assert len(notes) == len(left), after.stderr
    for run_id, note in zip(left, notes, strict=True):
        assert f"run {run_id} " in note and "could not record its end" in note, note
    assert unfinished_runs(during) == []
