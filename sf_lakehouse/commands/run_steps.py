"""The steps a run did not run, and why; and the dimensions one failed extraction must not hold
back. Dagster skips a step when any step upstream of it fails, and the dbt step builds every
object's dimension: one object's failed extraction (an object the org lacks, a permission
removed) would leave every dimension unbuilt on every run. `sf-lakehouse run` then builds, in a
second run of the same job, the dimensions of the objects whose extraction succeeded."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult

from sf_lakehouse.config import Settings

DBT_STEP = "sf_lakehouse_dbt"
FOLLOW_UP_TAG = "sf_lakehouse/builds_for_run"


def _upstream(result: ExecuteInProcessResult, node: str) -> set[str]:
    structure = result.job_def.dependency_structure
    inputs = structure.input_to_upstream_outputs_for_node(node)
    return {output.node.name for outputs in inputs.values() for output in outputs}


def not_run_steps(result: ExecuteInProcessResult) -> dict[str, str]:
    """Step -> why it did not run: the failed steps it waited for, directly or through steps
    that did not run either. (Dagster logs its "not executing" lines but records no event for
    such a step.)"""
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    failed = {e.step_key for e in result.get_step_failure_events()}

    def roots(node: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for upstream in _upstream(result, node) - seen:
            seen.add(upstream)
            if upstream in failed:
                found.add(upstream)
            elif upstream not in started:
                found |= roots(upstream, seen)
        return found

    reasons: dict[str, str] = {}
    for node in sorted(n.name for n in result.job_def.nodes):
        if node not in started:
            causes = roots(node, set())
            reasons[node] = (
                f"{', '.join(sorted(causes))} failed" if causes else "the run was stopped first"
            )
    return reasons


def not_run_lines(result: ExecuteInProcessResult) -> list[str]:
    """One line per cause: the steps that did not run because of it."""
    by_reason: dict[str, list[str]] = {}
    for step, why in not_run_steps(result).items():
        by_reason.setdefault(why, []).append(step)
    return [
        f"{'step' if len(steps) == 1 else 'steps'} {', '.join(steps)} did not run: {why}"
        for why, steps in by_reason.items()
    ]


def dimensions_to_build(result: ExecuteInProcessResult, settings: Settings) -> list[AssetKey]:
    """The staging and dimension assets of the objects whose extraction succeeded in a run
    whose dbt step was skipped because another extraction failed (empty otherwise)."""
    if DBT_STEP not in not_run_steps(result):
        return []
    succeeded = {e.step_key for e in result.get_step_success_events() if e.step_key}
    keys: list[AssetKey] = []
    for spec in settings.objects:
        if "__".join(spec.raw_asset_key) in succeeded:
            keys += [
                AssetKey(list(spec.staging_asset_key)),
                AssetKey(list(spec.dimension_asset_key)),
            ]
    return keys


def build_held_back_dimensions(
    settings: Settings,
    instance: DagsterInstance,
    result: ExecuteInProcessResult,
    *,
    log_level: str,
    tags: Mapping[str, str],
    definitions: Definitions | None = None,
) -> ExecuteInProcessResult | None:
    """Run the job again for the dimensions a failed extraction held back (None: none), with
    the run's `definitions` when given (built once per process)."""
    from sf_lakehouse.definitions import build_definitions

    keys = dimensions_to_build(result, settings)
    if not keys:
        return None
    job = (definitions or build_definitions(settings)).resolve_job_def(result.job_def.name)
    return job.execute_in_process(
        instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
        asset_selection=keys,
        tags={**tags, FOLLOW_UP_TAG: result.run_id},
    )


def follow_up_lines(follow_up: ExecuteInProcessResult | None, settings: Settings) -> list[str]:
    """What the second run built, or why it failed (one line)."""
    if follow_up is None:
        return []
    built = sorted(
        spec.api_name
        for spec in settings.objects
        if follow_up.asset_materializations_for_node(DBT_STEP)
        and any(
            m.asset_key == AssetKey(list(spec.dimension_asset_key))
            for m in follow_up.asset_materializations_for_node(DBT_STEP)
        )
    )
    if follow_up.success:
        return [
            f"dimensions of {', '.join(built) or 'no object'} built in run {follow_up.run_id} "
            "(their extractions succeeded)"
        ]
    return [f"the build of the other dimensions (run {follow_up.run_id}) failed too"]
