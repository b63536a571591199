"""`KEY=VALUE` files (`sf-lakehouse emulator --env-file` writes one; `run --env-file` reads it).
No Dagster here: a bad file is reported before the slow imports."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from sf_lakehouse.config import ConfigError


def load_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (as `sf-lakehouse emulator --env-file` writes them)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"--env-file {path}: no such file; `sf-lakehouse emulator --env-file {path}` writes one"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--env-file {path}: cannot be read ({error})") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, separator, value = stripped.partition("=")
        key = key.strip().removeprefix("export ").strip()
        # The line's text may be a secret (a password without its `KEY=`): only its number,
        # and its key when it has a valid one, are shown.
        if not separator:
            raise ConfigError(
                f"{path}, line {number}: no '=' (expected KEY=VALUE; the line is not shown, it "
                "may hold a secret); fix or remove it (comments start with #)"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(
                f"{path}, line {number}: the text before '=' is not a variable name (letters, "
                "digits and _; the line is not shown, it may hold a secret); fix or remove it"
            )
        values[key] = value.strip()
    return values


def apply_environment(values: Mapping[str, str]) -> None:
    os.environ.update(values)
