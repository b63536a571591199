"""Configuration: environments and object specs resolve in one place, with one-line errors that
name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sf_lakehouse.config import ConfigError, ObjectSpec, load_config, resolve_settings, snake_case
from sf_lakehouse.config.objects import load_object_spec, load_object_specs

SHIPPED = {"User", "Account", "Opportunity"}


def test_local_is_the_default_and_derives_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SF_LAKEHOUSE_HOME", str(tmp_path))
    settings = resolve_settings()
    user = settings.object("User")
    assert settings.environment == "local"
    assert settings.table_identifier(user.raw_asset_key) == "sf_raw_local.sf_user"
    assert settings.table_identifier(user.dimension_asset_key) == "sf_curated_local.dim_sf_user_scd"
    assert settings.catalog_properties()["uri"] == f"sqlite:///{tmp_path}/catalog.db"
    assert user.cursor == "SystemModstamp"
    assert user.track == ("Division", "Audit_Phase__c")


def test_shipped_objects_match_the_design() -> None:
    settings = resolve_settings("local")
    assert {s.api_name for s in settings.objects} == SHIPPED
    assert settings.object("Account").track == ("Type", "OwnerId")
    assert settings.object("Opportunity").track == ("StageName", "Amount")
    assert settings.object("Account").deletions and settings.object("Opportunity").deletions
    assert not settings.object("User").deletions


def test_user_dimension_keeps_its_columns() -> None:
    """Regression guard: dim_sf_user_scd's columns are a contract."""
    assert resolve_settings("local").object("User").dimension_columns == (
        "scd_id",
        "user_id",
        "username",
        "name",
        "email",
        "is_active",
        "division",
        "audit_phase",
        "effective_from",
        "effective_to",
        "is_current",
    )


@pytest.mark.parametrize(
    ("api_name", "snake"),
    [
        ("User", "user"),
        ("Opportunity", "opportunity"),
        ("Invoice_Line__c", "invoice_line"),
        ("Audit_Phase__c", "audit_phase"),
        ("OwnerId", "owner_id"),
        ("StageName", "stage_name"),
        ("OpportunityLineItem", "opportunity_line_item"),
        ("IsActive", "is_active"),
    ],
)
def test_names_follow_the_snake_case_rule(api_name: str, snake: str) -> None:
    assert snake_case(api_name) == snake


def test_derived_names_of_an_object() -> None:
    spec = ObjectSpec(api_name="Invoice_Line__c", id_prefix="a01", track=("Status__c",))
    assert spec.raw_asset_key == ("sf_raw", "sf_invoice_line")
    assert spec.dimension_asset_key == ("sf_curated", "dim_sf_invoice_line_scd")
    assert spec.key_column == "invoice_line_id"
    assert spec.job_name == "sf_invoice_line_pipeline"
    assert spec.extracted_fields == ("Id", "SystemModstamp", "Status__c")


def test_deletions_add_is_deleted_to_fields_and_columns() -> None:
    spec = ObjectSpec(api_name="Contact", id_prefix="003", track=("Title",), deletions=True)
    assert "IsDeleted" in spec.extracted_fields
    assert spec.dimension_columns[-4:] == (
        "is_deleted",
        "effective_from",
        "effective_to",
        "is_current",
    )


@pytest.mark.parametrize("environment", ["development", "staging", "prod"])
def test_aws_environments_follow_the_naming_convention(environment: str) -> None:
    settings = resolve_settings(environment)
    assert settings.raw_database == f"sf_raw_{environment}"
    assert settings.curated_database == f"sf_curated_{environment}"
    assert settings.dbt_target == environment
    assert settings.catalog_properties()["type"] == "glue"


def test_unknown_environment_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'qa'.*SF_LAKEHOUSE_ENV.*local"):
        resolve_settings("qa")


def test_missing_setting_is_named() -> None:
    config = load_config()
    del config["environments"]["local"]["databases"]["raw"]
    with pytest.raises(ConfigError, match=r"environments\.local\.databases\.raw: missing"):
        resolve_settings("local", config=config)


def test_misspelt_key_is_refused_with_the_known_keys() -> None:
    config = load_config()
    config["defaults"]["sensors"]["freshnes_interval_seconds"] = 60
    with pytest.raises(ConfigError, match=r"unknown key 'freshnes_interval_seconds'.*known keys"):
        resolve_settings("local", config=config)


def test_bad_time_zone_is_named() -> None:
    config = load_config()
    config["defaults"]["schedules"]["maintenance"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ConfigError, match=r"schedules\.maintenance\.timezone.*IANA"):
        resolve_settings("local", config=config)


def _write_spec(directory: Path, name: str, data: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


USER = {"api_name": "User", "id_prefix": "005", "track": ["Division"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"lookback_seconds": -86400},
            r"lookback_seconds: -86400 is not valid.*greater than or equal to 0",
        ),
        ({"lookback_seconds": "five"}, r"lookback_seconds: 'five' is not valid"),
        ({"extraction": {"page_size": -5}}, r"extraction\.page_size: -5 is not valid"),
        ({"trak": ["Division"]}, r"unknown key 'trak'.*known keys here: api_name"),
        ({"cursor": "CreatedDate"}, r"cursor.*SystemModstamp.*LastModifiedDate"),
        ({"deletions": True}, r"never deleted.*deletions: false"),
        ({"fields": ["Id, Name FROM User --"]}, r"one Salesforce API name.*not SOQL"),
        ({"carry": ["Division"]}, r"Division is both tracked and carried"),
        ({"id_prefix": "5"}, r"id_prefix"),
    ],
)
def test_object_spec_errors_name_the_file_the_key_and_the_fix(
    tmp_path: Path, change: dict, message: str
) -> None:
    path = _write_spec(tmp_path / "objects", "user", {**USER, **change})
    with pytest.raises(ConfigError, match=message) as raised:
        load_object_spec(path)
    assert str(raised.value).startswith(str(path))
    assert "\n" not in str(raised.value)


def test_yaml_syntax_error_is_one_line_with_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "user.yml"
    path.write_text("api_name: User\ntrack: [Division\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"user\.yml: line \d+.*not valid YAML"):
        load_object_spec(path)


def test_spec_file_must_be_named_after_the_object(tmp_path: Path) -> None:
    path = _write_spec(tmp_path, "people", USER)
    with pytest.raises(ConfigError, match=r"must be named user\.yml"):
        load_object_spec(path)


def test_objects_directory_without_specs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "objects").mkdir()
    with pytest.raises(ConfigError, match="holds no object spec"):
        load_object_specs(tmp_path / "objects")


def test_environment_config_yaml_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pipeline-config.yml"
    path.write_text("defaults:\n  sensors: {a: 1\n", encoding="utf-8")
    monkeypatch.setenv("SF_LAKEHOUSE_CONFIG", str(path))
    with pytest.raises(ConfigError, match=r"pipeline-config\.yml: line \d+:.*not valid YAML"):
        resolve_settings("local")


def test_the_configuration_modules_are_split_by_concern_and_old_imports_still_work() -> None:
    """Regression (issue 16): `config/environment.py` held the sections, the resolved settings
    and the loading in 566 lines. Each now has its module (<= 400 lines), and every name that
    was imported from `sf_lakehouse.config.environment` still is."""
    import sf_lakehouse.config.environment as environment
    from sf_lakehouse.config import sections, settings

    folder = Path(environment.__file__).parent
    for module in folder.glob("*.py"):
        lines = len(module.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{module.name}: {lines} lines"
    moved = {
        sections: ["AwsSection", "EnvironmentConfig", "Extraction", "SalesforceAuth", "Sensors"],
        settings: ["BUCKET_KINDS", "AwsSettings", "Settings", "table_identifier"],
    }
    for module, names in moved.items():
        for name in names:
            assert getattr(environment, name) is getattr(module, name), name
    for name in (
        "REPO_ROOT",
        "DBT_PROJECT_DIR",
        "resolve_settings",
        "config_path_from_environment",
    ):
        assert hasattr(environment, name), name
