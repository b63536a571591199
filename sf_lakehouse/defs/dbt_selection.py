"""Which dbt models a run can leave out: a dimension with no raw row since its last build, built
by today's model code, would come out of `dbt build` exactly as it is (the DuckDB plugin would
read no raw row and store nothing), so the run does not start dbt for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.dbt_models import code_version
from sf_lakehouse.lakehouse.increments import BuildPlan, plan_build
from sf_lakehouse.lakehouse.resource import LakehouseResource


def _model_ids_by_name(manifest: Mapping[str, Any]) -> dict[str, str]:
    return {
        node["name"]: unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }


def models_in_build_order(manifest: Mapping[str, Any]) -> list[str]:
    """Every model's name, each after the models it selects from (Dagster wants a multi-asset's
    outputs in that order)."""
    nodes = manifest["nodes"]
    ordered: list[str] = []
    placed: set[str] = set()

    def place(unique_id: str) -> None:
        if unique_id in placed:
            return
        placed.add(unique_id)
        for parent in nodes[unique_id]["depends_on"]["nodes"]:
            if nodes.get(parent, {}).get("resource_type") == "model":
                place(parent)
        ordered.append(nodes[unique_id]["name"])

    for unique_id in sorted(_model_ids_by_name(manifest).values()):
        place(unique_id)
    return ordered


def build_closure(manifest: Mapping[str, Any], model: str) -> frozenset[str] | None:
    """`model` and every model upstream of it (the models `dbt build --select +model` runs), by
    name; None when one of them also feeds a model outside that set, or `model` is unknown:
    leaving them out would leave that model reading a relation this run did not refresh."""
    nodes = manifest["nodes"]
    start = _model_ids_by_name(manifest).get(model)
    if start is None:
        return None
    closure: set[str] = set()
    pending = [start]
    while pending:
        unique_id = pending.pop()
        if unique_id in closure:
            continue
        closure.add(unique_id)
        pending += [
            parent
            for parent in nodes[unique_id]["depends_on"]["nodes"]
            if nodes.get(parent, {}).get("resource_type") == "model"
        ]
    for unique_id in closure:
        for child in manifest["child_map"].get(unique_id, ()):
            kind = nodes.get(child, {}).get("resource_type")
            if kind == "model" and child not in closure:
                return None
    return frozenset(nodes[unique_id]["name"] for unique_id in closure)


def models_to_leave_out(
    manifest: Mapping[str, Any], unchanged_dimensions: Iterable[str]
) -> dict[str, str]:
    """Model name -> the unchanged dimension whose build it belongs to, for every dimension
    whose build closure is its own (see build_closure)."""
    left_out: dict[str, str] = {}
    for dimension in unchanged_dimensions:
        for model in build_closure(manifest, dimension) or ():
            left_out[model] = dimension
    return left_out


def unchanged_dimensions(
    lakehouse: LakehouseResource, specs: Sequence[ObjectSpec]
) -> dict[str, BuildPlan]:
    """Dimension model -> its build plan, for the dimensions a build would leave as they are."""
    unchanged = {}
    for spec in specs:
        raw = lakehouse.load_table(spec.raw_asset_key)
        dimension = lakehouse.load_table(spec.dimension_asset_key)
        if raw is None or dimension is None:
            continue
        plan = plan_build(dimension, raw, code_version(spec))
        if plan.changes_nothing:
            unchanged[spec.dimension_model] = plan
    return unchanged


def exclude_args(models: Iterable[str]) -> list[str]:
    """dbt arguments leaving `models` out of a build; their tests go with them. One value,
    space-separated: dagster-dbt reads `--exclude` with a single argument."""
    names = sorted(models)
    return ["--exclude", " ".join(names)] if names else []
