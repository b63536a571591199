"""The steps a finished run did not run, and why; and the dimensions one failed extraction must
not hold back. The one rule for every run: `sf-lakehouse run` (commands/run_steps.py) builds
them in a second run of its own, the follow-up sensor (defs/follow_up.py) for runs Dagster
launched (schedule, sensor, UI). Both read the run back from the instance.

Dagster skips a step when a step upstream of it fails, and the dbt step builds every object's
dimension: one object's failed extraction (an object the org lacks, a permission removed) would
leave every dimension unbuilt on every run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dagster import AssetKey, DagsterEventType, DagsterInstance

from sf_lakehouse.config import ObjectSpec

DBT_STEP = "sf_lakehouse_dbt"
# On a follow-up run: the run whose held-back dimensions it builds, and why they were held back.
FOLLOW_UP_TAG = "sf_lakehouse/builds_for_run"
HELD_BACK_TAG = "sf_lakehouse/held_back_by"
# On the failed run (added afterwards): the steps that did not run and why.
NOT_RUN_TAG = "sf_lakehouse/not_run"
STOPPED = "the run was stopped first"

_STEP_EVENTS = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
}


def raw_step(spec: ObjectSpec) -> str:
    """The step key of an object's raw asset (an asset's step is named after its key)."""
    return "__".join(spec.raw_asset_key)


@dataclass(frozen=True)
class RunSteps:
    """What a finished run was to execute and what became of each step."""

    run_id: str
    upstream: Mapping[str, frozenset[str]]  # step -> the steps it waits for
    started: frozenset[str]
    succeeded: frozenset[str]
    failed: frozenset[str]

    @classmethod
    def read(cls, instance: DagsterInstance, run_id: str) -> RunSteps:
        """From the instance: the run's execution plan and its step events."""
        run = instance.get_run_by_id(run_id)
        upstream: dict[str, frozenset[str]] = {}
        if run is not None and run.execution_plan_snapshot_id:
            plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            selected = set(plan.step_keys_to_execute or [step.key for step in plan.steps])
            for step in plan.steps:
                if step.key in selected:
                    upstream[step.key] = frozenset(
                        handle.step_key
                        for step_input in step.inputs
                        for handle in step_input.upstream_output_handles
                    )
        seen: dict[str, set[str]] = {
            "STEP_START": set(),
            "STEP_SUCCESS": set(),
            "STEP_FAILURE": set(),
        }
        records = instance.get_records_for_run(run_id, of_type=_STEP_EVENTS, limit=100_000).records
        for record in records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.step_key:
                seen[event.event_type_value].add(event.step_key)
        failed = frozenset(seen["STEP_FAILURE"])
        succeeded = frozenset(seen["STEP_SUCCESS"]) - failed
        return cls(
            run_id=run_id,
            upstream=upstream,
            started=frozenset(seen["STEP_START"]) | succeeded | failed,
            succeeded=succeeded,
            failed=failed,
        )

    def _failed_causes(self, step: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for upstream in self.upstream.get(step, frozenset()) - seen:
            seen.add(upstream)
            if upstream in self.failed:
                found.add(upstream)
            elif upstream not in self.started:
                found |= self._failed_causes(upstream, seen)
        return found

    def not_run(self) -> dict[str, str]:
        """Step -> why it did not run: the failed steps it waited for, directly or through steps
        that did not run either. (Dagster logs its "not executing" lines but records no event
        for such a step.)"""
        reasons: dict[str, str] = {}
        for step in sorted(self.upstream):
            if step not in self.started:
                causes = self._failed_causes(step, set())
                reasons[step] = f"{', '.join(sorted(causes))} failed" if causes else STOPPED
        return reasons

    def not_run_lines(self) -> list[str]:
        """One line per cause: the steps that did not run because of it."""
        return [
            f"{'step' if len(steps) == 1 else 'steps'} {', '.join(steps)} did not run: {why}"
            for why, steps in _by_reason(self.not_run()).items()
        ]

    def downstream_of(self, step: str) -> set[str]:
        """Every step that waits for `step`, directly or not."""
        found: set[str] = set()
        frontier = {step}
        while frontier:
            frontier = {s for s, ups in self.upstream.items() if ups & frontier} - found
            found |= frontier
        return found


def _by_reason(reasons: Mapping[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for step, why in reasons.items():
        grouped.setdefault(why, []).append(step)
    return grouped


def not_run_summary(steps: RunSteps) -> str:
    """The not-run steps and their causes in one tag value: `a, b: x failed; c: y failed`."""
    return "; ".join(
        f"{', '.join(names)}: {why}" for why, names in _by_reason(steps.not_run()).items()
    )


def held_back_dimensions(specs: Sequence[ObjectSpec], steps: RunSteps) -> list[AssetKey]:
    """The staging and dimension assets a failed extraction held back: those of each object
    whose extraction succeeded and none of whose later steps (its raw checks) failed, when the
    dbt step did not run because steps failed. Empty otherwise: dbt ran (or failed itself), the
    run was stopped, or no extraction succeeded."""
    why = steps.not_run().get(DBT_STEP)
    if why is None or why == STOPPED:
        return []
    keys: list[AssetKey] = []
    for spec in specs:
        raw = raw_step(spec)
        if raw in steps.succeeded and not steps.downstream_of(raw) & steps.failed:
            keys += [
                AssetKey(list(spec.staging_asset_key)),
                AssetKey(list(spec.dimension_asset_key)),
            ]
    return keys


def objects_of(specs: Sequence[ObjectSpec], keys: Sequence[AssetKey]) -> list[str]:
    """The API names of the objects whose dimensions are among `keys`."""
    wanted = set(keys)
    return sorted(s.api_name for s in specs if AssetKey(list(s.dimension_asset_key)) in wanted)
