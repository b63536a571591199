"""Monitoring's pure parts: the alerts config, the messages (one line, no values), the metrics of
a run, batching, `status` over the local metrics files, the dashboard and alarms per spec, and
one alert per change of freshness state."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sf_lakehouse.aws.deploy.cloudwatch import dashboard_body, desired_alarms
from sf_lakehouse.config import ConfigError, load_config, resolve_settings
from sf_lakehouse.monitoring import metrics as m
from sf_lakehouse.monitoring import names
from sf_lakehouse.monitoring.publish import read_jsonl, write_jsonl
from sf_lakehouse.monitoring.sinks import Alert, notify, one_line
from sf_lakehouse.monitoring.status import as_json, as_table, collect
from sf_lakehouse_tests.moto_server import deploy_command

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def settings_with(environment: str, alerts: dict[str, Any], home: Path) -> Any:
    config = load_config()
    config["environments"][environment]["alerts"] = alerts
    return resolve_settings(environment, home=home, config=config)


# --- the alerts config ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "alerts", "message"),
    [
        ("local", {"sns": True}, "alerts.sns needs an AWS environment"),
        ("development", {"email": ["ops@example.com"]}, "set sns: true as well"),
        ("development", {"sns": True, "email": ["not-an-address"]}, "is not an e-mail address"),
        ("development", {"slack": {"channel": "#a"}}, "exactly one of token_secret_id"),
        (
            "development",
            {"slack": {"channel": "#a", "token_env": "T", "token_secret_id": "s"}},
            "exactly one of token_secret_id",
        ),
        ("development", {"slack": {"channel": "alerts", "token_env": "T"}}, "'#channel-name'"),
        ("local", {"slack": {"channel": "#a", "token_secret_id": "s"}}, "use token_env locally"),
        ("development", {"slak": {}}, "slak"),
    ],
)
def test_a_wrong_alerts_section_is_one_line_naming_the_key(
    tmp_path: Path, environment: str, alerts: dict[str, Any], message: str
) -> None:
    """Guards: a sink that cannot work (SNS without AWS, Slack without a token) is refused at
    load time, not discovered when the first alert is lost."""
    with pytest.raises(ConfigError) as error:
        settings_with(environment, alerts, tmp_path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_shipped_aws_environments_send_to_their_topic() -> None:
    for environment in ("development", "staging", "prod"):
        assert resolve_settings(environment).config.alerts.sns is True
    assert resolve_settings("local").config.alerts.sns is False


# --- messages -------------------------------------------------------------------------------


def test_a_message_names_object_step_error_and_link_without_the_value() -> None:
    """Guards: a record's value (quoted by the extraction's conversion error) never leaves in
    an alert; the error stays one line."""
    error = (
        "User record 005000000000001AAA: Birthdate__c = 'Jane Doe 1970-01-01' does not convert\n"
        "(not a date); 1 such value(s) in this page"
    )
    alert = Alert(
        "prod", "run", "failed", ("User",), "step sf_raw__sf_user", error, "http://ui/runs/r1"
    )
    text = alert.text()
    assert "Jane Doe" not in text and "1970" not in text
    assert text.splitlines() == [
        "[sf-lakehouse prod] FAILED run step sf_raw__sf_user (User)",
        "error: User record 005000000000001AAA: Birthdate__c = '…' does not convert (not a "
        "date); 1 such value(s) in this page",
        "link: http://ui/runs/r1",
    ]
    assert len(one_line("x" * 1000)) == 300


def test_a_failing_sink_warns_and_the_others_still_send(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    settings = settings_with(
        "local", {"slack": {"channel": "#a", "token_env": "NO_SUCH_TOKEN"}}, tmp_path
    )
    warnings: list[str] = []
    alert = Alert("local", "run", "failed", ("User",), "step s", "boom", "http://ui/runs/1")
    assert notify(settings, alert, warnings.append) == []
    [warning] = warnings
    assert warning.startswith("alert not delivered to slack") and "NO_SUCH_TOKEN" in warning


# --- metrics of a run -----------------------------------------------------------------------


def facts(succeeded: bool = True, **kwargs: Any) -> m.RunFacts:
    base = m.RunFacts(
        run_id="r1",
        succeeded=succeeded,
        finished=NOW,
        objects=["User", "Account"],
        raw={
            "User": {
                "rows_extracted": 7,
                "rows_appended": 5,
                "rows_rejected": 1,
                "org_api_usage": 300,
                "org_api_limit": 15000,
            }
        },
        dimension={"User": {"versions_opened": 4, "versions_closed": 2}},
        checks_failed={"User": 1},
        step_seconds={"sf_raw__sf_user": 1.5},
        step_objects={"sf_raw__sf_user": ["User"]},
    )
    for key, value in kwargs.items():
        setattr(base, key, value)
    return base


def by_metric(points: list[m.Datum], obj: str | None) -> dict[str, float]:
    return {p.metric: p.value for p in points if p.object == obj and p.step is None}


def test_run_metrics_come_from_the_runs_metadata() -> None:
    points = m.run_data(facts(), "prod")
    user = by_metric(points, "User")
    assert user == {
        m.ROWS_EXTRACTED: 7,
        m.ROWS_APPENDED: 5,
        m.RECORDS_REJECTED: 1,
        m.API_USAGE_PERCENT: 2.0,
        m.VERSIONS_OPENED: 4,
        m.VERSIONS_CLOSED: 2,
        m.CHECKS_FAILED: 1,
        m.RUNS_SUCCEEDED: 1,
    }
    # An object that extracted nothing this run still reports its outcome and checks.
    assert by_metric(points, "Account") == {m.CHECKS_FAILED: 0, m.RUNS_SUCCEEDED: 1}
    assert by_metric(points, None) == {m.RUNS_SUCCEEDED: 1, m.API_USAGE_PERCENT: 2.0}
    [step] = [p for p in points if p.step]
    assert step.dimensions() == [
        {"Name": "Environment", "Value": "prod"},
        {"Name": "Object", "Value": "User"},
        {"Name": "Step", "Value": "sf_raw__sf_user"},
    ]
    assert step.cloudwatch()["Unit"] == "Seconds"


def test_a_failed_runs_reason_is_its_objects_own_step() -> None:
    failed = facts(
        succeeded=False, reason="step sf_raw__sf_account failed: A", reasons={"User": "U"}
    )
    reasons = {p.object: p.detail for p in m.run_data(failed, "prod") if p.metric == m.RUNS_FAILED}
    assert reasons == {
        "User": "U",
        "Account": "step sf_raw__sf_account failed: A",
        None: failed.reason,
    }


def test_put_metric_data_batches_of_at_most_1000() -> None:
    """Guards: PutMetricData refuses more than 1,000 points per call."""
    points = [m.Datum(m.ROWS_EXTRACTED, i, NOW, "prod", "User") for i in range(2500)]
    sizes = [len(batch) for batch in m.batches(points)]
    assert sizes == [1000, 1000, 500]
    one = json.dumps(points[0].cloudwatch(), default=str)
    assert len(one) * 1000 < 1_000_000


# --- status over the local metrics ----------------------------------------------------------


def publish_run(settings: Any, at: dt.datetime, *, succeeded: bool = True, **kwargs: Any) -> None:
    run = facts(
        succeeded=succeeded,
        finished=at,
        objects=[s.api_name for s in settings.objects],
        run_id=f"run-{at.isoformat()}",
    )
    for key, value in kwargs.items():
        setattr(run, key, value)
    lag = {
        (s.api_name, k): at - dt.timedelta(minutes=1)
        for s in settings.objects
        for k in ("raw", "dimension")
    }
    write_jsonl(
        settings, m.run_data(run, settings.environment) + m.freshness_data(settings, lag, at)
    )


def test_status_is_well_after_a_clean_run_and_judges_freshness_by_the_clock(tmp_path) -> None:
    settings = resolve_settings("local", home=tmp_path)
    publish_run(settings, NOW, raw={}, checks_failed={})
    statuses = collect(settings, read_jsonl(settings, days=10_000), NOW + dt.timedelta(minutes=30))
    assert [s.object for s in statuses] == [s.api_name for s in settings.objects]
    assert all(s.healthy for s in statuses), [s.problems for s in statuses]
    assert {s.raw.status for s in statuses} == {"fresh"}
    assert statuses[0].raw.lag_minutes == 31
    table = as_table(settings, statuses, NOW + dt.timedelta(minutes=30))
    assert table.splitlines()[-1] == "All well."

    # Seven hours later nothing ran: the raw tables are past their fail window (6 h).
    later = collect(settings, read_jsonl(settings, days=10_000), NOW + dt.timedelta(hours=7))
    user = next(s for s in later if s.object == "User")
    assert (user.raw.status, user.dimension.status) == ("fail", "warn")
    assert user.problems == ["raw fail"]


def test_status_names_the_failure_rejects_and_api_usage(tmp_path) -> None:
    settings = resolve_settings("local", home=tmp_path)
    publish_run(settings, NOW)
    publish_run(
        settings,
        NOW + dt.timedelta(minutes=10),
        succeeded=False,
        raw={},
        checks_failed={},
        reason="step sf_raw__sf_user failed: Salesforce answered 500",
    )
    statuses = collect(settings, read_jsonl(settings, days=10_000), NOW + dt.timedelta(minutes=11))
    user = next(s for s in statuses if s.object == "User")
    assert user.last_run_outcome == "failed"
    assert user.last_failure == "step sf_raw__sf_user failed: Salesforce answered 500"
    assert user.problems == [
        "last run failed: step sf_raw__sf_user failed: Salesforce answered 500"
    ]
    report = as_json(settings, statuses, NOW)
    assert report["healthy"] is False and json.dumps(report)

    publish_run(settings, NOW + dt.timedelta(minutes=20))  # 1 rejected value, 1 failed check
    statuses = collect(settings, read_jsonl(settings, days=10_000), NOW + dt.timedelta(minutes=21))
    user = next(s for s in statuses if s.object == "User")
    assert user.last_run_outcome == "succeeded" and user.api_usage_percent == 2.0
    assert user.problems == [
        "1 check(s) failed in the last run",
        "1 value(s) rejected in the last run",
    ]


def test_status_command_exit_codes(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SF_LAKEHOUSE_HOME", str(tmp_path))
    assert deploy_command("status") == 1  # nothing ran yet
    assert "No metrics yet" in capsys.readouterr().out
    settings = resolve_settings("local", home=tmp_path)
    publish_run(settings, dt.datetime.now(dt.UTC), raw={}, checks_failed={})
    assert deploy_command("status", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["healthy"] is True


# --- dashboard and alarms from the specs ----------------------------------------------------


def test_every_object_spec_gets_its_widgets_and_alarms(tmp_path) -> None:
    """Guards: an added object adds its widgets and its four alarms, named by the contract."""
    settings = resolve_settings("prod", home=tmp_path)
    body = dashboard_body(settings)
    headers = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    assert headers == [f"## {s.api_name}" for s in settings.objects] + ["## Environment prod"]
    alarms = desired_alarms(settings, "arn:aws:sns:eu-west-1:1:t")
    expected = [
        f"sf-lakehouse-prod-{s.name}-{suffix}"
        for s in settings.objects
        for suffix in names.OBJECT_ALARMS
    ] + ["sf-lakehouse-prod-no-successful-run", "sf-lakehouse-prod-api-usage"]
    assert [a["AlarmName"] for a in alarms] == expected
    stale = {a["AlarmName"]: a["Threshold"] for a in alarms if a["AlarmName"].endswith("-stale")}
    for spec in settings.objects:
        assert (
            stale[f"sf-lakehouse-prod-{spec.name}-raw-stale"]
            == spec.freshness.raw.fail_after_minutes
        )


# --- freshness: one alert per change of state -----------------------------------------------


def test_freshness_alerts_once_per_change_and_once_when_fresh_again(tmp_path) -> None:
    from dagster import AssetKey

    from sf_lakehouse.defs.alerting import notify_freshness_change

    settings = resolve_settings("local", home=tmp_path)
    key = AssetKey(["sf_raw", "sf_user"])
    sent = []
    for previous, status in [
        ("", "fresh"),
        ("fresh", "fresh"),
        ("fresh", "warn"),
        ("warn", "warn"),
        ("warn", "fail"),
        ("fail", "fail"),
        ("fail", "fresh"),
        ("", "never"),
    ]:
        alert = notify_freshness_change(settings, key, previous, status, NOW, print)
        sent.append(alert.state if alert else None)
    assert sent == [None, None, "warn", None, "fail", None, "ok", None]


def test_the_pipeline_may_publish_only_its_own_namespace(tmp_path) -> None:
    """Guards: PutMetricData has no resource-level permission, so the namespace condition is
    the only limit; nothing else gets a `*` resource."""
    from sf_lakehouse.aws.iam import WILDCARD_RESOURCE_ACTIONS, monitoring_statements

    settings = settings_with(
        "prod", {"sns": True, "slack": {"channel": "#a", "token_secret_id": "slack/prod"}}, tmp_path
    )
    statements = {s["Sid"]: s for s in monitoring_statements(settings, "123456789012")}
    assert statements["RunMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "SfLakehouse"}
    }
    assert statements["AlertsTopic"]["Resource"] == [
        "arn:aws:sns:eu-west-1:123456789012:sf-lakehouse-prod-alerts"
    ]
    assert statements["SlackToken"]["Resource"] == [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:slack/prod-??????"
    ]
    for statement in statements.values():
        if statement["Resource"] == ["*"]:
            assert set(statement["Action"]) <= WILDCARD_RESOURCE_ACTIONS


def test_local_metrics_keep_ninety_days(tmp_path) -> None:
    """Guards: a laptop's metrics folder does not grow forever."""
    from sf_lakehouse.monitoring.publish import metrics_dir

    settings = resolve_settings("local", home=tmp_path)
    metrics_dir(settings).mkdir(parents=True)
    (metrics_dir(settings) / "2026-08-01.jsonl").write_text("{}\n")  # 124 days before NOW
    (metrics_dir(settings) / "2026-10-01.jsonl").write_text("{}\n")
    (metrics_dir(settings) / "notes.jsonl").write_text("{}\n")
    write_jsonl(settings, [m.Datum(m.RUNS_SUCCEEDED, 1, NOW, "local", "User")])
    assert sorted(p.name for p in metrics_dir(settings).iterdir()) == [
        "2026-10-01.jsonl",
        "2026-12-03.jsonl",
        "notes.jsonl",
    ]


@pytest.fixture
def silent_server(monkeypatch) -> Any:
    """A TCP server that takes connections and never answers (a hung endpoint); the sinks'
    read timeout made 1 s so the tests stay fast."""
    import socket
    import threading

    from sf_lakehouse.monitoring import clients

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setattr(clients, "READ_TIMEOUT_SECONDS", 1)
    yield server.getsockname()[1], accepted
    server.close()
    for connection in accepted:
        connection.close()


def test_an_sns_endpoint_that_never_answers_only_warns_within_seconds(
    tmp_path: Path, monkeypatch, silent_server
) -> None:
    # Regression (review of issue 15): the SNS and STS clients had boto3's defaults (60 s
    # timeouts, several attempts), so a hung endpoint held the failure sensor's tick past its
    # deadline; the tick was then retried and sent the alert again.
    import time

    from sf_lakehouse.monitoring import clients

    port, accepted = silent_server
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = load_config()
    config["environments"]["development"]["alerts"]["sns"] = True
    settings = resolve_settings("development", home=tmp_path, config=config)
    warnings: list[str] = []
    alert = Alert("development", "run", "failed", ("User",), "step s", "boom", "http://ui/r/1")
    started = time.monotonic()
    assert notify(settings, alert, warnings.append) == []
    assert time.monotonic() - started < 10
    assert len(accepted) == clients.MAX_ATTEMPTS
    [warning] = warnings
    assert warning.startswith("alert not delivered to sns")


def test_a_slack_that_never_answers_only_warns_within_seconds(
    tmp_path: Path, monkeypatch, silent_server
) -> None:
    # Regression (review of issue 15): the Slack client waited 30 s per attempt.
    import time

    port, accepted = silent_server
    monkeypatch.setenv("SLACK_TEST_TOKEN", "xoxb-not-a-real-token")
    slack = {
        "channel": "#a",
        "token_env": "SLACK_TEST_TOKEN",
        "api_url": f"https://127.0.0.1:{port}/api/",
    }
    settings = settings_with("local", {"slack": slack}, tmp_path)
    warnings: list[str] = []
    alert = Alert("local", "run", "failed", ("User",), "step s", "boom", "http://ui/r/1")
    started = time.monotonic()
    assert notify(settings, alert, warnings.append) == []
    assert time.monotonic() - started < 10
    assert accepted
    [warning] = warnings
    assert warning.startswith("alert not delivered to slack")
    assert "xoxb-not-a-real-token" not in warning


def test_the_failure_reason_status_shows_carries_no_record_value(tmp_path: Path) -> None:
    # Regression (review of issue 15): the reason kept in metrics/*.jsonl and printed by
    # `status` was the step's raw error, with the value the extraction quoted.
    from dagster import AssetKey, DagsterInstance, Definitions, asset, define_asset_job

    from sf_lakehouse.defs.jobs import PIPELINE_JOB_NAME
    from sf_lakehouse.monitoring.run_facts import run_facts

    settings = resolve_settings("local", home=tmp_path)
    spec = next(s for s in settings.objects if s.api_name == "User")

    @asset(key=AssetKey(list(spec.raw_asset_key)))
    def raw_user() -> None:
        raise ValueError("Birthdate__c = 'Jane Doe 1970-01-01' does not convert (not a date)")

    defs = Definitions(assets=[raw_user], jobs=[define_asset_job(PIPELINE_JOB_NAME)])
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def(PIPELINE_JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    found = run_facts(settings, instance, result.run_id)
    assert found is not None and found.reason is not None
    assert "Birthdate__c" in found.reason and "does not convert" in found.reason
    assert "Jane Doe" not in found.reason and "1970" not in found.reason
    assert "Jane Doe" not in found.reasons["User"]
    details = [p.detail for p in m.run_data(found, "local") if p.detail]
    assert details and not any("Jane Doe" in d for d in details)


def test_the_previous_run_is_found_however_many_runs_came_since() -> None:
    """Guards: the check alerts compare a run with the same job's previous finished run; the
    lookup read only the newest 50 runs and, for an older run, answered with the newest one
    (a run created after it), so a check that kept failing alerted again or not at all."""
    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

    from sf_lakehouse.defs.alerting import previous_finished_run

    with DagsterInstance.ephemeral() as instance:
        runs = []
        for number in range(60):
            status = DagsterRunStatus.STARTED if number == 1 else DagsterRunStatus.SUCCESS
            job = "other_job" if number == 2 else "sf_user_pipeline"
            runs.append(instance.add_run(DagsterRun(job_name=job, status=status)))
        assert previous_finished_run(instance, runs[0]) is None
        # runs[1] is unfinished and runs[2] another job's: both are passed over.
        assert previous_finished_run(instance, runs[3]).run_id == runs[0].run_id
        assert previous_finished_run(instance, runs[4]).run_id == runs[3].run_id
        assert previous_finished_run(instance, runs[59]).run_id == runs[58].run_id
