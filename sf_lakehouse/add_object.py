"""`sf-lakehouse add-object`: one more Salesforce object, by configuration only.

Writes the object's spec (`config/objects/<object>.yml`) and its thin dbt models, then refreshes
the dbt manifest that Dagster loads; the next `sf-lakehouse run` or `dagster dev` includes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from sf_lakehouse.config import REPO_ROOT, ConfigError, ObjectSpec
from sf_lakehouse.config.environment import config_path_from_environment
from sf_lakehouse.config.errors import describe_validation_error
from sf_lakehouse.config.objects import (
    OBJECTS_DIR_NAME,
    STANDARD_ID_PREFIXES,
    load_object_specs,
    snake_case,
)


def new_object_spec(
    api_name: str,
    *,
    track: Sequence[str],
    carry: Sequence[str] = (),
    deletions: bool = False,
    id_prefix: str | None = None,
    fields: Sequence[str] = (),
) -> ObjectSpec:
    prefix = id_prefix or STANDARD_ID_PREFIXES.get(api_name)
    if prefix is None:
        raise ConfigError(
            f"add-object {api_name}: its id prefix is not known here; pass --id-prefix (the first "
            "three characters of its record ids, e.g. a01)"
        )
    try:
        return ObjectSpec(
            api_name=api_name,
            id_prefix=prefix,
            track=tuple(track),
            carry=tuple(carry),
            deletions=deletions,
            fields=tuple(fields),
        )
    except ValidationError as error:
        raise ConfigError(
            describe_validation_error(error, "add-object", api_name, ObjectSpec)
        ) from None


def add_object(
    api_name: str,
    *,
    track: Sequence[str],
    carry: Sequence[str] = (),
    deletions: bool = False,
    id_prefix: str | None = None,
    fields: Sequence[str] = (),
    objects_dir: Path | None = None,
    repo_root: Path = REPO_ROOT,
    refresh_manifest: bool = True,
) -> list[str]:
    """Write the spec and model files; returns one line per thing done, for the user."""
    from sf_lakehouse.config.spec_yaml import render_object_spec_yaml
    from sf_lakehouse.dbt_models import write_model_files

    spec = new_object_spec(
        api_name,
        track=track,
        carry=carry,
        deletions=deletions,
        id_prefix=id_prefix,
        fields=fields,
    )
    directory = objects_dir or config_path_from_environment().parent / OBJECTS_DIR_NAME
    existing = {s.name: s for s in load_object_specs(directory)} if directory.is_dir() else {}
    if spec.name in existing:
        raise ConfigError(
            f"{existing[spec.name].api_name} is already configured in "
            f"{directory / (spec.name + '.yml')}; edit that file instead"
        )
    directory.mkdir(parents=True, exist_ok=True)
    spec_path = directory / f"{snake_case(api_name)}.yml"
    spec_path.write_text(render_object_spec_yaml(spec), encoding="utf-8")
    lines = [f"wrote {_shown(spec_path, repo_root)} (object spec)"]
    lines += [f"wrote {_shown(path, repo_root)}" for path in write_model_files(spec, repo_root)]
    if refresh_manifest:
        from sf_lakehouse.defs.dbt import parse_dbt_project

        parse_dbt_project()
        lines.append("refreshed dbt_project/target/manifest.json (dbt parse)")
    lines.append(
        f"next: `sf-lakehouse run` extracts {spec.api_name} into "
        f"{'/'.join(spec.raw_asset_key)} and builds {spec.dimension_model}"
    )
    return lines


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
