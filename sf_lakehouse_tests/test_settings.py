"""The environment resolver: one place, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sf_lakehouse.config import ConfigError, load_config, resolve_settings


def test_local_is_the_default_and_derives_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SF_LAKEHOUSE_HOME", str(tmp_path))
    settings = resolve_settings()
    assert settings.environment == "local"
    assert settings.raw_table_identifier == "sf_raw_local.sf_user"
    assert settings.dimension_identifier == "sf_curated_local.dim_sf_user_scd"
    assert settings.catalog_properties()["uri"] == f"sqlite:///{tmp_path}/catalog.db"
    assert settings.salesforce.cursor_field == "SystemModstamp"
    assert settings.tracked_fields == ("Division", "Audit_Phase__c")


@pytest.mark.parametrize("environment", ["development", "staging", "prod"])
def test_aws_environments_follow_the_naming_convention(environment: str) -> None:
    settings = resolve_settings(environment)
    assert settings.raw_database == f"sf_raw_{environment}"
    assert settings.curated_database == f"sf_curated_{environment}"
    assert settings.dbt_target == environment
    assert settings.catalog_properties()["type"] == "glue"


def test_unknown_environment_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'qa' in SF_LAKEHOUSE_ENV.*local"):
        resolve_settings("qa")


def test_missing_setting_is_named() -> None:
    config = load_config()
    del config["environments"]["local"]["databases"]["raw"]
    with pytest.raises(ConfigError, match=r"environments\.local\.databases\.raw"):
        resolve_settings("local", config=config)


def test_cursor_field_is_validated() -> None:
    config = load_config()
    config["defaults"]["salesforce"]["cursor_field"] = "CreatedDate"
    with pytest.raises(ConfigError, match="SystemModstamp or LastModifiedDate"):
        resolve_settings("local", config=config)
