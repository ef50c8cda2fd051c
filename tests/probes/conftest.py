"""A PostgreSQL 15 server of the test session's own, and a store fixture over every backend.

The PostgreSQL store tests must run for anyone who runs the README's test command, so the
session starts its own server (initdb into a temporary folder, a free port on 127.0.0.1, its
unix socket in that folder, trust authentication) and stops it at the end. Without the
binaries or psycopg those tests are skipped, and the skip reason says what is missing.
PostgreSQL refuses to run as root, so under root the server runs as an unprivileged user.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

#: a non-root account the server runs as when the tests run as root (override with this variable).
PG_USER_ENV = "NEUROSWAP_TEST_PG_USER"


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A throwaway server: `new_database()` gives each test an empty database of its own."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self.pg_ctl = pg_ctl
        self.folder = tempfile.mkdtemp(prefix="neuroswap-pg-")
        self.data = os.path.join(self.folder, "data")
        self.port = _free_port()
        self.run_as: dict[str, object] = {}
        if os.geteuid() == 0:  # initdb and postgres refuse root
            account = pwd.getpwnam(os.environ.get(PG_USER_ENV) or "nobody")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self.run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self._names = itertools.count(1)
        self._run([initdb, "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=200 -c full_page_writes=off")
        self._run([pg_ctl, "-D", self.data, "-l", os.path.join(self.folder, "server.log"), "-w", "-t", "60",
                   "-o", options, "start"])
        self.admin_uri = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str]) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"}
        done = subprocess.run(command, cwd=self.folder, env=env, capture_output=True, text=True, timeout=120,
                              **self.run_as)  # type: ignore[arg-type]
        if done.returncode != 0:
            log = Path(self.folder, "server.log")
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command[:2])} failed ({done.returncode}): {done.stderr[-2000:]} {tail}")

    def new_database(self) -> str:
        """The URI of a new, empty database on this server."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.admin_uri, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run([self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's own PostgreSQL server (skipped, saying why, where it cannot exist)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need psycopg: pip install 'neuroswap[postgres]'")
    initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL tests need the server binaries (initdb, pg_ctl) on PATH, "
                    "e.g. apt-get install postgresql")
    if os.geteuid() == 0:
        user = os.environ.get(PG_USER_ENV) or "nobody"
        try:
            pwd.getpwnam(user)
        except KeyError:
            pytest.skip(f"running as root and there is no user {user!r} to run PostgreSQL as; set ${PG_USER_ENV}")
    server = PostgresServer(initdb, pg_ctl)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_uri(postgres_server) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.new_database()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_store(request, tmp_path):
    """Each backend in turn, empty; closed afterwards."""
    from probes._store_memory import MemoryStore
    from probes._store_sqlite import SQLiteStore

    if request.param == "memory":
        store = MemoryStore()
    elif request.param == "sqlite":
        store = SQLiteStore(tmp_path / "t.db")
    else:
        from probes._store_postgres import PostgresStore

        store = PostgresStore(request.getfixturevalue("postgres_uri"))
    yield store
    store.close()
