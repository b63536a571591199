"""Configuration: environments (`config/pipeline-config.yml`) and object specs
(`config/objects/*.yml`), validated by pydantic models and resolved in one place."""

from sf_lakehouse.config.environment import (
    BUCKET_KINDS,
    CONFIG_VAR,
    DBT_PROJECT_DIR,
    ENV_VAR,
    HOME_VAR,
    PROJECT_DIR_VAR,
    REPO_ROOT,
    AwsSettings,
    MaintenanceSettings,
    ScheduleSettings,
    Settings,
    dbt_project_dir,
    load_config,
    project_dir,
    resolve_settings,
    table_identifier,
)
from sf_lakehouse.config.errors import ConfigError
from sf_lakehouse.config.objects import FreshnessWindow, ObjectSpec, snake_case

__all__ = [
    "BUCKET_KINDS",
    "CONFIG_VAR",
    "DBT_PROJECT_DIR",
    "ENV_VAR",
    "HOME_VAR",
    "PROJECT_DIR_VAR",
    "REPO_ROOT",
    "AwsSettings",
    "ConfigError",
    "FreshnessWindow",
    "MaintenanceSettings",
    "ObjectSpec",
    "ScheduleSettings",
    "Settings",
    "dbt_project_dir",
    "load_config",
    "project_dir",
    "resolve_settings",
    "snake_case",
    "table_identifier",
]
