"""A Salesforce API emulator serving User records from a history file, and a synthetic org.

``SalesforceEmulator`` is a real HTTPS server on 127.0.0.1 that simple-salesforce talks to
unmodified; ``generate_org`` / ``write_history`` produce a deterministic multi-day history for it.
"""

from .history import HistoryError, load_history
from .server import EmulatorCredentials, SalesforceEmulator
from .synthetic import generate_org, write_history

__all__ = [
    "EmulatorCredentials",
    "HistoryError",
    "SalesforceEmulator",
    "generate_org",
    "load_history",
    "write_history",
]
