"""The tests' network guard: no test may open a connection outside this machine's loopback.

`install(log)` wraps `socket.socket.connect` / `connect_ex`: an IPv4/IPv6 connection to anything
but a loopback address (127.0.0.0/8, ::1) or the name `localhost` raises `NetworkGuardError`
and is written to `log` (one line each), so the test fails even when the code under test catches
the error and retries. Unix sockets are always allowed. `conftest.py` installs it in the pytest
process and, through `sitecustomize.py` in this folder (on `PYTHONPATH`, switched on by
`SF_LAKEHOUSE_TEST_NETWORK_LOG`), in every Python subprocess the tests start (dbt, dagster dev,
`sf-lakehouse` commands); non-Python subprocesses (Chromium) are not covered.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

LOG_VARIABLE = "SF_LAKEHOUSE_TEST_NETWORK_LOG"
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class NetworkGuardError(ConnectionRefusedError):
    """A test tried to reach beyond loopback."""


def is_local(address: object) -> bool:
    """True for a loopback (host, port...) address, a local name, or a non-IP address."""
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and other families
    host = str(address[0]).split("%")[0].lower()
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name would be resolved and reached


def install(log: Path) -> None:
    """Wrap the socket methods once per process; violations are appended to `log`."""
    if getattr(socket.socket, "_sf_lakehouse_guarded", False):
        return
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address):
            line = f"pid {os.getpid()} connect to {address!r}\n"
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(line)
            raise NetworkGuardError(f"the tests' network guard refused a connection to {address!r}")

    def guarded_connect(sock: socket.socket, address: object) -> None:
        refuse(sock, address)
        return connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: object) -> int:
        refuse(sock, address)
        return connect_ex(sock, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.socket._sf_lakehouse_guarded = True  # type: ignore[attr-defined]


def install_from_environment() -> None:
    """For sitecustomize: guard this process when the tests asked for it."""
    log = os.environ.get(LOG_VARIABLE)
    if log:
        install(Path(log))
