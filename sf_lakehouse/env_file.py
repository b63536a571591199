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
        key = re.sub(r"^export\s+", "", key.strip()).strip()
        if separator and _NAME.fullmatch(key):
            values[key] = value.strip()
            continue
        # The line's text may be a secret (a password without its `KEY=`): only its number,
        # and its key when one can be read, are shown; never the value.
        where = f"{path}, line {number}" + (f" ({name})" if (name := line_key(stripped)) else "")
        if not separator:
            raise ConfigError(
                f"{where}: no '=' (expected KEY=VALUE; the line is not shown, it may hold a "
                "secret); fix or remove it (comments start with #)"
            )
        raise ConfigError(
            f"{where}: the text before '=' is not a variable name (letters, digits and _; the "
            "line is not shown, it may hold a secret); fix or remove it"
        )
    return values


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# `export KEY ...`, or a variable written as variables are (`SF_PASSWORD value`,
# `SF_PASSWORD: value`): an upper-case name with an underscore, then a space or a colon. A lone
# word is never shown: it may be the password itself.
_EXPORTED = re.compile(r"export\s+([A-Za-z_][A-Za-z0-9_]*)(?=[\s=:]|$)")
_VARIABLE = re.compile(r"([A-Z][A-Z0-9]*_[A-Z0-9_]*)(?=\s|:)")


def line_key(line: str) -> str | None:
    """The variable a bad line meant to set, when it can be read without its value."""
    match = _EXPORTED.match(line) or _VARIABLE.match(line)
    return match.group(1) if match else None


def apply_environment(values: Mapping[str, str]) -> None:
    os.environ.update(values)
