"""`sf-lakehouse status [--format json]`: every object at a glance, from the metrics the runs
published (local JSON Lines, or CloudWatch for an AWS environment). Exit 0 when all is well,
1 otherwise, so a cron job or a health check can use it.

All is well for an object when its last run succeeded with no failed check and no rejected
value, its raw table and dimension are inside their fail windows (judged as the freshness
policies judge them: minutes since the last materialization), and the org's API usage is
under the quota guard's share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.monitoring import metrics as m
from sf_lakehouse.monitoring.publish import read_jsonl

LOOKBACK_DAYS = 14


@dataclass
class Freshness:
    status: str  # fresh, warn, fail, never
    lag_minutes: float | None
    warn_after_minutes: int
    fail_after_minutes: int


@dataclass
class ObjectStatus:
    object: str
    last_run_id: str | None
    last_run_at: str | None
    last_run_outcome: str  # succeeded, failed, none
    raw: Freshness
    dimension: Freshness
    rejects_last_run: int
    checks_failed_last_run: int
    api_usage_percent: float | None
    last_failure_at: str | None
    last_failure: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _time(record: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(record["time"])


def _latest(records: Sequence[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    chosen = None
    for record in records:
        if record["metric"] == metric and (chosen is None or _time(record) >= _time(chosen)):
            chosen = record
    return chosen


def _freshness(
    records: Sequence[dict[str, Any]], metric: str, spec: ObjectSpec, kind: str, now: dt.datetime
) -> Freshness:
    window = m.window_of(spec, kind)
    point = _latest(records, metric)
    last_update = None
    if point is not None:
        # The lag when published, plus the time since: the age of the last materialization.
        last_update = _time(point) - dt.timedelta(minutes=float(point["value"]))
    lag = m.lag_minutes(last_update, now)
    status = m.freshness_status(last_update, window, now)
    return Freshness(status, lag, window.warn_after_minutes, window.fail_after_minutes)


def object_status(
    settings: Settings, spec: ObjectSpec, records: Sequence[dict[str, Any]], now: dt.datetime
) -> ObjectStatus:
    mine = [r for r in records if r.get("dimensions", {}).get(m.OBJECT) == spec.api_name]
    succeeded = _latest(mine, m.RUNS_SUCCEEDED)
    failed = _latest(mine, m.RUNS_FAILED)
    last = max((r for r in (succeeded, failed) if r), key=_time, default=None)
    outcome = "none" if last is None else "succeeded" if last is succeeded else "failed"
    run_id = last.get("run_id") if last else None
    # This run's own points (CloudWatch's points carry no run id: those of the same minute).
    in_run = [
        r
        for r in mine
        if last is not None and (r.get("run_id") == run_id if run_id else _time(r) == _time(last))
    ]
    rejects = sum(int(r["value"]) for r in in_run if r["metric"] == m.RECORDS_REJECTED)
    checks = sum(int(r["value"]) for r in in_run if r["metric"] == m.CHECKS_FAILED)
    usage_point = _latest(mine, m.API_USAGE_PERCENT)
    usage = float(usage_point["value"]) if usage_point else None
    status = ObjectStatus(
        object=spec.api_name,
        last_run_id=run_id,
        last_run_at=last["time"] if last else None,
        last_run_outcome=outcome,
        raw=_freshness(mine, m.RAW_FRESHNESS_LAG, spec, "raw", now),
        dimension=_freshness(mine, m.DIMENSION_FRESHNESS_LAG, spec, "dimension", now),
        rejects_last_run=rejects,
        checks_failed_last_run=checks,
        api_usage_percent=usage,
        last_failure_at=failed["time"] if failed else None,
        last_failure=(failed.get("detail") or "see the alerts or the Dagster UI")
        if failed
        else None,
    )
    guard = 100.0 * settings.config.salesforce.max_api_usage_share
    if outcome == "none":
        status.problems.append("no run recorded")
    elif outcome == "failed":
        status.problems.append(f"last run failed: {status.last_failure}")
    for kind, fresh in (("raw", status.raw), ("dimension", status.dimension)):
        if fresh.status in ("fail", "never"):
            status.problems.append(f"{kind} {fresh.status}")
    if checks:
        status.problems.append(f"{checks} check(s) failed in the last run")
    if rejects:
        status.problems.append(f"{rejects} value(s) rejected in the last run")
    if usage is not None and usage >= guard:
        status.problems.append(f"API usage {usage:g}% at or past the guard's {guard:g}%")
    return status


def collect(
    settings: Settings, records: Sequence[dict[str, Any]], now: dt.datetime | None = None
) -> list[ObjectStatus]:
    now = now or dt.datetime.now(dt.UTC)
    env = [r for r in records if r.get("dimensions", {}).get(m.ENVIRONMENT) == settings.environment]
    return [object_status(settings, spec, env, now) for spec in settings.objects]


def load_records(settings: Settings, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Locally the JSON Lines files; for an AWS environment, CloudWatch."""
    if settings.aws is None:
        return read_jsonl(settings, days=LOOKBACK_DAYS)
    from sf_lakehouse.monitoring.cloudwatch_read import read_cloudwatch

    return read_cloudwatch(settings, now or dt.datetime.now(dt.UTC), days=LOOKBACK_DAYS)


# --- output ---------------------------------------------------------------------------------


def _ago(stamp: str | None, now: dt.datetime) -> str:
    if stamp is None:
        return "never"
    minutes = (now - dt.datetime.fromisoformat(stamp)).total_seconds() / 60
    text = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    return f"{text} ago"


def _fresh(f: Freshness) -> str:
    lag = "-" if f.lag_minutes is None else f"{f.lag_minutes:.0f}"
    return f"{f.status} {lag}/{f.warn_after_minutes}/{f.fail_after_minutes} min"


def as_table(settings: Settings, statuses: Sequence[ObjectStatus], now: dt.datetime) -> str:
    rows = [("object", "last run", "raw (lag/warn/fail)", "dimension", "rejects", "API use")]
    for s in statuses:
        usage = "-" if s.api_usage_percent is None else f"{s.api_usage_percent:g}%"
        rows.append(
            (
                s.object,
                "no run yet"
                if s.last_run_at is None
                else f"{s.last_run_outcome} {_ago(s.last_run_at, now)}",
                _fresh(s.raw),
                _fresh(s.dimension),
                str(s.rejects_last_run),
                usage,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"Environment {settings.environment} ({settings.home}), {now:%Y-%m-%d %H:%M} UTC"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for s in statuses:
        if s.last_failure:
            lines.append(
                f"{s.object}: last failure {_ago(s.last_failure_at, now)}: {s.last_failure}"
            )
    problems = [f"{s.object}: {p}" for s in statuses for p in s.problems]
    if all(s.last_run_at is None for s in statuses):
        lines.append("No metrics yet: `sf-lakehouse run` (or `sf-lakehouse demo`) records them.")
    lines.append("All well." if not problems else f"{len(problems)} problem(s):")
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def as_json(settings: Settings, statuses: Sequence[ObjectStatus], now: dt.datetime) -> dict:
    return {
        "environment": settings.environment,
        "checked_at": now.isoformat(),
        "healthy": all(s.healthy for s in statuses),
        "objects": [{**asdict(s), "healthy": s.healthy} for s in statuses],
    }
