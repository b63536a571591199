"""Pieces shared by the synthetic org's generators: Salesforce ids, times, name folding."""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta

__all__ = ["MS", "ascii_slug", "other", "random_time", "salesforce_id"]

MS = timedelta(milliseconds=1)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ASCII_FOLD = {"\u0131": "i", "ø": "o", "ß": "ss", "æ": "ae", "đ": "d", "ł": "l"}


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 15 characters plus the real case-checksum suffix."""
    body = ""
    value = number * 7919 + 104729  # spread small numbers so ids do not look sequential
    while value:
        value, digit = divmod(value, 62)
        body = _BASE62[digit] + body
    short = (prefix + "8d0" + body.rjust(12 - len(prefix), "0"))[:15]
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(short[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return short + suffix


def ascii_slug(text: str) -> str:
    """``Nguyễn`` -> ``nguyen``: lower-case ASCII letters and digits only."""
    folded = "".join(_ASCII_FOLD.get(ch, ch) for ch in text.lower())
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def other(rng: random.Random, options: list[str] | tuple[str, ...], current: str | None) -> str:
    """A random option different from ``current``."""
    return rng.choice([o for o in options if o != current])


def random_time(rng: random.Random, low: datetime, high: datetime) -> datetime:
    """A random instant in [low, high), whole milliseconds."""
    span_ms = max(int((high - low) / MS), 1)
    return low + rng.randrange(span_ms) * MS
