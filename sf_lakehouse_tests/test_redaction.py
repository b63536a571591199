"""No secret in a repr, no secret line echoed, owner-only lakehouse folders, short rejected values,
and no import circle around the secret (issue 16, item 6)."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.options import hardening_options
from sf_lakehouse.config import REPO_ROOT, ConfigError, resolve_settings
from sf_lakehouse.env_file import load_env_file
from sf_lakehouse.salesforce.connection import ConnectionSettings
from sf_lakehouse.salesforce.convert import reject_reason
from sf_lakehouse.salesforce.types import FieldSpec

PASSWORD = "hunter2-password"
TOKEN = "tok3n-secret"


def test_the_deploy_context_repr_hides_the_credentials() -> None:
    """Regression: the dataclass repr printed the password and the token."""
    settings = resolve_settings("development")
    ctx = DeployContext(
        settings=settings,
        options=hardening_options(settings),
        credentials={"username": "u@acme.com", "password": PASSWORD, "security_token": TOKEN},
        script_path=Path("glue.py"),
        package_dir=Path("sf_lakehouse"),
        config_path=settings.config_path,
    )
    for shown in (repr(ctx), str(ctx), repr(ctx.credentials)):
        assert PASSWORD not in shown and TOKEN not in shown, shown
    # The values themselves are intact for the secret deploy stores.
    assert str(ctx.credentials["password"]) == PASSWORD


def test_connection_settings_hide_secrets_also_under_asdict() -> None:
    """Regression: `dataclasses.asdict(settings)` (a natural thing to log) held the password."""
    settings = ConnectionSettings(
        username="u@acme.com", password=PASSWORD, security_token=TOKEN, client_secret="cs-9"
    )
    values = dataclasses.asdict(settings)
    for shown in (repr(settings), str(values), repr(values), f"{values}"):
        assert PASSWORD not in shown and TOKEN not in shown and "cs-9" not in shown, shown
    assert "'***'" in str(values) and "u@acme.com" in str(values)
    # What the login sends is the value.
    assert f"{settings.password}" == PASSWORD and settings.security_token + "" == TOKEN


def test_a_bad_env_file_line_is_reported_by_number_never_its_text(tmp_path) -> None:
    env_file = tmp_path / "sf.env"
    env_file.write_text(f"SF_USERNAME=u\n# comment\n{PASSWORD}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_env_file(env_file)
    assert "line 3:" in str(error.value) and PASSWORD not in str(error.value)
    env_file.write_text(f"SF_USERNAME=u\nmy {PASSWORD}={TOKEN}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_env_file(env_file)
    message = str(error.value)
    assert "line 2:" in message and PASSWORD not in message and TOKEN not in message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        (f"SF_PASSWORD {PASSWORD}", "SF_PASSWORD"),
        (f"SF_PASSWORD: {PASSWORD}", "SF_PASSWORD"),
        (f"export SF_SECURITY_TOKEN {TOKEN}", "SF_SECURITY_TOKEN"),
        (f"export\tsf_token {TOKEN}", "sf_token"),
        (f"SF_PASSWORD {PASSWORD}={TOKEN}", "SF_PASSWORD"),
        (f"export SF_PASSWORD {PASSWORD}={TOKEN}", "SF_PASSWORD"),
    ],
)
def test_a_bad_env_file_line_names_its_key_never_its_value(tmp_path, line: str, key: str) -> None:
    """Regression (issue 16, item 6): only the number was given; the key, when one can be
    read, says which setting to fix."""
    env_file = tmp_path / "sf.env"
    env_file.write_text(f"SF_USERNAME=u\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_env_file(env_file)
    message = str(error.value)
    assert f"line 2 ({key}): " in message, message
    assert PASSWORD not in message and TOKEN not in message, message


@pytest.mark.parametrize("line", [PASSWORD, "HUNTER_2PASSWORD", "hunter2 password", "hunter2 x=c"])
def test_a_bad_env_file_line_without_a_readable_key_shows_none(tmp_path, line: str) -> None:
    """A lone word may be the password itself: it is never shown as a key."""
    env_file = tmp_path / "sf.env"
    env_file.write_text(f"{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_env_file(env_file)
    assert "line 1: " in str(error.value)
    assert line.split()[0] not in str(error.value).replace(str(env_file), "")


def test_valid_env_file_lines_with_export_and_tabs_are_read(tmp_path) -> None:
    env_file = tmp_path / "sf.env"
    env_file.write_text("export\tSF_USERNAME=u\nexport SF_PASSWORD = p=q\n", encoding="utf-8")
    assert load_env_file(env_file) == {"SF_USERNAME": "u", "SF_PASSWORD": "p=q"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_lakehouse_folders_are_created_for_their_owner_only(tmp_path, monkeypatch) -> None:
    """Regression: home, logs, alerts and warehouse were created 0755 (umask 022): any user of
    the machine could read the org's names and emails."""
    from sf_lakehouse.defs.sensors import record_alert
    from sf_lakehouse.lakehouse.tables import open_catalog
    from sf_lakehouse.pipeline import dagster_instance, output_to, run_log_path
    from sf_lakehouse.run_lock import LakehouseLock

    old_umask = os.umask(0o022)
    try:
        settings = resolve_settings("local", home=tmp_path / "new" / "lakehouse")
        with LakehouseLock(settings.home, "run").acquire():
            pass
        open_catalog(settings.catalog_properties())
        record_alert(settings.alerts_dir, "freshness", {"object": "User"}, "User raw is stale")
        with output_to(run_log_path(settings, "abc")):
            print("a run's log line")
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        dagster_instance(settings)
    finally:
        os.umask(old_umask)
    for folder in (
        tmp_path / "new",
        settings.home,
        settings.warehouse_dir,
        settings.alerts_dir,
        settings.home / "logs",
        settings.dagster_home,
    ):
        assert _mode(folder) == 0o700, f"{folder}: {oct(_mode(folder))}"


def test_a_rejected_value_is_shortened_in_reasons_and_log_lines(settings) -> None:
    from sf_lakehouse.extraction.rejects import store_rejects, with_run_columns
    from sf_lakehouse.lakehouse.tables import open_catalog
    from sf_lakehouse.salesforce.convert import REJECT_SCHEMA

    value = "A long description, " * 250  # 5,000 characters (or an email list, a token)
    reason = reject_reason(FieldSpec("Score__c", "double", True), value)
    assert len(reason) < 400 and f"({len(value)} characters)" in reason
    spec = settings.object("User")
    rejects = with_run_columns(
        pa.table(
            {
                "id": ["005000000000001AAA"],
                "field": ["Score__c"],
                "value": [value],
                "reason": [reason],
                "systemmodstamp": [dt.datetime(2026, 3, 1, 8)],
            },
            schema=REJECT_SCHEMA,
        ),
        dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        "run-1",
    )
    catalog = open_catalog(settings.catalog_properties())
    stored = store_rejects(catalog, settings.raw_database, spec, rejects)
    assert stored is not None
    identifier, warning = stored
    assert len(warning) < 500 and value not in warning
    # The rejects table keeps the whole value: it is the data to repair from.
    kept = catalog.load_table(identifier).scan().to_arrow().column("value").to_pylist()
    assert kept == [value]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_no_import_circle_between_the_secret_reader_and_the_salesforce_client() -> None:
    """Regression: aws/secrets.py imported salesforce.client, whose connection module imported
    aws/secrets.py back. Parsing the secret lives on the Salesforce side only."""
    package = REPO_ROOT / "sf_lakehouse"
    reader = _imports(package / "aws" / "secrets.py")
    assert not [m for m in reader if m.startswith("sf_lakehouse")], reader
    parser = _imports(package / "salesforce" / "secret.py")
    assert "sf_lakehouse.aws.secrets" in parser
    assert not {"sf_lakehouse.salesforce.client", "sf_lakehouse.salesforce.connection"} & parser
    assert not [m for m in parser | reader if m.split(".")[0] == "dagster"]
