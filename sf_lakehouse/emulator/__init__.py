"""A Salesforce API emulator serving a history's org, a synthetic org, and fault injection.

``SalesforceEmulator`` is a real HTTPS server on 127.0.0.1 that simple-salesforce talks to
unmodified; it holds the history in columns (an org of millions of versions loads from its JSON
Lines file in seconds) and injects faults from a plan (``faults``). ``generate_org`` /
``write_org`` / ``write_history`` produce a deterministic multi-day history for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Name -> submodule, imported on first use: `sf-lakehouse run` builds a parser that names the
# emulator's commands, and must not pay for the server and the synthetic org (about 0.9 s).
_EXPORTS = {
    "EmulatorCredentials": "server",
    "FaultPlanError": "faults",
    "HistoryError": "history",
    "Org": "org",
    "SalesforceEmulator": "server",
    "generate_org": "synthetic",
    "iter_org": "synthetic",
    "load_history": "history",
    "parse_plan": "faults",
    "write_history": "synthetic",
    "write_org": "synthetic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
