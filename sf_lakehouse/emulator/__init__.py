"""A Salesforce API emulator serving a history's org, a synthetic org, and fault injection.

``SalesforceEmulator`` is a real HTTPS server on 127.0.0.1 that simple-salesforce talks to
unmodified; it holds the history in columns (an org of millions of versions loads from its JSON
Lines file in seconds) and injects faults from a plan (``faults``). ``generate_org`` /
``write_org`` / ``write_history`` produce a deterministic multi-day history for it.
"""

from .faults import FaultPlanError, parse_plan
from .history import HistoryError, load_history
from .org import Org
from .server import EmulatorCredentials, SalesforceEmulator
from .synthetic import generate_org, iter_org, write_history, write_org

__all__ = [
    "EmulatorCredentials",
    "FaultPlanError",
    "HistoryError",
    "Org",
    "SalesforceEmulator",
    "generate_org",
    "iter_org",
    "load_history",
    "parse_plan",
    "write_history",
    "write_org",
]
