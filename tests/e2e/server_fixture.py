"""A real attestation server for end-to-end tests: simulated hosts + ``soapattest serve``.

What it starts (all on loopback, in a fresh temporary directory):

- a :class:`~soapattest.sim.SimCluster` of simulated hosts (swtpm + trust agent each,
  replaying real event logs; default: ``host-1``, ``host-2`` good, ``host-3`` with a
  tampered event);
- ``python -m soapattest serve --config <dir>/soapattest.conf`` as a subprocess on a free
  port, trusting the cluster's EK CA, with SQLite in its state directory (or a fresh
  PostgreSQL database from :mod:`tests.pg_fixture`).

Use the pytest fixtures in a test module (mark it ``swtpm``)::

    from tests.e2e.server_fixture import ServerOptions, attest_server  # noqa: F401

    pytestmark = pytest.mark.swtpm

    def test_something(attest_server):
        client = AttestationClient(attest_server.url)
        ...

``attest_server`` is module-scoped (one cluster + one server per test module, per
pytest-xdist worker). Choose what it runs with indirect parametrization::

    @pytest.mark.parametrize(
        "attest_server", [ServerOptions(database="postgres")], indirect=True
    )

or build one directly with :func:`run_cluster` and :func:`run_server` (both context
managers). The server log is in ``RunningServer.log_path``; a server that does not come
up raises :class:`ServerStartError` with the log's tail.

Credentials: the server requires a WS-Security UsernameToken on every operation. Unless
``ServerOptions(auth=False)``, the fixture creates a user ``e2e-admin`` (role admin, a
random password, PasswordDigest enabled under a digest key in the state directory) with
``soapattest user add`` before the server starts; ``RunningServer.username``/``password``
hold the credentials and ``RunningServer.client()`` uses them. Over plain HTTP clients
must send PasswordDigest (the bundled client does so by default for http:// URLs).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from soapattest.sim import SimCluster
from soapattest.sim.host import HostSpec

GOOD_LOG = "gotpmtools_rhel8-uefi"
DEFAULT_HOSTS: tuple[HostSpec, ...] = (
    HostSpec("host-1", GOOD_LOG),
    HostSpec("host-2", GOOD_LOG),
    HostSpec("host-3", GOOD_LOG, tamper="event"),
)
START_TIMEOUT = 60.0
_PORT_TRIES = 5
ADMIN_USER = "e2e-admin"


class ServerStartError(RuntimeError):
    """The server subprocess did not come up (the message carries its log's tail)."""


@dataclass(frozen=True)
class ServerOptions:
    """What :func:`attest_server` starts.

    ``hosts``: simulated hosts; ``database``: ``"sqlite"`` (embedded, default),
    ``"postgres"`` (a fresh database in the throwaway cluster of
    :mod:`tests.pg_fixture`) or a SQLAlchemy URL; ``workers``: gunicorn workers;
    ``settings``: extra INI settings, ``{"section": {"key": "value"}}``;
    ``auth``: create an admin user (``e2e-admin``, random password, PasswordDigest)
    and hand its credentials to the tests.
    """

    hosts: tuple[HostSpec, ...] = DEFAULT_HOSTS
    database: str = "sqlite"
    workers: int = 1
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    auth: bool = True


@dataclass
class RunningServer:
    """A running server subprocess and the cluster it attests."""

    url: str
    cluster: SimCluster
    config_path: Path
    base_dir: Path
    log_path: Path
    database_url: str
    process: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = None

    @property
    def wsdl_url(self) -> str:
        """The live WSDL (``<url>?wsdl``)."""
        return f"{self.url}?wsdl"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        """True while the subprocess runs."""
        return self.process.poll() is None

    def client(self, **kwargs: Any) -> Any:
        """An :class:`~soapattest.client.AttestationClient` for this server, with the
        fixture's credentials (when it has any)."""
        from soapattest.client import AttestationClient

        kwargs.setdefault("username", self.username)
        kwargs.setdefault("password", self.password)
        return AttestationClient(self.url, **kwargs)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    path: Path,
    *,
    port: int,
    state_dir: Path,
    cluster: SimCluster,
    database_url: str | None = None,
    workers: int = 1,
    settings: Mapping[str, Mapping[str, str]] | None = None,
    digest_key: Path | None = None,
) -> None:
    """Write a server configuration (INI) trusting ``cluster``'s EK CA (and sealing
    PasswordDigest secrets with ``digest_key`` when given)."""
    sections: dict[str, dict[str, str]] = {
        "server": {
            "listen": f"127.0.0.1:{port}",
            "workers": str(workers),
            "threads": "8",
            "state_dir": str(state_dir),
        },
        "trust": {
            "ek_roots": str(cluster.ca_root_cert),
            "ek_intermediates": str(cluster.ca_intermediate_cert),
        },
    }
    if database_url:
        sections["database"] = {"url": database_url}
    if digest_key is not None:
        sections["auth"] = {"digest_key": str(digest_key)}
    for section, values in (settings or {}).items():
        sections.setdefault(section, {}).update(values)
    text = "".join(
        f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) + "\n"
        for name, values in sections.items()
    )
    path.write_text(text, encoding="utf-8")


def _server_env() -> dict[str, str]:
    """The environment of the server: ours without SOAPATTEST_* settings (they would
    override the configuration file)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SOAPATTEST_")}


def add_user(
    config_path: Path,
    name: str,
    password: str,
    roles: tuple[str, ...] = ("admin",),
    *,
    digest: bool = True,
) -> None:
    """``soapattest user add`` against the configuration's database (created if needed)."""
    command = [
        sys.executable,
        "-m",
        "soapattest",
        "user",
        "add",
        name,
        "--password-stdin",
        "--config",
        str(config_path),
        "--actor",
        "e2e-fixture",
    ]
    command += [arg for role in roles for arg in ("--role", role)]
    command.append("--digest" if digest else "--no-digest")
    done = subprocess.run(
        command,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=_server_env(),
        check=False,
    )
    if done.returncode != 0:
        raise ServerStartError(f"soapattest user add {name} failed: {done.stderr.strip()}")


def _wait_up(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerStartError(
                f"the server exited with status {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if requests.get(server.wsdl_url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise ServerStartError(f"the server did not answer within {timeout}s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextlib.contextmanager
def run_server(
    base_dir: Path,
    cluster: SimCluster,
    *,
    database_url: str | None = None,
    workers: int = 1,
    settings: Mapping[str, Mapping[str, str]] | None = None,
    timeout: float = START_TIMEOUT,
    auth: bool = True,
) -> Iterator[RunningServer]:
    """Run ``soapattest serve`` for ``cluster`` under ``base_dir`` until the block ends.

    The configuration is ``base_dir/soapattest.conf``, the state (SQLite, SAML key,
    digest key) in ``base_dir/state``, the log in ``base_dir/server.log``. With ``auth``
    an admin user is created first (see the module docstring). Retries on another port
    when the one picked was taken meanwhile. Raises :class:`ServerStartError`.
    """
    (base_dir / "state").mkdir(parents=True, exist_ok=True)
    config_path = base_dir / "soapattest.conf"
    log_path = base_dir / "server.log"
    digest_key = base_dir / "state" / "digest.key" if auth else None
    username = ADMIN_USER if auth else None
    password = secrets.token_urlsafe(18) if auth else None
    last_error: ServerStartError | None = None
    for attempt in range(_PORT_TRIES):
        port = free_port()
        write_config(
            config_path,
            port=port,
            state_dir=base_dir / "state",
            cluster=cluster,
            database_url=database_url,
            workers=workers,
            settings=settings,
            digest_key=digest_key,
        )
        if auth and attempt == 0:
            assert username is not None and password is not None
            add_user(config_path, username, password)
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "soapattest", "serve", "--config", str(config_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=base_dir,
                env=_server_env(),
            )
        server = RunningServer(
            url=f"http://127.0.0.1:{port}/",
            cluster=cluster,
            config_path=config_path,
            base_dir=base_dir,
            log_path=log_path,
            database_url=database_url or f"sqlite:///{base_dir / 'state' / 'soapattest.sqlite'}",
            process=process,
            username=username,
            password=password,
        )
        try:
            _wait_up(server, timeout)
        except ServerStartError as exc:
            _stop(process)
            last_error = exc
            if "Address already in use" in str(exc) or "already in use" in server.log_tail():
                continue
            raise
        try:
            yield server
        finally:
            _stop(process)
        return
    assert last_error is not None
    raise last_error


@contextlib.contextmanager
def run_cluster(
    base_dir: Path, hosts: tuple[HostSpec, ...] = DEFAULT_HOSTS
) -> Iterator[SimCluster]:
    """A :class:`SimCluster` under ``base_dir`` with ``hosts`` started (stopped at the end)."""
    with SimCluster(base_dir) as cluster:
        if hosts:
            cluster.start_hosts(hosts)
        yield cluster


def _postgres_url(request: pytest.FixtureRequest, stack: contextlib.ExitStack) -> str:
    """A fresh database: in the session's ``pg_cluster`` when the module imported it, else
    in a cluster this fixture starts (and destroys) itself."""
    from tests import pg_fixture

    try:
        cluster: Any = request.getfixturevalue("pg_cluster")
    except pytest.FixtureLookupError:
        try:
            cluster = pg_fixture.start_cluster()
        except pg_fixture.PostgresUnavailable as exc:
            if os.environ.get(pg_fixture.REQUIRE_ENV) == "1":
                pytest.fail(f"PostgreSQL is required: {exc}")
            pytest.skip(f"PostgreSQL not available: {exc}")
        stack.callback(cluster.destroy)
        pg_fixture._wait_ready(cluster)
    return str(cluster.create_database())


def _options(request: pytest.FixtureRequest) -> ServerOptions:
    param = getattr(request, "param", None)
    if param is None:
        return ServerOptions()
    if isinstance(param, str):
        return ServerOptions(database=param)
    if isinstance(param, ServerOptions):
        return param
    raise TypeError(f"attest_server: unsupported parameter {param!r}")


@pytest.fixture(scope="module")
def attest_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A running server and its simulated cluster, for the whole test module.

    Parametrize indirectly with a :class:`ServerOptions`, or with ``"sqlite"``,
    ``"postgres"`` or a database URL. Skips when swtpm is missing.
    """
    from tests.swtpm_fixture import have_swtpm

    if not have_swtpm():
        pytest.skip("swtpm is not installed")
    opts = _options(request)
    base = Path(tempfile.mkdtemp(prefix="e2e-", dir=tmp_path_factory.getbasetemp()))
    with contextlib.ExitStack() as stack:
        if opts.database == "sqlite":
            database_url = None
        elif opts.database == "postgres":
            database_url = _postgres_url(request, stack)
        else:
            database_url = opts.database
        cluster = stack.enter_context(run_cluster(base / "sim", opts.hosts))
        server = stack.enter_context(
            run_server(
                base / "server",
                cluster,
                database_url=database_url,
                workers=opts.workers,
                settings=opts.settings,
                auth=opts.auth,
            )
        )
        yield server
