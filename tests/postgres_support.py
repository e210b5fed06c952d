"""A real PostgreSQL server for the tests, started by the tests themselves.

:class:`PostgresCluster` runs ``initdb`` and ``pg_ctl`` from ``pg_config --bindir``
(or Debian's ``/usr/lib/postgresql/*/bin``) into a temporary directory, on a free
loopback port with its unix socket in that directory. PostgreSQL refuses to run as
root: as root the cluster belongs to the ``postgres`` system user and every server
command runs through ``runuser``. Clients connect over TCP with a password
(``scram-sha-256``), as a processor in production would, as the role ``faultlens``.

``postgres_cluster`` (session-scoped) starts one for the whole run, or skips the tests
that need it with the reason printed (no PostgreSQL installed, no unprivileged user to
run it); ``fresh_database(cluster, name)`` creates an empty database and returns its URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "s3cret-pg-password"
ROLE = "faultlens"


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are, or None."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(
                subprocess.run(
                    [pg_config, "--bindir"], check=False, capture_output=True, text=True, timeout=10
                ).stdout.strip()
            )
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if (
            candidate
            and (Path(candidate) / "initdb").exists()
            and (Path(candidate) / "pg_ctl").exists()
        ):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One PostgreSQL cluster in a temporary directory (see the module docstring)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.directory = Path(tempfile.mkdtemp(prefix="faultlens-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.fsync = False
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root and there is no 'postgres' user") from exc
            self.user = "postgres"
            shutil.chown(self.directory, "postgres")
        self.directory.chmod(0o755)

    def _command(self, *argv: str) -> list[str]:
        if self.user is None:
            return list(argv)
        return ["runuser", "-u", self.user, "--", *argv]

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(*argv), capture_output=True, text=True, timeout=timeout, check=True
        )

    def init(self) -> None:
        pwfile = self.directory / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self.user is not None:
            shutil.chown(pwfile, self.user)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        pwfile.unlink()

    def start(self, timeout: float = 120, *, fsync: bool | None = None) -> None:
        """Start the server (``-w``: returns once it accepts connections). Tests run it
        without ``fsync`` (the machine is shared and its disk slow; a clean stop loses
        nothing); the benchmark with it (``fsync=True``, kept for restarts)."""
        if fsync is not None:
            self.fsync = fsync
        durability = [] if self.fsync else ["-c fsync=off", "-c full_page_writes=off"]
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.directory}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=200",
                "-c shared_buffers=64MB",
                *durability,
                "-c shared_preload_libraries=pg_stat_statements",
                "-c deadlock_timeout=200ms",
            ]
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(int(timeout)),
            "start",
            timeout=timeout + 30,
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the unix socket; its output."""
        return self._run(
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.directory),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ).stdout.strip()

    def create_role(self) -> None:
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' CREATEDB")

    def url(self, database: str, *, password: bool = True, **params: Any) -> str:
        secret = f":{PASSWORD}" if password else ""
        query = "&".join(f"{key}={value}" for key, value in params.items())
        return f"postgresql://{ROLE}{secret}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def create_database(self, name: str) -> str:
        """A new empty database owned by the test role; its URL."""
        self.psql(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        self.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", name)
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(
                (self.directory / "server.log").read_text(errors="replace").splitlines()[-lines:]
            )
        return ""


def start_cluster() -> PostgresCluster:
    """A running cluster with the test role, or :class:`RuntimeError` saying why not."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL is not installed (no initdb/pg_ctl; `apt-get install postgresql`)"
        )
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        cluster.create_role()
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log = cluster.log_tail()
        cluster.destroy()
        raise RuntimeError(f"PostgreSQL did not start: {exc} {detail} {log}") from exc
    return cluster


_counter = iter(range(1_000_000))


def fresh_database(cluster: PostgresCluster, prefix: str = "t") -> str:
    """A new, empty database; its URL (with the password)."""
    name = f"{prefix}_{os.getpid()}_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    return cluster.create_database(name.lower())


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole run (skipped, saying why, when none can start)."""
    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        print(f"\nSKIP PostgreSQL tests: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh database for the test module."""
    return fresh_database(postgres_cluster)
