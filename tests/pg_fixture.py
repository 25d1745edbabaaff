"""A throwaway PostgreSQL cluster for tests, built from the machine's server binaries.

``pg_cluster`` (session scope) starts one cluster per pytest process (so each
pytest-xdist worker has its own): ``initdb`` + ``pg_ctl`` in a fresh temporary
directory, on a free loopback port, with its unix socket in that directory and
trust authentication. When we are root the server runs as the ``postgres`` OS
user (initdb and postgres refuse root). The cluster is stopped and its directory
removed at the end of the session, also when tests fail or the process exits.

Without the binaries the fixture skips, or fails when SOAPATTEST_REQUIRE_POSTGRES=1.
Binaries are looked up in SOAPATTEST_PG_BINDIR (when set: only there), else
``pg_config --bindir``, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin and PATH.

Use it in a test module with ``from tests.pg_fixture import pg_cluster  # noqa: F401``
(or list ``tests.pg_fixture`` in ``pytest_plugins``). Helpers: ``create_database()``
for a fresh database (optionally from a template), ``stop()``/``start()`` and the
``stopped()`` context manager to make the database unavailable for a while.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

REQUIRE_ENV = "SOAPATTEST_REQUIRE_POSTGRES"
BINDIR_ENV = "SOAPATTEST_PG_BINDIR"
_RUN_AS = "postgres"


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the cluster cannot be started."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    if os.environ.get(BINDIR_ENV):  # an explicit choice: only that directory
        chosen = Path(os.environ[BINDIR_ENV])
        tools = ("initdb", "pg_ctl", "postgres")
        return chosen if all((chosen / tool).is_file() for tool in tools) else None
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(out.stdout.strip())
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        candidates.extend(sorted(glob.glob(pattern), key=_version_key, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        path = Path(candidate)
        if all((path / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One PostgreSQL cluster in its own temporary directory."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="soapattest-pg-"))
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log_file = self.base / "server.log"
        self.port = 0
        self._user: str | None = None
        self._running = False
        self._version: int | None = None
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(_RUN_AS)
            except KeyError as exc:
                raise PostgresUnavailable(f"running as root but no {_RUN_AS!r} user") from exc
            self._user = _RUN_AS
            for path in (self.base, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(self.base, 0o700)

    # -------------------------------------------------------------- processes

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=self._user,
            group=None if self._user is None else pwd.getpwnam(self._user).pw_gid,
            extra_groups=None if self._user is None else [],
            cwd=self.base,
            env={**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"},
        )

    def init(self) -> None:
        """initdb: trust authentication, superuser ``postgres``, UTF8, no fsync."""
        done = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.strip() or done.stdout}")

    def start(self, *, attempts: int = 5) -> None:
        """Start the server (on the same port as before, or a free one the first time)."""
        for _ in range(attempts):
            port = self.port or _free_port()
            options = " ".join(
                [
                    f"-p {port}",
                    f"-k {self.socket_dir}",
                    "-c listen_addresses=127.0.0.1",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=60",
                    "-c shared_buffers=16MB",
                    "-c timezone=UTC",
                ]
            )
            done = self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            )
            if done.returncode == 0:
                self.port = port
                self._running = True
                return
            if self.port:  # a restart on a fixed port: do not wander to another one
                break
        log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr.strip()}\n{log}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate). No-op when stopped."""
        if not self._running:
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @contextlib.contextmanager
    def stopped(self, mode: str = "fast") -> Iterator[None]:
        """Stop the server for the duration of the block, start it again afterwards."""
        self.stop(mode)
        try:
            yield
        finally:
            self.start()

    def destroy(self) -> None:
        """Stop the server (immediately) and remove every file of the cluster."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    # -------------------------------------------------------------- databases

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` over loopback TCP."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> object:
        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname="postgres",
            connect_timeout=10,
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone() if cursor.description else None
        finally:
            connection.close()

    def server_version(self) -> int:
        """``server_version_num`` of the running server (150004 for 15.4)."""
        row = self._admin("SHOW server_version_num")
        assert isinstance(row, tuple)
        return int(row[0])

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database (a fresh random name by default); returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name {name!r}")
        clause = f" TEMPLATE {template}" if template else ""
        if self._version is None:
            self._version = self.server_version()
        if self._version >= 150000:  # copy files instead of WAL-logging every block: ~8x faster
            clause += " STRATEGY FILE_COPY"
        self._admin(f"CREATE DATABASE {name}{clause}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its sessions."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name {name!r}")
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_cluster() -> PgCluster:
    """Create and start a cluster; raises PostgresUnavailable. The caller must destroy it
    (an atexit hook does so too, as a last resort)."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    cluster = PgCluster(bindir)
    atexit.register(cluster.destroy)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def _wait_ready(cluster: PgCluster, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster._admin("SELECT 1")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A running throwaway cluster for this pytest process (one per xdist worker)."""
    try:
        cluster = start_cluster()
        _wait_ready(cluster)
    except PostgresUnavailable as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"PostgreSQL is required ({REQUIRE_ENV}=1): {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()
