"""An overall deadline for one object's extraction (or one sensor probe): counted across
logins, retries, backoff sleeps, Bulk polls and slow bodies, so a stalled or trickling server
ends the run within the deadline with one line, whatever the per-request timeouts say."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sf_lakehouse.salesforce.errors import SalesforceApiError

# Never ask a socket for less than this: a zero timeout would mean "do not block" instead.
_MIN_WAIT = 0.01


class DeadlineExceeded(SalesforceApiError):
    """The deadline passed; nothing was appended and the watermark is unchanged."""


@dataclass
class Deadline:
    """`seconds` from its creation (monotonic clock) for `what` (e.g. `User extraction`)."""

    seconds: float
    what: str
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def exceeded(self, doing: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{self.what} passed its deadline of {self.seconds:g} s while {doing}; nothing was "
            "appended and the watermark is unchanged (the next run catches up); raise "
            "extraction.deadline_seconds in the object's spec if the org is just slow"
        )

    def check(self, doing: str) -> None:
        if self.remaining() <= 0:
            raise self.exceeded(doing)

    def wait_at_most(self, limit: float, doing: str) -> float:
        """`limit`, cut to what is left (raises when nothing is)."""
        self.check(doing)
        return max(min(limit, self.remaining()), _MIN_WAIT)

    def sleep(self, seconds: float, doing: str = "waiting to retry") -> None:
        """Sleep, but never past the deadline: when the wait would end after it, fail now."""
        if seconds >= self.remaining():
            raise self.exceeded(doing)
        time.sleep(seconds)


def extraction_deadline(spec: Any) -> Deadline:
    """One extraction's deadline, from its object spec (`extraction.deadline_seconds`)."""
    return Deadline(spec.extraction.deadline_seconds, f"{spec.api_name} extraction")


def probe_deadline(spec: Any) -> Deadline:
    """One change-sensor question's deadline (`extraction.probe_deadline_seconds`)."""
    return Deadline(spec.extraction.probe_deadline_seconds, f"{spec.api_name} change probe")
