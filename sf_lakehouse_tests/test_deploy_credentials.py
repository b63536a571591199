"""How deploy takes the Salesforce credentials: never from the command line; a prompt on a
terminal, two lines of standard input, or a file only its owner can read. It logs in once with
them before storing them, and no value ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import boto3
import pytest

from sf_lakehouse.aws.deploy import DeployError, collect_credentials, run_deploy
from sf_lakehouse.config import REPO_ROOT, resolve_settings
from sf_lakehouse_tests import moto_server
from sf_lakehouse_tests.moto_server import (
    deploy_command,
    emulator_secret,
    write_credentials_file,
)

user_org = moto_server.user_org  # a fixture

ENV = "development"
SECRET_ID = "salesforce/development/credentials"


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.mark.parametrize("option", ["--sf-password", "--sf-token"])
def test_secrets_on_the_command_line_are_refused_with_the_alternatives(option, tmp_path) -> None:
    runner = (
        "import sys; from sf_lakehouse.cli import build_parser; "
        "a = build_parser().parse_args(sys.argv[1:]); sys.exit(a.handler(a))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            runner,
            "deploy",
            "--environment",
            ENV,
            "--sf-username",
            "u",
            option,
            "hunter2-on-the-command-line",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert f"error: {option} on the command line is refused" in result.stderr
    for alternative in ("prompted on a terminal", "--sf-password-stdin", "--credentials-file"):
        assert alternative in result.stderr
    assert "hunter2-on-the-command-line" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-c", runner, "deploy", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=120,
        check=False,
    ).stdout
    assert "--sf-password-stdin" in help_text and "--sf-password " not in help_text


def test_password_and_token_from_stdin(aws_endpoint, capsys, user_org, monkeypatch) -> None:
    secret = emulator_secret(user_org.emulator)
    # --sf-password-stdin with the emulator: login_url/ca_bundle can only come from a file, so
    # the collected values are checked here, and the stdin path end to end below.
    values = collect_credentials(
        username="etl@example.com",
        domain="test.salesforce.com",
        password_stdin=True,
        stdin=io.StringIO("pass word\ntok3n\n"),
    )
    assert values == {
        "username": "etl@example.com",
        "password": "pass word",
        "security_token": "tok3n",
        "domain": "test",
    }
    with pytest.raises(DeployError, match="two lines from standard input"):
        collect_credentials(username="u", password_stdin=True, stdin=io.StringIO("only-one\n"))

    # End to end. Where to log in (login_url) can come only from a file or the stored secret, so
    # this test sends the login deploy makes to the emulator (nothing leaves 127.0.0.1).
    from sf_lakehouse.aws.deploy import secrets as deploy_secrets

    original = deploy_secrets.login
    logins = []

    def via_emulator(ctx, values, source):
        logins.append(dict(values))
        where = {k: secret[k] for k in ("login_url", "ca_bundle")}
        return original(ctx, {**values, **where}, source)

    monkeypatch.setattr(deploy_secrets, "login", via_emulator)
    code = run_deploy(
        ENV,
        assume_yes=True,
        username=secret["username"],
        password_stdin=True,
        stdin=io.StringIO(f"{secret['password']}\n{secret['security_token']}\n"),
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert logins[0]["password"] == secret["password"]
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=SECRET_ID)["SecretString"]
    assert json.loads(stored) == {
        "username": secret["username"],
        "password": secret["password"],
        "security_token": secret["security_token"],
        "domain": "login",
    }
    assert secret["password"] not in captured.out + captured.err


def test_prompts_only_on_a_terminal() -> None:
    prompted = collect_credentials(
        username="u", interactive=True, prompt=lambda label: f"typed-{label.split()[1]}"
    )
    assert prompted == {
        "username": "u",
        "password": "typed-password:",
        "security_token": "typed-security",
        "domain": "login",
    }
    with pytest.raises(DeployError) as error:
        collect_credentials(username="u", interactive=False)
    assert "not a terminal" in str(error.value)
    assert "--sf-password-stdin" in str(error.value) and "--credentials-file" in str(error.value)


def test_credentials_file_readable_by_others_is_refused(tmp_path, capsys) -> None:
    path = write_credentials_file(
        tmp_path / "creds.json", {"username": "u", "password": "p", "security_token": "t"}
    )
    for mode in (0o644, 0o640, 0o604):
        os.chmod(path, mode)
        with pytest.raises(DeployError, match=rf"readable by group or others \(mode {mode:03o}\)"):
            collect_credentials(credentials_file=path)
    os.chmod(path, 0o600)
    assert collect_credentials(credentials_file=path)["domain"] == "login"

    os.chmod(path, 0o644)
    assert deploy_command("deploy", "--environment", ENV, "--credentials-file", str(path)) == 2
    assert f"chmod 600 {path}" in capsys.readouterr().err


def test_credential_input_is_validated_before_any_aws_call(aws_endpoint, capsys, tmp_path) -> None:
    path = write_credentials_file(
        tmp_path / "creds.json", {"username": "u", "pasword": "typo", "domain": "login"}
    )
    assert deploy_command("deploy", "--environment", ENV, "--credentials-file", str(path)) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) pasword" in err and "typo" not in err

    write_credentials_file(
        path,
        {
            "username": "u",
            "password": "p",
            "security_token": "t",
            "domain": "http://login.salesforce.com",
        },
    )
    assert deploy_command("deploy", "--environment", ENV, "--credentials-file", str(path)) == 2
    assert "https:// only" in capsys.readouterr().err

    # No TTY here: no prompt, an error naming the alternatives.
    assert deploy_command("deploy", "--environment", ENV, "--sf-username", "u") == 2
    assert "--sf-password-stdin" in capsys.readouterr().err
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_secret_round_trip_and_password_change(aws_endpoint, capsys, user_org, tmp_path) -> None:
    secret = emulator_secret(user_org.emulator)
    code = deploy_command(
        "deploy", "--environment", ENV, "--yes", "--credentials-file", str(user_org.credentials)
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"create  secret {SECRET_ID}  (username: ***, password: ***" in captured.out
    sm = boto3.client("secretsmanager")
    assert json.loads(sm.get_secret_value(SecretId=SECRET_ID)["SecretString"]) == secret
    assert secret["password"] not in captured.out + captured.err

    # The same values: nothing to change.
    deploy_command("deploy", "--environment", ENV, "--credentials-file", str(user_org.credentials))
    assert f"none    secret {SECRET_ID}  (stored values equal" in capsys.readouterr().out

    # A password the org refuses is never stored.
    wrong = write_credentials_file(tmp_path / "wrong.json", {**secret, "password": "Wr0ng-pass"})
    code = deploy_command("deploy", "--environment", ENV, "--yes", "--credentials-file", str(wrong))
    captured = capsys.readouterr()
    assert code == 2
    assert "Salesforce login with the given credentials failed" in captured.err
    assert "Wr0ng-pass" not in captured.out + captured.err
    assert json.loads(sm.get_secret_value(SecretId=SECRET_ID)["SecretString"]) == secret

    # A changed domain form the org accepts: stored normalised, shown, values masked.
    renamed = write_credentials_file(
        tmp_path / "renamed.json", {**secret, "domain": "https://login.salesforce.com"}
    )
    code = deploy_command(
        "deploy", "--environment", ENV, "--yes", "--credentials-file", str(renamed)
    )
    assert code == 0
    assert "none    secret" in capsys.readouterr().out  # https://login.salesforce.com == login
    settings = resolve_settings(ENV)
    assert settings.auth.secret_id == SECRET_ID
