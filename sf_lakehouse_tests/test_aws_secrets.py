"""Secrets Manager credentials: the documented secret format with each form of `domain`, login
targets only from the secret (never SF_LOGIN_URL/SF_CA_BUNDLE), https:// only, and no secret
value in a repr, a log line or an exception."""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.salesforce import client as client_module
from sf_lakehouse.salesforce.client import (
    ConnectionSettings,
    connect,
    connection_from_environment,
)
from sf_lakehouse.salesforce.resource import SalesforceResource, salesforce_from_environment
from sf_lakehouse.salesforce.secret import SecretError, validate_credentials
from sf_lakehouse.salesforce.types import SalesforceConfigError
from sf_lakehouse_tests import moto_server
from sf_lakehouse_tests.moto_server import emulator_secret

user_org = moto_server.user_org  # a fixture

SECRET_ID = "salesforce/development/credentials"
PASSWORD = "s3cr3t-Passw0rd-value"
TOKEN = "tok3n-Value-XYZ"


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("login", "login"),
        ("login.salesforce.com", "login"),
        ("test.salesforce.com", "test"),
        ("acme.my.salesforce.com", "acme.my"),
        ("https://acme.my.salesforce.com", "acme.my"),
        ("https://test.salesforce.com/", "test"),
        ("acme.my", "acme.my"),
        ("Login.Salesforce.com", "login"),
    ],
)
def test_domain_forms_are_normalised(given: str, expected: str) -> None:
    values = {"username": "u", "password": "p", "security_token": "t", "domain": given}
    assert validate_credentials(values, "secret x")["domain"] == expected
    assert ConnectionSettings(domain=given).domain == expected


@pytest.mark.parametrize(
    "given", ["http://login.salesforce.com", "https://x.salesforce.com/services", "a b", ""]
)
def test_bad_domains_are_one_clear_error(given: str) -> None:
    values = {"username": "u", "password": PASSWORD, "security_token": "t", "domain": given}
    if not given:
        assert validate_credentials(values, "s")["domain"] == "login"  # absent: the default
        return
    with pytest.raises(SecretError) as error:
        validate_credentials(values, "secret x")
    assert "secret x: domain" in str(error.value) and PASSWORD not in str(error.value)


@pytest.mark.parametrize(
    ("domain", "host"),
    [
        ("login.salesforce.com", "login"),
        ("test.salesforce.com", "test"),
        ("acme.my.salesforce.com", "acme.my"),
        ("https://acme.my.salesforce.com", "acme.my"),
    ],
)
def test_a_secret_in_the_documented_format_logs_in(
    aws_endpoint, user_org, monkeypatch, domain: str, host: str
) -> None:
    """The secret says `domain: <host>`; the login goes to https://<host>/ (the emulator stands
    in for it through the secret's login_url), not to <host>.salesforce.com."""
    secret = emulator_secret(user_org.emulator, domain=domain)
    boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=json.dumps(secret))
    requested: list[str] = []
    original = client_module._LoginHostAdapter.send

    def record(self, request, **kwargs):
        requested.append(request.url)
        return original(self, request, **kwargs)

    monkeypatch.setattr(client_module._LoginHostAdapter, "send", record)
    settings = resolve_settings("development")
    connection = connection_from_environment(settings, {})
    assert connection.domain == host
    client = connect(connection)
    assert client.count("SELECT COUNT() FROM User") > 0
    assert requested and requested[0].startswith(f"https://{host}.salesforce.com/services/")
    assert not any(".salesforce.com.salesforce.com" in url for url in requested)


def test_login_target_from_the_environment_is_refused_for_secret_environments(
    aws_endpoint, user_org, monkeypatch
) -> None:
    secret = emulator_secret(user_org.emulator)
    boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=json.dumps(secret))
    settings = resolve_settings("development")
    for variables in (
        {"SF_LOGIN_URL": "https://evil.example"},
        {"SF_CA_BUNDLE": "/tmp/ca.pem"},
    ):
        with pytest.raises(SalesforceConfigError) as error:
            connection_from_environment(settings, variables)
        [name] = variables
        assert f"{name} is set" in str(error.value)
        assert "Secrets Manager (salesforce/development/credentials)" in str(error.value)
        assert "login_url" in str(error.value)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SalesforceConfigError):
            salesforce_from_environment(settings)
        for name in variables:
            monkeypatch.delenv(name)
    # SF_PASSWORD and the other credentials are ignored, not used.
    connection = connection_from_environment(settings, {"SF_PASSWORD": "from-env"})
    assert connection.password == secret["password"]


def test_an_http_login_url_is_one_clear_error(monkeypatch) -> None:
    with pytest.raises(SalesforceConfigError) as error:
        ConnectionSettings(login_url="http://127.0.0.1:8443", username="u")
    message = str(error.value)
    assert "SF_LOGIN_URL" in message and "must be https://" in message
    assert "running" not in message
    # Through the resource (a local environment's SF_* variables).
    resource = SalesforceResource(
        login_url="http://127.0.0.1:8443", username="u", password=PASSWORD, security_token=TOKEN
    )
    with pytest.raises(SalesforceConfigError, match="SF_LOGIN_URL"):
        resource.connect()
    with pytest.raises(SecretError, match="login_url"):
        validate_credentials(
            {"username": "u", "password": "p", "security_token": "t", "login_url": "http://x"}, "s"
        )


def test_secret_fields_never_reach_a_repr_a_log_or_an_exception(
    user_org, caplog: pytest.LogCaptureFixture
) -> None:
    resource = SalesforceResource(
        username="u", password=PASSWORD, security_token=TOKEN, client_secret="cs-" + TOKEN
    )
    for text in (
        repr(resource),
        str(resource),
        f"{resource}",
        repr(resource.connection_settings()),
    ):
        assert PASSWORD not in text and TOKEN not in text
        assert "password='***'" in text
    caplog.set_level(logging.DEBUG)
    secret = emulator_secret(user_org.emulator, password=PASSWORD)
    bad = SalesforceResource(
        username=secret["username"],
        password=PASSWORD,
        security_token=TOKEN,
        login_url=secret["login_url"],
        ca_bundle=secret["ca_bundle"],
    )
    with pytest.raises(SalesforceConfigError) as error:
        bad.connect()
    assert "login (password) failed" in str(error.value)
    for text in (str(error.value), repr(error.value), caplog.text):
        assert PASSWORD not in text and TOKEN not in text
