"""A real PostgreSQL server for tests: Debian's binaries, `initdb` in a temporary folder, a free
port on 127.0.0.1, password authentication, stopped (its process group killed) by the fixture.

As root (CI), the server runs as the unprivileged `postgres` user, which owns the folder:
PostgreSQL refuses to run as root. `.ci/install-postgres` installs the package.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sf_lakehouse_tests.dagster_dev import free_port

USER = "dagster"
DATABASE = "dagster"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    def url(self, database: str | None = None) -> str:
        return (
            f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/"
            f"{database or self.database}"
        )


def postgres_bin() -> Path:
    """Where `initdb` and `postgres` are (Debian keeps them out of PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed: run .ci/install-postgres (as root)")
    return Path(found[-1]).parent


def _as_user() -> tuple[Callable[[], None] | None, int | None, int | None]:
    if os.geteuid() != 0:
        return None, None, None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no `postgres` user: run .ci/install-postgres")
    uid, gid = entry.pw_uid, entry.pw_gid

    def demote() -> None:
        os.setgid(gid)
        os.setuid(uid)

    return demote, uid, gid


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    binaries = postgres_bin()
    demote, uid, gid = _as_user()
    root = Path(tempfile.mkdtemp(prefix="sf-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    password = "test-" + os.urandom(8).hex()
    (root / "pw").write_text(password + "\n", encoding="utf-8")
    if uid is not None:
        for path in (root, sockets, root / "pw"):
            os.chown(path, uid, gid or 0)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=scram-sha-256",
            f"--pwfile={root / 'pw'}",
            "--encoding=UTF8",
            "--no-sync",
        ],
        check=True,
        env=env,
        preexec_fn=demote,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(sockets),
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ],
        env=env,
        preexec_fn=demote,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = PostgresServer("127.0.0.1", port, USER, password, DATABASE)
    try:
        _wait_ready(server, process, root / "server.log")
        _create_database(server)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGINT)  # fast shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PostgresServer, process: subprocess.Popen, log: Path) -> None:
    import psycopg2

    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            psycopg2.connect(server.url("postgres"), connect_timeout=3).close()
            return
        except psycopg2.OperationalError:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)


def _create_database(server: PostgresServer) -> None:
    import psycopg2

    connection = psycopg2.connect(server.url("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {server.database}")
    connection.close()


def new_database(server: PostgresServer, name: str) -> PostgresServer:
    """A fresh database on the same server (one per test that needs an empty instance)."""
    import psycopg2

    connection = psycopg2.connect(server.url("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return PostgresServer(server.host, server.port, server.user, server.password, name)
