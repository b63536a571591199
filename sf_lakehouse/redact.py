"""What may be shown of a value in a log line, a reason or a repr (no Dagster: Glue-safe).

- `shorten()`: a value from the org (a rejected value, a record's field) as a repr cut to a few
  dozen characters: a rejected value can be a whole description, an email list or a token.
- `Secret`: text whose repr is `'***'`, so a secret kept in a dataclass stays hidden in its
  repr and in the repr of `dataclasses.asdict()`; `str()` and the text itself stay the value.
"""

from __future__ import annotations

from typing import Any

SHOWN_CHARACTERS = 40
MASK = "'***'"


def shorten(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """`repr(value)`, or the repr of its first `limit` characters and how long it was."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > limit + 2:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


class Secret(str):
    """A secret string: the value everywhere but in `repr()`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return MASK


def secret_or_none(value: str | None) -> Secret | None:
    return None if value is None else Secret(value)
