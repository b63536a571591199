"""Pieces shared by the synthetic org's generators: Salesforce ids, times, name folding, draws.

Times are integers, microseconds since the Unix epoch (UTC), while generating (exact like the
datetimes they replace), written out with ``stamp_text`` exactly as ``format_sf_datetime``
writes them. ``Dice`` draws from a
``random.Random`` exactly as its ``choice``/``randrange``/``choices``/``random`` do (same values,
same generator state after), only faster: the org of a seed is the same either way.
"""

from __future__ import annotations

import bisect
import random
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "MS",
    "SECOND",
    "Dice",
    "ascii_slug",
    "date_text",
    "micros",
    "salesforce_id",
    "scaled",
    "stamp_text",
]

MS = 1000
SECOND = 1000 * MS
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ASCII_FOLD = {"\u0131": "i", "ø": "o", "ß": "ss", "æ": "ae", "đ": "d", "ł": "l"}
_DAY_TEXT: dict[int, str] = {}


def micros(moment: datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def scaled(us: int, factor: float) -> int:
    """``timedelta(microseconds=us) * factor`` in microseconds (rounded half to even, likewise)."""
    numerator, denominator = factor.as_integer_ratio()
    quotient, remainder = divmod(us * numerator, denominator)
    remainder *= 2
    if remainder > denominator or (remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def date_text(us: int) -> str:
    """``2026-03-01``: the UTC date of an instant."""
    day = us // DAY
    text = _DAY_TEXT.get(day)
    if text is None:
        text = _DAY_TEXT[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
    return text


_CLOCK_TEXT = [
    f"T{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)
]
_MILLI_TEXT = [f"{ms:03d}+0000" for ms in range(1000)]


def stamp_text(us: int) -> str:
    """``2026-03-01T08:00:00.000+0000``, as ``format_sf_datetime`` writes the instant."""
    day, rest = divmod(us, DAY)
    text = _DAY_TEXT.get(day)
    if text is None:
        text = _DAY_TEXT[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
    second, micro = divmod(rest, SECOND)
    return text + _CLOCK_TEXT[second] + _MILLI_TEXT[micro // MS]


_UPPER_FLAGS = str.maketrans(
    {c: ("1" if c.isupper() else "0") for c in _BASE62}  # a 15-character Id's case bits
)
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 15 characters plus the real case-checksum suffix."""
    body = ""
    value = number * 7919 + 104729  # spread small numbers so ids do not look sequential
    while value:
        value, digit = divmod(value, 62)
        body = _BASE62[digit] + body
    short = (prefix + "8d0" + body.rjust(12 - len(prefix), "0"))[:15]
    flags = short.translate(_UPPER_FLAGS)
    return (
        short
        + _CHECKSUM[int(flags[4::-1], 2)]
        + _CHECKSUM[int(flags[9:4:-1], 2)]
        + _CHECKSUM[int(flags[14:9:-1], 2)]
    )


def ascii_slug(text: str) -> str:
    """``Nguyễn`` -> ``nguyen``: lower-case ASCII letters and digits only."""
    folded = "".join(_ASCII_FOLD.get(ch, ch) for ch in text.lower())
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


class Dice:
    """``random.Random``'s draws, inlined: the same values and the same state as its methods."""

    __slots__ = ("_bits", "random", "rng")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.random = rng.random
        self._bits = rng.getrandbits

    def below(self, n: int) -> int:
        """``randrange(n)`` (``Random._randbelow_with_getrandbits``)."""
        k = n.bit_length()
        r = self._bits(k)
        while r >= n:
            r = self._bits(k)
        return r

    def choice(self, seq: Sequence[Any]) -> Any:
        k = len(seq)
        bits = k.bit_length()
        r = self._bits(bits)
        while r >= k:
            r = self._bits(bits)
        return seq[r]

    def between(self, low: int, high: int) -> int:
        """``randrange(low, high)``."""
        return low + self.below(high - low)

    def weighted(self, population: Sequence[Any], cumulative: Sequence[float]) -> Any:
        """``choices(population, cum_weights=cumulative)[0]`` (same as with the weights)."""
        total = cumulative[-1] + 0.0
        return population[bisect.bisect(cumulative, self.random() * total, 0, len(population) - 1)]

    def time(self, low: int, high: int) -> int:
        """A random instant in [low, high), whole milliseconds from ``low`` (``random_time``)."""
        return low + self.below(max((high - low) // MS, 1)) * MS

    def other(self, options: Sequence[Any], current: Any) -> Any:
        """A random option different from ``current``."""
        return self.choice([o for o in options if o != current])
