"""Resources whose definition a run's launch configuration may not change.

Dagster lets whoever launches a run set any field of a Pythonic resource in the run config
(`resources: {salesforce: {config: {login_url: ...}}}`): enough to send the Salesforce
credentials of a Secrets Manager environment to any server, to point the lakehouse at another
catalog, or to run another `dbt` executable. `LaunchLocked` resources compare, when a run
initialises them (before any login, catalog call or subprocess), each field with the value the
code location defined, and refuse the run when one differs and is not in `launch_configurable`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from dagster import DagsterInvariantViolationError, InitResourceContext


class LaunchConfigRefused(ValueError):
    """Run config changed a field the code location fixes; the message names the fields only."""


def _resolved(value: Any) -> Any:
    # An EnvVar in a definition is `{"env": NAME}` in its config; the run sees the variable's value.
    if isinstance(value, Mapping) and set(value) == {"env"}:
        return os.environ.get(str(value["env"]))
    return value


def definition_config(resource: Any, context: InitResourceContext) -> Mapping[str, Any] | None:
    """The values the code location gave `resource` (its config schema's defaults), or None
    outside a run (a resource built by hand, a sensor's resources) and for a resource nested in
    another (the IO manager's lakehouse: run config cannot reach it)."""
    try:
        definition = context.resource_def
    except DagsterInvariantViolationError:  # a context built by hand, bound to no definition
        return None
    if definition is None or definition.config_schema is None:
        return None
    if getattr(definition, "configurable_resource_cls", None) is not type(resource):
        return None
    field = definition.config_schema.as_field()
    if not field.default_provided or not isinstance(field.default_value, Mapping):
        return None
    return field.default_value


def changed_at_launch(
    resource: Any, context: InitResourceContext, configurable: frozenset[str]
) -> list[str]:
    """Fields of `resource` (the instance a run built from its run config) whose value differs
    from the definition's, except those in `configurable`."""
    defined = definition_config(resource, context)
    if defined is None:
        return []
    changed = []
    for name, info in type(resource).model_fields.items():
        if name in configurable:
            continue
        expected = _resolved(defined[name]) if name in defined else info.get_default()
        if getattr(resource, name) != expected:
            changed.append(name)
    return changed


class LaunchLocked:
    """Mixin for a `ConfigurableResource`: run config may change only `launch_configurable`."""

    launch_configurable: ClassVar[frozenset[str]] = frozenset()
    launch_label: ClassVar[str] = "resource"

    def launch_refusal_reason(self) -> str:
        """Why these fields are fixed (appended to the refusal)."""
        return "they are fixed by the environment's configuration"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        changed = changed_at_launch(self, context, self.launch_configurable)
        if changed:
            allowed = ", ".join(sorted(self.launch_configurable)) or "nothing"
            raise LaunchConfigRefused(
                f"run config sets {', '.join(changed)} of the {self.launch_label} resource: "
                f"refused, {self.launch_refusal_reason()}; launch without them (run config may "
                f"change only {allowed} there) or change the environment's configuration"
            )
        super().setup_for_execution(context)  # type: ignore[misc]
