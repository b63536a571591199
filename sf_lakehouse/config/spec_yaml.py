"""An object spec as the `config/objects/<name>.yml` file `sf-lakehouse add-object` writes:
commented like the hand-written ones, and loading it gives the same spec back."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

import yaml

from sf_lakehouse.config.objects import ObjectSpec


def _yaml_scalar(value: str) -> str:
    """A plain YAML scalar when it reads back as the same string, else a quoted one."""
    try:
        plain_ok = yaml.safe_load(value) == value and value.strip() == value
    except yaml.YAMLError:
        plain_ok = False
    return value if plain_ok else json.dumps(value)


def _yaml_list(key: str, values: Sequence[str]) -> str:
    items = ", ".join(_yaml_scalar(v) for v in values)
    lines = textwrap.wrap(
        f"{key}: [{items}]",
        width=100,
        subsequent_indent=" " * (len(key) + 3),
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(lines)


def render_object_spec_yaml(spec: ObjectSpec) -> str:
    """The `config/objects/<name>.yml` file of a spec (for add-object); loading it gives the same
    spec back."""
    fresh = spec.freshness
    return (
        f"# Salesforce {spec.api_name}: what to extract, and what its SCD2 dimension tracks.\n"
        f"api_name: {_yaml_scalar(spec.api_name)}\n"
        f"id_prefix: {json.dumps(spec.id_prefix)}\n"
        "# Always extracted; every custom (__c) field the org's describe() reports is added.\n"
        f"{_yaml_list('fields', spec.fields)}\n"
        f"cursor: {spec.cursor}\n"
        "# Re-read this far behind the watermark: same-second ties and commit lag lose nothing.\n"
        f"lookback_seconds: {spec.lookback_seconds}\n"
        "# A change of a tracked field starts a new version of the dimension; carried fields come\n"
        "# along from the latest observation inside each version.\n"
        f"{_yaml_list('track', spec.track)}\n"
        f"{_yaml_list('carry', spec.carry)}\n"
        "# true: read with queryAll; a deletion and an undelete start versions.\n"
        f"deletions: {'true' if spec.deletions else 'false'}\n"
        "freshness:\n"
        f"  raw: {{warn_after_minutes: {fresh.raw.warn_after_minutes}, "
        f"fail_after_minutes: {fresh.raw.fail_after_minutes}}}\n"
        f"  dimension: {{warn_after_minutes: {fresh.dimension.warn_after_minutes}, "
        f"fail_after_minutes: {fresh.dimension.fail_after_minutes}}}\n"
        "extraction:\n"
        f"  page_size: {spec.extraction.page_size}\n"
    )
