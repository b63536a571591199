"""Bad configuration and bad commands: one line naming the file, key or argument and the fix,
never a traceback. Real `sf-lakehouse` processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from sf_lakehouse.config import REPO_ROOT
from sf_lakehouse.emulator import SalesforceEmulator
from sf_lakehouse.lakehouse.tables import RAW_LAYOUT, append_rows, ensure_table, open_catalog
from sf_lakehouse_tests.cli_runs import home_settings
from sf_lakehouse_tests.histories import at, user

CLI = [sys.executable, "-m", "sf_lakehouse.cli"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_HOME"))}
    return {**clean, "SF_LAKEHOUSE_HOME": str(tmp_path / "lakehouse")}


def cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=300, cwd=cwd
    )


def one_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    """The command failed with `code` and said why in exactly one line."""
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def broken_config(tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of config/ with one mistake; returns its pipeline-config.yml."""
    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    edit(config)
    return config / "pipeline-config.yml"


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BAD_CONFIGS = {
    "yaml syntax": (
        lambda c: (c / "pipeline-config.yml").write_text(
            (c / "pipeline-config.yml").read_text() + "\n  broken: [unclosed\n"
        ),
        ["pipeline-config.yml", "line", "not valid YAML"],
    ),
    "unknown key": (
        lambda c: _replace(c / "objects" / "user.yml", "lookback_seconds:", "lookbak_seconds:"),
        ["user.yml", "lookbak_seconds", "unknown key", "lookback_seconds"],
    ),
    "negative lookback": (
        lambda c: _replace(
            c / "objects" / "user.yml", "lookback_seconds: 300", "lookback_seconds: -5"
        ),
        ["user.yml", "lookback_seconds", "-5", "greater than or equal to 0"],
    ),
    "text lookback": (
        lambda c: _replace(
            c / "objects" / "user.yml", "lookback_seconds: 300", "lookback_seconds: 5m"
        ),
        ["user.yml", "lookback_seconds", "valid integer"],
    ),
    "soql in the field list": (
        lambda c: _replace(
            c / "objects" / "user.yml", "Title,", "Title FROM User WHERE Id != null,"
        ),
        ["user.yml", "fields", "not SOQL"],
    ),
    "page size": (
        lambda c: _replace(c / "objects" / "user.yml", "page_size: 2000", "page_size: -5"),
        ["user.yml", "extraction.page_size", "-5"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_bad_configuration_is_one_line_naming_file_and_key(
    case: str, tmp_path: Path, env: dict[str, str]
) -> None:
    edit, expected = BAD_CONFIGS[case]
    config = broken_config(tmp_path, edit)
    line = one_line(cli({**env, "SF_LAKEHOUSE_CONFIG": str(config)}, "run", "--quiet"))
    for fragment in expected:
        assert fragment in line, line
    assert not (tmp_path / "lakehouse").exists()  # nothing was started


def test_bad_commands_are_one_line_each(tmp_path: Path, env: dict[str, str]) -> None:
    line = one_line(cli({**env, "SF_LAKEHOUSE_ENV": "qa"}, "run"))
    assert "unknown environment 'qa'" in line and "known environments" in line

    env_file = tmp_path / "emulator.env"
    # Regression (issue 16, item 6): the bad line's text was echoed, and it may be a secret.
    env_file.write_text("SF_USERNAME=someone\nSF_PASSWORD hunter2-secret\n", encoding="utf-8")
    line = one_line(cli(env, "run", "--env-file", str(env_file)))
    assert f"{env_file}, line 2 (SF_PASSWORD): no '=' (expected KEY=VALUE" in line
    assert "hunter2" not in line
    env_file.write_text("SF_USERNAME=someone\nhunter 2=secret\n", encoding="utf-8")
    line = one_line(cli(env, "run", "--env-file", str(env_file)))
    assert "line 2: the text before '=' is not a variable name" in line
    assert "hunter" not in line
    line = one_line(cli(env, "run", "--env-file", str(tmp_path / "missing.env")))
    assert "missing.env: no such file" in line and "emulator --env-file" in line

    line = one_line(cli(env, "run", "--object", "Invoice"))
    assert "no object spec 'Invoice'" in line and "User" in line

    history = tmp_path / "org.jsonl"
    history.write_text(json.dumps(user("005000000000000AAA", 0, "EMEA")) + "\n{not json\n")
    line = one_line(cli(env, "emulator", "--history", str(history)))
    assert "org.jsonl, line 2: not valid JSON" in line

    # Before the first run: nothing to query or repair, and nothing is created.
    line = one_line(cli(env, "query", "select 1"))
    assert "run `sf-lakehouse run`" in line
    line = one_line(cli(env, "repair"))
    assert "no lakehouse at" in line and "nothing to repair" in line
    assert not (tmp_path / "lakehouse").exists()
    line = one_line(cli(env, "query", ""))
    assert "the SQL is empty" in line

    wait = cli(env, "run", "--wait", "soon")  # argparse: usage, then the one error line
    assert wait.returncode == 2 and "argument --wait: 'soon' is not a number of seconds" in (
        wait.stderr
    )


def test_query_with_bad_sql_or_an_unknown_table(tmp_path: Path, env: dict[str, str]) -> None:
    settings = home_settings(tmp_path / "lakehouse")
    catalog = open_catalog(settings.catalog_properties())
    stamp = pa.array([at(0).replace(tzinfo=None)], pa.timestamp("us"))
    table = pa.table({"id": ["a"], "systemmodstamp": stamp, "_extracted_at": stamp})
    append_rows(ensure_table(catalog, "sf_raw_local.sf_user", table.schema, RAW_LAYOUT), table)
    line = one_line(cli(env, "query", "select * from sf_raw_local.no_such_table"), code=1)
    assert line.startswith("query failed:") and "no_such_table" in line
    line = one_line(cli(env, "query", "selec id from sf_raw_local.sf_user"), code=1)
    assert line.startswith("query failed:") and "syntax error" in line
    as_of = cli(env, "query", "select 1", "--as-of", "never")
    assert as_of.returncode == 2 and "--as-of 'never' is not an ISO-8601 timestamp" in as_of.stderr
    ok = cli(env, "query", "select count(*) as n from sf_raw_local.sf_user", "--format", "csv")
    assert ok.returncode == 0 and ok.stdout.splitlines() == ["n", "1"]


def test_a_plain_http_login_url_is_one_line_before_any_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Regression (issue 16, item 12): an http:// login URL started a run, recorded it failed
    and exited 1. Now: one line naming SF_LOGIN_URL and https://, exit 2, no run recorded."""
    emulator = SalesforceEmulator([user("005000000000000AAA", 0, "EMEA")], workdir=tmp_path / "e")
    emulator.start()
    try:
        sf = emulator.env_vars()
        plain = {**env, **sf, "SF_LOGIN_URL": sf["SF_LOGIN_URL"].replace("https", "http")}
        line = one_line(cli(plain, "run", "--quiet", "--object", "User"))
        assert "SF_LOGIN_URL" in line and "https://" in line
        assert emulator.api_calls == 0 and emulator.soap_logins == 0
    finally:
        emulator.stop()
    assert not (tmp_path / "lakehouse" / "logs").exists()  # no run was recorded
    assert not (tmp_path / "lakehouse" / "dagster").exists()


def test_an_unwritable_home_is_one_line_and_no_run_is_left(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Regression (issue 16, item 12): a lakehouse home that cannot be written (here a file;
    read-only and full disks take the same path) ended in a traceback, and the next command
    called that run killed. Now one line naming the home and the fix, exit 2; the next command
    on a good home has nothing to say about it."""
    home = tmp_path / "home-is-a-file"
    home.write_text("not a directory\n", encoding="utf-8")
    line = one_line(cli({**env, "SF_LAKEHOUSE_HOME": str(home)}, "run", "--quiet"))
    assert str(home) in line and "cannot be written" in line and "SF_LAKEHOUSE_HOME" in line
    below = home / "lakehouse"  # a home whose parent is a file
    line = one_line(cli({**env, "SF_LAKEHOUSE_HOME": str(below)}, "run", "--quiet"))
    assert "cannot be written" in line


def test_a_spec_whose_track_changed_without_rendering_is_one_line(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Regression (issue 16, item 12): `track:` changed without re-rendering the models failed
    with KeyError: 'Field "title" ...'. Now one line naming the fix, exit 2."""
    config = broken_config(
        tmp_path,
        lambda c: _replace(
            c / "objects" / "user.yml",
            "track: [Division, Audit_Phase__c]",
            "track: [Division, Title]",
        ),
    )
    line = one_line(cli({**env, "SF_LAKEHOUSE_CONFIG": str(config)}, "run", "--quiet"))
    assert "python -m sf_lakehouse.dbt_models" in line and "stg_sf_user" in line


def test_one_failed_extraction_does_not_hold_back_the_other_dimensions(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Regression (issue 16, item 10): the Account spec lists a field the org lacks; its
    extraction fails. The User and Opportunity dimensions are still built, and the summary
    says which step did not run and why, with the log's path; no traceback."""
    history = [user("005000000000000AAA", 0, "EMEA"), user("005000000000000BBB", 1, "APAC")]
    emulator = SalesforceEmulator(history, workdir=tmp_path / "emulator", now=at(60)).start()
    try:
        config = broken_config(
            tmp_path, lambda c: _replace(c / "objects" / "account.yml", "Name,", "Name, Nope__c,")
        )
        run_env = {**env, **emulator.env_vars(), "SF_LAKEHOUSE_CONFIG": str(config)}
        summary = run_summary(cli(run_env, "run", "--quiet"))
        assert "step sf_raw__sf_account failed" in summary[1] and "Nope__c" in summary[1]
        [not_run] = [line for line in summary if "did not run" in line]
        assert "sf_lakehouse_dbt" in not_run and "sf_account_raw_checks" in not_run
        assert not_run.endswith("did not run: sf_raw__sf_account failed")
        assert any("dimensions of Opportunity, User built in run" in x for x in summary), summary
    finally:
        emulator.stop()
    settings = home_settings(tmp_path / "lakehouse")
    catalog = open_catalog(settings.catalog_properties())
    dimension = catalog.load_table("sf_curated_local.dim_sf_user_scd").scan().to_arrow()
    assert sorted(dimension.column("user_id").to_pylist()) == [h["Id"] for h in history]


def run_summary(done: subprocess.CompletedProcess, warnings: int = 0) -> list[str]:
    """`run X failed`, one line per failed step, the warnings, the log's path; no traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("run ") and "started" in lines[0]
    lines = lines[1:]
    assert lines[0].startswith("run ") and " failed " in lines[0], lines
    assert lines[-1].startswith("  full log: ")
    log = Path(lines[-1].removeprefix("  full log: "))
    assert log.is_file() and "STEP_FAILURE" in log.read_text()  # the details are in the log
    assert len(lines) <= 5 + warnings, lines
    assert sum(line.strip().startswith("warning: ") for line in lines) == warnings, lines
    return lines


def test_a_moved_or_copied_home_is_refused_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """Regression (issue 16, item 11): a copied home (a restored backup) wrote into the
    original's warehouse, and a moved one failed on a path of its old place. Iceberg keeps
    absolute locations, so both are refused at start with one line saying what to do; the
    original's files are never touched."""
    original = tmp_path / "lakehouse"
    settings = home_settings(original)
    catalog = open_catalog(settings.catalog_properties())
    stamp = pa.array([at(0).replace(tzinfo=None)], pa.timestamp("us"))
    rows = pa.table({"id": ["005000000000000AAA"], "systemmodstamp": stamp, "_extracted_at": stamp})
    append_rows(ensure_table(catalog, "sf_raw_local.sf_user", rows.schema, RAW_LAYOUT), rows)
    before = sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file())
    copy = tmp_path / "restored"
    shutil.copytree(original, copy)
    copied = {**env, "SF_LAKEHOUSE_HOME": str(copy)}
    for args in (("run", "--quiet"), ("query", "select count(*) from sf_raw_local.sf_user")):
        line = one_line(cli(copied, *args))
        assert (
            f"moved or copied from {original}" in line and f"SF_LAKEHOUSE_HOME={original}" in line
        )
    assert sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file()) == before
    moved = tmp_path / "moved"
    shutil.move(original, moved)
    line = one_line(cli({**env, "SF_LAKEHOUSE_HOME": str(moved)}, "query", "select 1"))
    assert f"move the home back to {original}" in line
