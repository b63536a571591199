"""Fault injection: a plan of faults, validated, and the seeded state that decides when they fire.

A plan (``PUT /_emulator/faults``, ``--faults FILE``)::

    {"seed": 7, "faults": [
      {"kind": "http_503", "body": "html", "probability": 0.05},
      {"kind": "session_expired", "every": 7},
      {"kind": "commit_lag", "seconds": 30}]}

Triggers: ``probability`` (a draw per eligible event) or ``every`` (the n-th, 2n-th, ...
eligible event of that fault), neither meaning every eligible event; ``path`` narrows a fault to
requests whose path starts with it. Events, per kind:

- request faults (``session_expired``, ``rate_limited``, ``http_500``/``http_502``/``http_503``,
  ``reset``, ``stall``, ``trickle``: the answer's body sent one byte every ``seconds``): each
  API request under ``/services/data``; the login endpoints
  (``/services/Soap/...``, ``/services/oauth2/...``) only for a fault whose ``path`` names them
  (``session_expired`` never: there is no session yet);
- ``invalid_locator``: each next page of a REST query (``query/<locator>``);
- ``bulk_failed`` / ``bulk_stuck``: each Bulk 2.0 query job created;
- ``malformed``: each record of a response that selects ``field`` (REST pages, Bulk pages,
  one record);
- ``future_stamp``: each record of a response that selects ``SystemModstamp``: the record is
  served stamped ``seconds`` after the org's clock (the response's ``Date``), its
  ``SystemModstamp`` and ``LastModifiedDate`` both (clock skew, an imported history);
- ``commit_lag``: always on (every query sees the org ``seconds`` in the past).

One ``random.Random(seed)`` is consumed in event order, faults in plan order (every eligible
fault draws, even when an earlier one fired); the first fault that fires is the one injected.
The same seed and the same sequence of requests give the same faults. Control endpoints
(``/_emulator/...``) are never faulted.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .transport import Response, error

__all__ = [
    "KINDS",
    "LOGIN_PREFIXES",
    "MALFORMED",
    "Fault",
    "FaultPlanError",
    "Faults",
    "Plan",
    "error_response",
    "parse_plan",
]

REQUEST_KINDS = ("session_expired", "rate_limited", "http_500", "http_502", "http_503")
REQUEST_KINDS += ("reset", "stall", "trickle")
KINDS = (*REQUEST_KINDS, "invalid_locator", "bulk_failed", "bulk_stuck", "commit_lag", "malformed")
KINDS += ("future_stamp",)
# The fields a future_stamp fault moves (LastModifiedDate never lies after SystemModstamp).
STAMP_FIELDS = ("SystemModstamp", "LastModifiedDate")
LOGIN_PREFIXES = ("/services/Soap", "/services/oauth2")
_TRIGGER = ("probability", "every", "path")
_FIELDS: dict[str, tuple[str, ...]] = {
    **{kind: _TRIGGER for kind in KINDS},
    "http_500": (*_TRIGGER, "body"),
    "http_502": (*_TRIGGER, "body"),
    "http_503": (*_TRIGGER, "body"),
    "stall": (*_TRIGGER, "seconds", "then"),
    "trickle": (*_TRIGGER, "seconds"),
    "commit_lag": ("seconds",),
    "malformed": (*_TRIGGER, "field"),
    "future_stamp": (*_TRIGGER, "seconds"),
}
_REQUIRED = {
    "stall": ("seconds",),
    "trickle": ("seconds",),
    "commit_lag": ("seconds",),
    "malformed": ("field",),
    "future_stamp": ("seconds",),
}


# The hook's value for a ``malformed`` position: the renderer puts a value of the wrong type.
MALFORMED = object()


class FaultPlanError(ValueError):
    """The plan cannot be used; the message names the fault and the field."""


@dataclass(frozen=True)
class Fault:
    """One entry of a plan."""

    kind: str
    probability: float | None = None
    every: int | None = None
    path: str | None = None
    body: str = "json"
    seconds: float = 0.0
    then: str = "answer"
    field: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in _FIELDS[self.kind]:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.kind in ("http_500", "http_502", "http_503"):
            out["body"] = self.body
        return out

    def selects(self, path: str) -> bool:
        """Whether a request for ``path`` is under this fault's ``path`` (login: explicitly)."""
        login = path.startswith(LOGIN_PREFIXES)
        if self.path is None:
            return not login
        if login and not self.path.startswith(LOGIN_PREFIXES):
            return False
        return path.startswith(self.path)


@dataclass(frozen=True)
class Plan:
    seed: int
    faults: tuple[Fault, ...]

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "faults": [f.to_json() for f in self.faults]}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_field(where: str, kind: str, name: str, value: Any) -> Any:
    bad, lag = None, kind == "commit_lag"
    if name == "probability" and not (_number(value) and 0 <= value <= 1):
        bad = "a number from 0 to 1"
    elif (name == "every" and not (isinstance(value, int) and not isinstance(value, bool))) or (
        name == "every" and value < 1
    ):
        bad = "a whole number of at least 1"
    elif name == "path" and not (isinstance(value, str) and value.startswith("/")):
        bad = 'a URL path prefix such as "/services/data/v59.0/query"'
    elif name == "body" and value not in ("json", "html"):
        bad = '"json" (a Salesforce error array) or "html" (a proxy\'s error page)'
    elif name == "then" and value not in ("answer", "close"):
        bad = '"answer" or "close"'
    elif name == "seconds" and not (
        _number(value) and value >= (0 if kind == "commit_lag" else 0.001)
    ):
        bad = "a number of seconds" + (" (0 or more)" if lag else " above 0")
    elif name == "field" and not (isinstance(value, str) and value):
        bad = 'a field API name such as "SystemModstamp"'
    if bad is not None:
        raise FaultPlanError(f"{where}: '{name}' must be {bad}, got {value!r}.")
    return float(value) if name in ("probability", "seconds") else value


def parse_plan(payload: Any) -> Plan:
    """Validate a plan; ``FaultPlanError`` names the unknown kind or the bad field."""
    example = '{"seed": 7, "faults": [{"kind": "http_503", "probability": 0.05}]}'
    if not isinstance(payload, dict):
        raise FaultPlanError(f"A fault plan is a JSON object like {example}.")
    unknown = sorted(set(payload) - {"seed", "faults"})
    if unknown:
        raise FaultPlanError(f"Unknown field '{unknown[0]}' in the plan; use 'seed' and 'faults'.")
    seed = payload.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FaultPlanError(f"'seed' must be a whole number, got {seed!r}.")
    entries = payload.get("faults", [])
    if not isinstance(entries, list):
        raise FaultPlanError(f"'faults' must be a list of faults, as in {example}.")
    faults = []
    for index, entry in enumerate(entries, start=1):
        where = f"fault {index}"
        if not isinstance(entry, dict):
            raise FaultPlanError(f"{where}: a fault is an object with a 'kind', as in {example}.")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise FaultPlanError(
                f"{where}: unknown kind {kind!r}; the kinds are {', '.join(KINDS)}."
            )
        where = f"fault {index} ({kind})"
        allowed = ("kind", *_FIELDS[kind])
        for name in entry:
            if name not in allowed:
                raise FaultPlanError(
                    f"{where}: unknown field '{name}'; a {kind} fault takes "
                    f"{', '.join(allowed[1:])}."
                )
        for name in _REQUIRED.get(kind, ()):
            if name not in entry:
                raise FaultPlanError(f"{where}: '{name}' is required.")
        if "probability" in entry and "every" in entry:
            raise FaultPlanError(f"{where}: give 'probability' or 'every', not both.")
        values = {n: _check_field(where, kind, n, v) for n, v in entry.items() if n != "kind"}
        faults.append(Fault(kind=kind, **values))
    return Plan(seed, tuple(faults))


class Faults:
    """The active plan: its random generator, event counters and counts of injected faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: Plan | None = None
        self._rng = random.Random(0)
        self._seen: list[int] = []
        self._injected: Counter[str] = Counter()

    def set(self, plan: Plan) -> None:
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)
            self._seen = [0] * len(plan.faults)
            self._injected = Counter({fault.kind: 0 for fault in plan.faults})

    def clear(self) -> dict[str, Any]:
        """Switch faults off; return the plan that was active and its counts."""
        with self._lock:
            report = self._report()
            self._plan, self._seen, self._injected = None, [], Counter()
        return report

    def report(self) -> dict[str, Any]:
        with self._lock:
            return self._report()

    def _report(self) -> dict[str, Any]:
        plan = self._plan.to_json() if self._plan else {"seed": None, "faults": []}
        return {**plan, "injected": dict(self._injected)}

    @property
    def active(self) -> bool:
        return self._plan is not None

    def _draw(self, index: int, fault: Fault) -> bool:
        self._seen[index] += 1
        if fault.every is not None:
            return self._seen[index] % fault.every == 0
        if fault.probability is not None:
            return self._rng.random() < fault.probability
        return True

    def fire(self, kinds: tuple[str, ...], path: str) -> Fault | None:
        """Draw for each fault of ``kinds`` that selects ``path``; the first that fires."""
        with self._lock:
            if self._plan is None:
                return None
            chosen = None
            for index, fault in enumerate(self._plan.faults):
                if fault.kind in kinds and fault.selects(path) and self._draw(index, fault):
                    chosen = chosen or fault
            if chosen is not None:
                self._injected[chosen.kind] += 1
            return chosen

    def request_fault(self, path: str, data_api: bool) -> Fault | None:
        """The request-level fault for a request, if one fires."""
        kinds = REQUEST_KINDS if data_api else REQUEST_KINDS[1:]
        return self.fire(kinds, path)

    def commit_lag(self) -> float:
        """Seconds every version waits after its SystemModstamp before it is visible."""
        with self._lock:
            if self._plan is None:
                return 0.0
            return max((f.seconds for f in self._plan.faults if f.kind == "commit_lag"), default=0)

    def count_lag(self) -> None:
        """One query answered under commit lag."""
        with self._lock:
            if self._plan is not None:
                self._injected["commit_lag"] += 1

    def malform(
        self, path: str, now: datetime | None = None
    ) -> Callable[[str, str, int], dict[int, Any]] | None:
        """The hook naming which records of a page get another value (position -> value), or
        None: ``malformed`` faults give a value of the wrong type, ``future_stamp`` faults a
        stamp ``seconds`` after ``now`` (the org's clock of this response)."""
        with self._lock:
            kinds = {f.kind for f in self._plan.faults} if self._plan is not None else set()
            if not kinds & {"malformed", "future_stamp"}:
                return None
        future: dict[int, datetime] | None = None

        def stamped(count: int) -> dict[int, datetime]:
            # One draw per record of the page, shared by both stamp fields.
            nonlocal future
            if future is None:
                future = {}
                with self._lock:
                    for index, fault in enumerate(self._plan.faults if self._plan else ()):
                        if fault.kind != "future_stamp" or not fault.selects(path):
                            continue
                        moment = (now or datetime.now(UTC)) + timedelta(seconds=fault.seconds)
                        hits = [i for i in range(count) if self._draw(index, fault)]
                        self._injected["future_stamp"] += len(set(hits) - set(future))
                        future.update({i: moment for i in hits if i not in future})
            return future

        def positions(field: str, ftype: str, count: int) -> dict[int, Any]:
            chosen: dict[int, Any] = {}
            if field in STAMP_FIELDS and "future_stamp" in kinds:
                chosen.update(stamped(count))
            with self._lock:
                if self._plan is None:
                    return chosen
                for index, fault in enumerate(self._plan.faults):
                    if fault.kind != "malformed" or not fault.selects(path):
                        continue
                    if (fault.field or "").casefold() != field.casefold():
                        continue
                    hits = [i for i in range(count) if self._draw(index, fault)]
                    self._injected["malformed"] += len(hits)
                    chosen.update(dict.fromkeys(hits, MALFORMED))
            return chosen

        return positions


_STATUS = {"http_500": 500, "http_502": 502, "http_503": 503}
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_JSON_ERRORS = {
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if "
        "you contact support: 1977401337-12345 (-1234567890)",
    ),
    502: ("SERVER_UNAVAILABLE", "The server could not reach the org (bad gateway). Try again."),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again later."),
}


def error_response(fault: Fault) -> Response | None:
    """The answer a fault gives instead of the real one (None: the real one, altered later)."""
    if fault.kind == "session_expired":
        return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
    if fault.kind == "rate_limited":
        return error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    status = _STATUS.get(fault.kind)
    if status is None:
        return None
    if fault.body == "json":
        code, message = _JSON_ERRORS[status]
        return error(status, code, message)
    reason = _REASONS[status]
    page = (
        f"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
        f"<body><h1>{reason}</h1><p>The server is temporarily unable to service your request. "
        "Please try again later.</p><hr><address>proxy</address></body></html>\n"
    )
    return Response(status, page.encode("utf-8"), "text/html; charset=UTF-8")
