"""The new settings of the client and the extraction are validated like every other key: one
line naming the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sf_lakehouse.config import ConfigError, load_config, resolve_settings
from sf_lakehouse.config.objects import load_object_spec

USER = {"api_name": "User", "id_prefix": "005", "track": ["Division"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timeout_seconds": 0}, r"salesforce\.timeout_seconds: 0 is not valid.*greater than 0"),
        ({"max_retries": -1}, r"salesforce\.max_retries: -1 is not valid"),
        ({"max_api_usage_share": 1.5}, r"salesforce\.max_api_usage_share: 1\.5 is not valid"),
        (
            {"retry_base_seconds": 10, "retry_max_seconds": 5},
            r"retry_max_seconds must be at least retry_base_seconds",
        ),
        ({"bulk_max_wait_seconds": "an hour"}, r"bulk_max_wait_seconds: 'an hour' is not valid"),
        ({"retries": 3}, r"unknown key 'retries'.*known keys here: api_version, bulk_max_wait"),
    ],
)
def test_salesforce_settings_are_validated(change: dict, message: str) -> None:
    config = load_config()
    config["defaults"]["salesforce"].update(change)
    with pytest.raises(ConfigError, match=message) as raised:
        resolve_settings("local", config=config)
    assert "\n" not in str(raised.value)


def test_salesforce_settings_have_defaults_and_can_be_set_per_environment() -> None:
    config = load_config()
    config["environments"]["local"]["salesforce"] = {"timeout_seconds": 30, "max_retries": 2}
    api = resolve_settings("local", config=config).config.salesforce
    assert (api.timeout_seconds, api.max_retries, api.api_version) == (30, 2, "59.0")
    assert api.max_api_usage_share == 0.9 and api.bulk_max_wait_seconds == 1800


@pytest.mark.parametrize(
    ("extraction", "message"),
    [
        ({"bulk_threshold": -1}, r"extraction\.bulk_threshold: -1 is not valid"),
        ({"api": "soap"}, r"extraction\.api: 'soap' is not valid.*'auto', 'rest' or 'bulk'"),
        ({"on_conversion_error": "ignore"}, r"on_conversion_error: 'ignore' is not valid"),
        ({"bulk_page_size": 10}, r"extraction\.bulk_page_size: 10 is not valid"),
    ],
)
def test_extraction_options_are_validated(tmp_path: Path, extraction: dict, message: str) -> None:
    path = tmp_path / "user.yml"
    path.write_text(yaml.safe_dump({**USER, "extraction": extraction}), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as raised:
        load_object_spec(path)
    assert "\n" not in str(raised.value)


def test_extraction_options_default_to_auto_over_ten_thousand_and_reject(tmp_path: Path) -> None:
    path = tmp_path / "user.yml"
    path.write_text(yaml.safe_dump(USER), encoding="utf-8")
    options = load_object_spec(path).extraction
    assert (options.api, options.bulk_threshold, options.on_conversion_error) == (
        "auto",
        10_000,
        "reject",
    )
