"""Monitoring on the AWS side, against one moto server for the module (CloudWatch, SNS, SQS,
KMS, EventBridge, S3, Glue, IAM, Secrets Manager): `deploy` creates the topic, dashboard,
alarms and Glue rule (a second deploy changes nothing); a run of the environment publishes
its metrics; a run that fails for real (a fault injected in the emulator) reaches an SQS queue
subscribed to the topic and a local HTTPS server speaking Slack's chat.postMessage, once per
change of state and once when it is good again."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import requests
import yaml

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.emulator import SalesforceEmulator, generate_org
from sf_lakehouse.emulator.tls import generate_certificates
from sf_lakehouse.monitoring import metrics as m
from sf_lakehouse.monitoring import names
from sf_lakehouse_tests.moto_server import (
    AWS_REGION,
    _evaluate_bucket_policy_over_tls,
    deploy_command,
    emulator_secret,
    user_only_config,
    write_credentials_file,
)

ENV = "development"
START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
SLACK_TOKEN = "xoxb-test-token-never-shown"
SLACK_CHANNEL = "#data-alerts"
EMAIL = "oncall@example.com"


# --- a Slack stand-in: HTTPS, chat.postMessage's shape --------------------------------------


class SlackStandIn:
    def __init__(self, directory: Path) -> None:
        self.paths = generate_certificates(directory)
        self.messages: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                if self.path != "/api/chat.postMessage":
                    self._answer({"ok": False, "error": "unknown_method"})
                    return
                payload = json.loads(body)
                stand_in.tokens.append(self.headers.get("Authorization", ""))
                stand_in.messages.append(payload)
                self._answer(
                    {
                        "ok": True,
                        "channel": "C0123ABCD",
                        "ts": f"{1700000000 + len(stand_in.messages)}.000100",
                        "message": {"type": "message", "text": payload.get("text", "")},
                    }
                )

            def _answer(self, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.paths.certificate, self.paths.private_key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/api/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- one moto server, one emulator and one deploy for the module ----------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    base = tmp_path_factory.mktemp("monitoring")
    patch = pytest.MonkeyPatch()  # undone when the module's tests are done
    _evaluate_bucket_policy_over_tls(patch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
    slack = SlackStandIn(base / "slack-tls")
    config = user_only_config(base / "config")
    data = yaml.safe_load(config.read_text())
    data["environments"][ENV]["alerts"] = {
        "sns": True,
        "email": [EMAIL],
        "slack": {
            "channel": SLACK_CHANNEL,
            "token_env": "SLACK_BOT_TOKEN",
            "api_url": slack.api_url,
        },
    }
    # A failing request fails the run at once (no retries: the test stays fast).
    data["environments"][ENV]["salesforce"] = {"api_version": "59.0", "max_retries": 0}
    config.write_text(yaml.safe_dump(data))
    history = generate_org(users=12, seed=5, start=START, days=2, accounts=0, opportunities=0)
    emulator = SalesforceEmulator(
        history, workdir=base / "emulator", now=START + dt.timedelta(days=3)
    )
    emulator.start()
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
        "SF_LAKEHOUSE_CONFIG": str(config),
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        # The Slack client (urllib) trusts the stand-in's CA through OpenSSL's default paths.
        "SSL_CERT_FILE": str(slack.paths.ca_bundle),
    }
    credentials = write_credentials_file(base / "creds.json", emulator_secret(emulator))
    with pytest.MonkeyPatch.context() as scoped:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            scoped.delenv(name)
        for name, value in env.items():
            scoped.setenv(name, value)
        outputs = []
        for extra in (["--yes", "--credentials-file", str(credentials)], []):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = deploy_command("deploy", "--environment", ENV, *extra)
            outputs.append((code, out.getvalue(), err.getvalue()))
    try:
        yield SimpleNamespace(
            endpoint=endpoint,
            env=env,
            base=base,
            slack=slack,
            emulator=emulator,
            deploys=outputs,
        )
    finally:
        emulator.stop()
        slack.stop()
        server.stop()
        patch.undo()


@pytest.fixture
def aws(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    return world


def plan_actions(out: str) -> dict[str, str]:
    actions = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("create", "update", "none"):
            actions[line.split("  (")[0].strip().split(None, 1)[1]] = parts[0]
    return actions


def settings_of(world: SimpleNamespace, home: Path) -> Any:
    return resolve_settings(ENV, home=home)


# --- deploy ---------------------------------------------------------------------------------


def test_deploy_creates_topic_dashboard_alarms_and_rule_and_a_second_deploy_changes_nothing(
    aws: SimpleNamespace,
) -> None:
    (first_code, first, first_err), (second_code, second, second_err) = aws.deploys
    assert first_code == 0, first_err
    assert second_code == 0, second_err
    created = plan_actions(first)
    monitoring = [r for r in created if "sf-lakehouse-development" in r or EMAIL in r]
    expected_alarms = [
        *(f"cloudwatch alarm sf-lakehouse-development-user-{s}" for s in names.OBJECT_ALARMS),
        "cloudwatch alarm sf-lakehouse-development-no-successful-run",
        "cloudwatch alarm sf-lakehouse-development-api-usage",
    ]
    for resource in (
        "kms key alias/sf-lakehouse-development-alerts",
        "sns topic sf-lakehouse-development-alerts",
        f"sns subscription {EMAIL}",
        "cloudwatch dashboard sf-lakehouse-development",
        *expected_alarms,
        "eventbridge rule sf-lakehouse-development-glue-job-state",
    ):
        assert created.get(resource) == "create", (resource, first)
    assert len(monitoring) == 12, monitoring
    again = plan_actions(second)
    assert set(again.values()) == {"none"}, second
    assert "nothing to change" in second
    # AWS lists an unconfirmed subscription as PendingConfirmation; moto confirms at once.
    [line] = [x for x in second.splitlines() if f"sns subscription {EMAIL}" in x]
    assert "(confirmed)" in line or "(pending confirmation" in line, line


def test_topic_is_encrypted_and_only_cloudwatch_and_eventbridge_may_publish(aws) -> None:
    sns = boto3.client("sns")
    account = boto3.client("sts").get_caller_identity()["Account"]
    arn = names.topic_arn(ENV, AWS_REGION, account)
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["KmsMasterKeyId"] == "alias/sf-lakehouse-development-alerts"
    policy = json.loads(attributes["Policy"])
    publishers = [s for s in policy["Statement"] if "sns:Publish" in json.dumps(s["Action"])]
    assert [s["Principal"] for s in publishers] == [
        {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]}
    ]
    assert publishers[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", EMAIL)]


def test_dashboard_body_parses_and_names_every_object(aws, tmp_path) -> None:
    settings = settings_of(aws, tmp_path)
    body = json.loads(
        boto3.client("cloudwatch").get_dashboard(DashboardName="sf-lakehouse-development")[
            "DashboardBody"
        ]
    )
    text = json.dumps(body)
    for spec in settings.objects:
        headers = [
            w for w in body["widgets"] if w["properties"].get("markdown") == f"## {spec.api_name}"
        ]
        assert len(headers) == 1
        assert f'"{m.OBJECT}", "{spec.api_name}"' in text
    namespaces = {
        line[0]
        for w in body["widgets"]
        if w["type"] == "metric"
        for line in w["properties"]["metrics"]
    }
    assert namespaces == {m.NAMESPACE, "AWS/Athena", "Glue"}
    freshness = [w for w in body["widgets"] if "raw freshness" in w["properties"].get("title", "")]
    [spec] = settings.objects
    values = [a["value"] for a in freshness[0]["properties"]["annotations"]["horizontal"]]
    assert values == [spec.freshness.raw.warn_after_minutes, spec.freshness.raw.fail_after_minutes]


def test_alarms_have_the_specs_thresholds_and_the_topic_as_action(aws, tmp_path) -> None:
    settings = settings_of(aws, tmp_path)
    [spec] = settings.objects
    account = boto3.client("sts").get_caller_identity()["Account"]
    topic = names.topic_arn(ENV, AWS_REGION, account)
    alarms = {
        a["AlarmName"]: a
        for a in boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="sf-lakehouse-")[
            "MetricAlarms"
        ]
    }
    prefix = "sf-lakehouse-development"
    assert alarms[f"{prefix}-user-raw-stale"]["Threshold"] == spec.freshness.raw.fail_after_minutes
    assert (
        alarms[f"{prefix}-user-dimension-stale"]["Threshold"]
        == spec.freshness.dimension.fail_after_minutes
    )
    assert alarms[f"{prefix}-user-raw-stale"]["MetricName"] == m.RAW_FRESHNESS_LAG
    assert alarms[f"{prefix}-api-usage"]["Threshold"] == pytest.approx(
        100 * settings.config.salesforce.max_api_usage_share
    )
    silent = alarms[f"{prefix}-no-successful-run"]
    assert silent["TreatMissingData"] == "breaching"
    assert silent["Period"] * silent["EvaluationPeriods"] == 3600 * 26
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    rule = boto3.client("events").describe_rule(Name=f"{prefix}-glue-job-state")
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"] == {
        "jobName": ["sf-extraction-development"],
        "state": ["FAILED", "TIMEOUT", "STOPPED"],
    }
    targets = boto3.client("events").list_targets_by_rule(Rule=f"{prefix}-glue-job-state")[
        "Targets"
    ]
    assert [t["Arn"] for t in targets] == [topic]


def test_glue_job_runs_with_metrics_and_continuous_logs(aws) -> None:
    arguments = boto3.client("glue").get_job(JobName="sf-extraction-development")["Job"][
        "DefaultArguments"
    ]
    for flag in (
        "--enable-metrics",
        "--enable-continuous-cloudwatch-log",
        "--enable-observability-metrics",
    ):
        assert arguments[flag] == "true"


# --- runs: metrics, alerts ------------------------------------------------------------------


def raw_run(settings: Any, instance: Any) -> Any:
    """A real run of the User job, its raw step only: moto's Athena runs no SQL, so the
    dimension's dbt build cannot run here (tests on DuckDB cover it)."""
    from dagster import AssetKey

    from sf_lakehouse.definitions import build_definitions

    [spec] = settings.objects
    job = build_definitions(settings).resolve_job_def(spec.job_name)
    return job.execute_in_process(
        instance=instance,
        asset_selection=[AssetKey(list(spec.raw_asset_key))],
        raise_on_error=False,
    )


def metric_totals(metric: str, dimensions: dict[str, str]) -> tuple[float, float]:
    """Sum and number of the points of the last hour."""
    now = dt.datetime.now(dt.UTC)
    answer = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=m.NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum", "SampleCount"],
    )
    points = answer["Datapoints"]
    return sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points)


def metric_values(metric: str, dimensions: dict[str, str]) -> list[float]:
    cloudwatch = boto3.client("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace=m.NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(minutes=5),
        Period=60,
        Statistics=["Sum"],
    )
    return [p["Sum"] for p in answer["Datapoints"]]


def test_a_run_publishes_its_metrics_matching_its_metadata(aws, tmp_path) -> None:
    from dagster import DagsterInstance

    from sf_lakehouse.monitoring.run_facts import publish_run_metrics

    settings = settings_of(aws, tmp_path / "metrics-run")
    instance = DagsterInstance.ephemeral()
    result = raw_run(settings, instance)
    assert result.success
    [materialization] = [
        e.step_materialization_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["rows_extracted"] > 0
    user = {"Environment": ENV, "Object": "User"}
    # Other tests of the module publish too: compare what this run added.
    counted = (m.ROWS_EXTRACTED, m.ROWS_APPENDED, m.RECORDS_REJECTED, m.API_USAGE_PERCENT)
    before = {name: metric_totals(name, user) for name in counted}
    assert publish_run_metrics(settings, instance, result.run_id)
    added = {
        name: tuple(a - b for a, b in zip(metric_totals(name, user), before[name], strict=True))
        for name in counted
    }

    listed = boto3.client("cloudwatch").list_metrics(Namespace=m.NAMESPACE)["Metrics"]
    per_object = {
        x["MetricName"] for x in listed if {d["Name"]: d["Value"] for d in x["Dimensions"]} == user
    }
    assert {
        m.ROWS_EXTRACTED,
        m.ROWS_APPENDED,
        m.RECORDS_REJECTED,
        m.VERSIONS_OPENED,
        m.VERSIONS_CLOSED,
        m.API_USAGE_PERCENT,
        m.RAW_FRESHNESS_LAG,
        m.CHECKS_FAILED,
        m.RUNS_SUCCEEDED,
    } <= per_object
    assert added[m.ROWS_EXTRACTED] == (metadata["rows_extracted"], 1)
    assert added[m.ROWS_APPENDED] == (metadata["rows_appended"], 1)
    assert added[m.RECORDS_REJECTED] == (metadata["rows_rejected"], 1)
    usage = 100 * metadata["org_api_usage"] / metadata["org_api_limit"]
    assert added[m.API_USAGE_PERCENT][0] == pytest.approx(usage, abs=0.001)
    steps = [x for x in listed if x["MetricName"] == m.STEP_SECONDS]
    assert {d["Value"] for x in steps for d in x["Dimensions"] if d["Name"] == m.STEP} == {
        "sf_raw__sf_user"
    }


def test_a_cloudwatch_outage_only_warns(tmp_path, monkeypatch) -> None:
    from sf_lakehouse.monitoring.publish import publish

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = resolve_settings(ENV, home=tmp_path)
    point = m.Datum(m.RUNS_SUCCEEDED, 1, dt.datetime.now(dt.UTC), ENV)
    warnings: list[str] = []
    started = time.monotonic()
    assert publish(settings, [point], warn=warnings.append) is False
    assert len(warnings) == 1 and "CloudWatch" in warnings[0]
    assert time.monotonic() - started < 30  # short timeouts and few retries: the run ends


def sqs_subscriber(topic: str) -> str:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"alerts-{os.getpid()}-{dt.datetime.now().timestamp():.0f}")[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def drain(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = answer.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def evaluate_run_sensors(settings: Any, instance: Any, run_id: str) -> None:
    """What the daemon does when the run ends: the failure or the success sensor."""
    from dagster import DagsterEventType, DagsterRunStatus, build_run_status_sensor_context

    from sf_lakehouse.defs.alerting import build_success_sensor
    from sf_lakehouse.defs.sensors import build_failure_sensor

    run = instance.get_run_by_id(run_id)
    failed = run.status == DagsterRunStatus.FAILURE
    kind = DagsterEventType.RUN_FAILURE if failed else DagsterEventType.RUN_SUCCESS
    [record] = instance.get_records_for_run(run_id, of_type=kind).records
    sensor = build_failure_sensor(settings) if failed else build_success_sensor(settings)
    context = build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=record.event_log_entry.dagster_event,
    )
    sensor(context.for_run_failure() if failed else context)


def test_a_failing_run_alerts_sns_and_slack_once_per_change_of_state(aws, tmp_path) -> None:
    from dagster import DagsterInstance

    settings = settings_of(aws, tmp_path / "alerts-run")
    account = boto3.client("sts").get_caller_identity()["Account"]
    queue = sqs_subscriber(names.topic_arn(ENV, AWS_REGION, account))
    instance = DagsterInstance.ephemeral()
    slack = aws.slack
    slack.messages.clear()
    # Every query fails with a 500 (logins still work): the raw step fails for real.
    aws.emulator.set_faults(
        {
            "seed": 1,
            "faults": [{"kind": "http_500", "body": "json", "every": 1, "path": "/services/data"}],
        }
    )
    try:
        failures = [raw_run(settings, instance) for _ in range(2)]
    finally:
        aws.emulator.clear_faults()
    assert not any(r.success for r in failures)
    for result in failures:
        evaluate_run_sensors(settings, instance, result.run_id)

    # Two failed runs in a row are one change of state: one message each way.
    sns_messages = drain(queue)
    assert len(sns_messages) == 1, sns_messages
    assert len(slack.messages) == 1, slack.messages
    text = sns_messages[0]["Message"]
    assert "FAILED run step sf_raw__sf_user (User)" in text
    assert f"/runs/{failures[0].run_id}" in text
    assert "error: " in text and "500" in text
    assert sns_messages[0]["Subject"].startswith("[sf-lakehouse development] FAILED")
    posted = slack.messages[0]
    assert posted["channel"] == SLACK_CHANNEL
    assert text in posted["text"]
    assert slack.tokens == [f"Bearer {SLACK_TOKEN}"]
    for message in (text, posted["text"]):
        assert SLACK_TOKEN not in message and "password" not in message.lower()

    # Good again: one message on each sink.
    recovered = raw_run(settings, instance)
    assert recovered.success
    evaluate_run_sensors(settings, instance, recovered.run_id)
    sns_messages = drain(queue)
    assert len(sns_messages) == 1 and len(slack.messages) == 2
    assert "RESOLVED run job" in sns_messages[0]["Message"]
    assert "RESOLVED" in slack.messages[1]["text"]
    # The failed runs' metrics reached CloudWatch through the sensor.
    assert sum(metric_values(m.RUNS_FAILED, {"Environment": ENV})) >= 2


def test_status_of_an_aws_environment_reads_cloudwatch(aws, tmp_path, capsys) -> None:
    from sf_lakehouse.monitoring.publish import publish

    settings = settings_of(aws, tmp_path)
    now = dt.datetime.now(dt.UTC)
    assert publish(
        settings,
        [
            m.Datum(m.RUNS_SUCCEEDED, 1, now, ENV, "User", run_id="r"),
            m.Datum(m.RAW_FRESHNESS_LAG, 2, now, ENV, "User"),
            m.Datum(m.DIMENSION_FRESHNESS_LAG, 2, now, ENV, "User"),
        ],
    )
    code = deploy_command("status", "--environment", ENV, "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and report["environment"] == ENV
    [user] = report["objects"]
    assert user["object"] == "User" and user["last_run_at"] is not None
    assert user["raw"]["status"] == user["dimension"]["status"] == "fresh"


@pytest.mark.parametrize("stored", [SLACK_TOKEN, json.dumps({"token": SLACK_TOKEN})])
def test_the_slack_token_comes_from_secrets_manager(aws, tmp_path, stored: str) -> None:
    from sf_lakehouse.config import load_config
    from sf_lakehouse.monitoring.sinks import slack_token

    secret_id = f"slack/{ENV}/bot-token-{len(stored)}"
    boto3.client("secretsmanager").create_secret(Name=secret_id, SecretString=stored)
    config = load_config()
    config["environments"][ENV]["alerts"]["slack"] = {
        "channel": SLACK_CHANNEL,
        "token_secret_id": secret_id,
    }
    settings = resolve_settings(ENV, home=tmp_path, config=config)
    assert slack_token(settings) == SLACK_TOKEN
