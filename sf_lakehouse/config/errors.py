"""Configuration errors as one line that names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it and says how to fix it."""


class StrictModel(BaseModel):
    """Configuration sections: unknown keys are errors (a misspelt key never passes in silence)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _location(parts: tuple[Any, ...], where: str) -> str:
    names = [str(p) for p in parts if not str(p).startswith("function-")]
    return ".".join([where, *names]) if where else ".".join(names)


def describe_validation_error(
    error: ValidationError, source: Path | str, where: str, model: type[BaseModel]
) -> str:
    """The first problem of a pydantic error as `file: key: problem; fix`."""
    first = error.errors()[0]
    location = _location(tuple(first["loc"]), where)
    if first["type"] == "extra_forbidden":
        parent = tuple(first["loc"][:-1])
        known = _known_keys(model, parent)
        hint = f"; known keys here: {', '.join(known)}" if known else ""
        problem = f"unknown key {first['loc'][-1]!r} (misspelt?){hint}"
    elif first["type"] == "missing":
        problem = "missing; add it"
    else:
        problem = first["msg"].removeprefix("Value error, ")
        if "input" in first and first["type"] not in ("model_type", "dict_type"):
            problem = f"{first['input']!r} is not valid: {problem}"
    more = len(error.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {location}: {problem}{tail}"


def _known_keys(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        current = _model_in(annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
