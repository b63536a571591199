"""Names that end in IAM policy resources, ARNs and S3 paths are validated with the config.

Regression (issue 16, item 5): a `*` in `secret_id` made the roles' secret statement match every
secret of the account; `..` or `/` in a bucket prefix, region or environment name left the
prefixes the policies and paths are built from.
"""

from __future__ import annotations

import copy

import pytest

from sf_lakehouse.config import ConfigError, load_config, resolve_settings


def _with(path: tuple[str, ...], value: str) -> dict:
    config = copy.deepcopy(load_config())
    entry = config["environments"]["development"]
    for key in path[:-1]:
        entry = entry[key]
    entry[path[-1]] = value
    return config


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("salesforce_auth", "secret_id"), "salesforce/*"),
        (("salesforce_auth", "secret_id"), "salesforce/development/../prod/credentials"),
        (("salesforce_auth", "secret_id"), "/salesforce/dev"),
        (("bucket_prefix",), "lumata-*"),
        (("bucket_prefix",), "lumata/../other"),
        (("aws", "region"), "eu-west-1/.."),
        (("aws", "region"), "*"),
        (("aws", "athena_workgroup"), "wg/*"),
        (("aws", "pipeline_principal_arn"), "arn:aws:iam::123456789012:role/*"),
    ],
)
def test_a_wildcard_or_a_parent_path_is_refused_in_one_line(path, value) -> None:
    with pytest.raises(ConfigError) as error:
        resolve_settings("development", config=_with(path, value))
    message = str(error.value)
    assert "\n" not in message
    assert f"environments.development.{'.'.join(path)}" in message
    assert "is not valid" in message


def test_an_environment_name_with_a_wildcard_is_refused() -> None:
    config = copy.deepcopy(load_config())
    config["environments"]["dev*"] = config["environments"]["development"]
    with pytest.raises(ConfigError, match=r"environment name 'dev\*' is not valid"):
        resolve_settings("dev*", config=config)


def test_the_shipped_names_are_valid() -> None:
    config = load_config()
    for name in config["environments"]:
        settings = resolve_settings(name, config=config)
        assert settings.environment == name
