"""The guard that fails a test reaching beyond loopback (sf_lakehouse_tests/network_guard)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sf_lakehouse_tests.network_guard import NetworkGuardError, is_local

DOCUMENTATION_ADDRESS = ("192.0.2.1", 443)  # TEST-NET-1: never routed


def forget_attempts(log: Path, size: int) -> None:
    """These tests make their attempts on purpose: drop them so the guard does not fail us."""
    with log.open("r+", encoding="utf-8") as handle:
        handle.truncate(size)


def test_loopback_unix_and_local_names_are_allowed_the_rest_is_not() -> None:
    assert is_local(("127.0.0.1", 80)) and is_local(("::1", 80, 0, 0))
    assert is_local(("localhost", 80)) and is_local("/tmp/a.sock")
    assert not is_local(DOCUMENTATION_ADDRESS) and not is_local(("example.com", 443))
    assert not is_local(("2001:db8::1", 443, 0, 0))


def test_a_connection_beyond_loopback_is_refused_and_logged(network_log: Path) -> None:
    size = network_log.stat().st_size
    with pytest.raises(NetworkGuardError, match=r"192\.0\.2\.1"):
        socket.create_connection(DOCUMENTATION_ADDRESS, timeout=1)
    assert "192.0.2.1" in network_log.read_text()[size:]
    forget_attempts(network_log, size)


def test_a_loopback_connection_goes_through() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_a_python_subprocess_is_guarded_too(network_log: Path) -> None:
    size = network_log.stat().st_size
    code = f"import socket; socket.create_connection({DOCUMENTATION_ADDRESS!r}, timeout=1)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert result.returncode != 0 and "NetworkGuardError" in result.stderr
    assert "192.0.2.1" in network_log.read_text()[size:]
    forget_attempts(network_log, size)
