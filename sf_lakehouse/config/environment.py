"""The one place where the environment is resolved.

`SF_LAKEHOUSE_ENV` (default `local`) picks an entry of `config/pipeline-config.yml`; the object
specs come from `config/objects/` beside it and are shared by every environment. Nothing reads
the process environment at import time: callers ask for `resolve_settings()` when they need it.
The sections' models live in `sections.py`, the resolved `Settings` in `settings.py`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sf_lakehouse.config.errors import ConfigError, describe_validation_error
from sf_lakehouse.config.names import ENVIRONMENT_NAME, check_name
from sf_lakehouse.config.objects import OBJECTS_DIR_NAME, ObjectSpec, load_object_specs

# Re-exported: `sf_lakehouse.config.environment` was the home of every configuration name.
from sf_lakehouse.config.sections import (  # noqa: F401
    AwsSection,
    CatalogSection,
    Databases,
    EnvironmentConfig,
    Extraction,
    MaintenanceSettings,
    SalesforceApi,
    SalesforceAuth,
    Schedules,
    ScheduleSettings,
    Sensors,
)
from sf_lakehouse.config.settings import (  # noqa: F401
    BUCKET_KINDS,
    AwsSettings,
    Settings,
    table_identifier,
)

ENV_VAR = "SF_LAKEHOUSE_ENV"
HOME_VAR = "SF_LAKEHOUSE_HOME"
CONFIG_VAR = "SF_LAKEHOUSE_CONFIG"
DEFAULT_ENVIRONMENT = "local"

PROJECT_DIR_VAR = "SF_LAKEHOUSE_PROJECT_DIR"

# The source checkout this package was imported from (an editable install, the tests); an
# installed copy (the image) finds `config/` and `dbt_project/` through `project_dir()`.
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DBT_FOLDER = "dbt_project"
CONFIG_FILE = Path("config") / "pipeline-config.yml"
DBT_PROJECT_DIR = REPO_ROOT / DBT_FOLDER


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def project_dir() -> Path:
    """Where `config/` and `dbt_project/` are: `SF_LAKEHOUSE_PROJECT_DIR` (the image sets it),
    else the source checkout this package runs from."""
    configured = os.environ.get(PROJECT_DIR_VAR)
    root = Path(configured).expanduser().resolve() if configured else REPO_ROOT
    if not (root / DBT_FOLDER / "dbt_project.yml").is_file():
        where = f"{PROJECT_DIR_VAR}={configured}" if configured else f"the package's folder {root}"
        raise ConfigError(
            f"no dbt_project/ in {where}: this is an installed copy of sf_lakehouse; set "
            f"{PROJECT_DIR_VAR} to the folder holding config/ and dbt_project/ (the image sets it)"
        )
    return root


def dbt_project_dir() -> Path:
    """The dbt project the definitions and runs use (`<project dir>/dbt_project`)."""
    return project_dir() / DBT_FOLDER


def config_path_from_environment() -> Path:
    configured = os.environ.get(CONFIG_VAR)
    if configured:
        return Path(configured)
    return project_dir() / CONFIG_FILE


def load_config(path: Path | None = None) -> dict[str, Any]:
    config_path = path or config_path_from_environment()
    if not config_path.is_file():
        raise ConfigError(f"pipeline config {config_path} does not exist; set {CONFIG_VAR}")
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark is not None else ""
        raise ConfigError(
            f"{config_path}:{line} is not valid YAML ({getattr(error, 'problem', error)}); "
            "fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path}: expected sections `defaults` and `environments`")
    unknown = sorted(set(data) - {"defaults", "environments"})
    if unknown:
        raise ConfigError(
            f"{config_path}: unknown top-level key {unknown[0]!r}; use defaults and environments"
        )
    return data


def environment_names(config: dict[str, Any]) -> list[str]:
    return sorted((config.get("environments") or {}).keys())


def resolve_settings(
    environment: str | None = None,
    *,
    home: Path | str | None = None,
    config: dict[str, Any] | None = None,
    objects: Sequence[ObjectSpec] | None = None,
) -> Settings:
    """Resolve one environment's settings; arguments win over the process environment."""
    env_name = environment or os.environ.get(ENV_VAR) or DEFAULT_ENVIRONMENT
    config_path = config_path_from_environment()
    raw_config = config if config is not None else load_config(config_path)
    environments = raw_config.get("environments") or {}
    if env_name not in environments:
        known = ", ".join(environment_names(raw_config)) or "none"
        raise ConfigError(
            f"unknown environment {env_name!r} (from {ENV_VAR} or --environment); "
            f"known environments in {config_path}: {known}"
        )
    try:
        check_name(env_name, ENVIRONMENT_NAME, "an environment name is")
    except ValueError:
        raise ConfigError(
            f"{config_path}: environment name {env_name[:40]!r} is not valid: use 1-32 lowercase "
            "letters, digits, _ and -, starting with a letter (it names roles, jobs and paths)"
        ) from None
    merged = _merge(raw_config.get("defaults") or {}, environments[env_name] or {})
    try:
        env_config = EnvironmentConfig.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(
            describe_validation_error(
                error, config_path, f"environments.{env_name}", EnvironmentConfig
            )
        ) from None
    specs = (
        tuple(objects)
        if objects is not None
        else load_object_specs(config_path.parent / OBJECTS_DIR_NAME)
    )
    home_path = Path(home or os.environ.get(HOME_VAR) or ".lakehouse").expanduser().resolve()
    return Settings(
        environment=env_name,
        home=home_path,
        config=env_config,
        objects=specs,
        config_path=config_path,
    )
