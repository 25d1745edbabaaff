"""A real server on a prepared database, and calls held in flight, for fault injection.

Registering swtpm hosts (EK chain + credential activation) is the slow part of any
end-to-end test, so it is done once per pytest process: :func:`build_template` runs
``soapattest serve`` on a fresh SQLite database, registers the simulated hosts
:data:`HOSTS` in pool :data:`POOL`, captures a golden whitelist from the first one
and assigns a policy, then stops the server. Each test then serves its own copy of
that database (:func:`serve`, gunicorn with 2 workers by default), so a fault in
one test never leaks into another.

:func:`stalled_call` freezes (SIGSTOP) a host's agent, starts a client call in a
thread and returns once the server's request to that agent is sitting unread in
the agent's socket: the call is then provably in flight, which is when the tests
kill an agent, a worker or the whole server, or take the database away.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soapattest.client import AttestationClient
from soapattest.model import Combine, Policy, WhitelistRef
from soapattest.sim import SimCluster
from tests.e2e.server_fixture import RunningServer, run_server
from tests.reliability.procs import children, request_waiting, wait_until

HOSTS = ("rel-1", "rel-2", "rel-3")
POOL = "rel-pool"
GOLDEN = "rel-golden"
POLICY = "rel-policy"
PCRS = list(range(8))
DB_FILE = "soapattest.sqlite"
IN_FLIGHT_TIMEOUT = 60.0  # bound on waiting for a call to reach a frozen agent
RESPAWN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Template:
    """A registered database to copy, and the credentials of its admin user."""

    cluster: SimCluster
    state_dir: Path
    username: str
    password: str

    @property
    def db_path(self) -> Path:
        return self.state_dir / DB_FILE


def enrol(client: AttestationClient, cluster: SimCluster, hosts: Sequence[str] = HOSTS) -> None:
    """Register ``hosts`` of ``cluster`` in :data:`POOL` (EK chain + credential activation),
    capture :data:`GOLDEN` from the first, and give the pool :data:`POLICY`."""
    for name in hosts:
        client.register_host(name, cluster.host(name).agent_url, pool=POOL)
    client.import_whitelist_from_host(hosts[0], GOLDEN, PCRS)
    client.create_policy(Policy(POLICY, 0, Combine.ALL_OF, (WhitelistRef(GOLDEN),)))
    client.assign_policy(POLICY, pool=POOL)


def build_template(base: Path, cluster: SimCluster) -> Template:
    """:func:`enrol` :data:`HOSTS` of ``cluster`` in a fresh database under ``base``,
    through a real server; the server is stopped on return."""
    with run_server(base, cluster) as server, server.client(timeout=120) as client:
        enrol(client, cluster)
        assert server.username is not None and server.password is not None
        username, password = server.username, server.password
    return Template(cluster, base / "state", username, password)


def copy_state(template: Template, state_dir: Path) -> None:
    """Copy the template's keys and database (SQLite online backup) into ``state_dir``."""
    state_dir.mkdir(parents=True)
    for item in template.state_dir.iterdir():
        if item.is_file() and not item.name.startswith(DB_FILE):
            shutil.copy2(item, state_dir / item.name)
    with (
        contextlib.closing(sqlite3.connect(template.db_path)) as src,
        contextlib.closing(sqlite3.connect(state_dir / DB_FILE)) as dst,
    ):
        src.backup(dst)


def settings_for(
    base: Path, extra: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """Server settings: the copied digest key (the admin's sealed password) plus ``extra``."""
    out: dict[str, dict[str, str]] = {"auth": {"digest_key": str(base / "state" / "digest.key")}}
    for section, values in (extra or {}).items():
        out.setdefault(section, {}).update(values)
    return out


@contextlib.contextmanager
def serve(
    template: Template,
    base: Path,
    *,
    fresh: bool = True,
    workers: int = 2,
    settings: Mapping[str, Mapping[str, str]] | None = None,
    database_url: str | None = None,
) -> Iterator[RunningServer]:
    """``soapattest serve`` under ``base``: on a new copy of the template database
    (``fresh``), or on what ``base`` holds already (a restart). Agent URLs are brought
    up to date (an agent restarted by an earlier test listens on a new port)."""
    if fresh and database_url is None:
        copy_state(template, base / "state")
    with run_server(
        base,
        template.cluster,
        database_url=database_url,
        workers=workers,
        settings=settings_for(base, settings),
        auth=False,
    ) as server:
        server.username, server.password = template.username, template.password
        sync_agents(server)
        yield server


def sync_agents(server: RunningServer) -> None:
    """Point every registered host at its agent's current URL (UpdateHost)."""
    with server.client() as client:
        for name in HOSTS:
            url = server.cluster.host(name).agent_url
            if client.get_host(name).agent_url != url:
                client.update_host(name, agent_url=url)


def wait_for_log(server: RunningServer, text: str) -> None:
    """Wait until the server log contains ``text``."""
    wait_until(lambda: text in server.log_path.read_text(errors="replace"), 60, repr(text))


def workers_of(server: RunningServer) -> list[int]:
    """Pids of the gunicorn workers (the children of the arbiter, the server process)."""
    return children(server.process.pid)


def wait_for_workers(server: RunningServer, count: int, gone: int | None = None) -> list[int]:
    """Wait until the arbiter has ``count`` workers (none of them ``gone``); their pids."""
    wait_until(
        lambda: len(pids := workers_of(server)) == count and gone not in pids,
        RESPAWN_TIMEOUT,
        f"{count} gunicorn workers",
    )
    return workers_of(server)


class StalledCall:
    """A client call held in flight by a frozen agent (see :func:`stalled_call`)."""

    def __init__(self, future: Future[Any], agent_pid: int, agent_port: int) -> None:
        self.future = future
        self.agent_pid = agent_pid
        self.agent_port = agent_port
        self._released = False

    def release(self) -> None:
        """Let the agent run again (SIGCONT); idempotent."""
        if not self._released:
            self._released = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.agent_pid, signal.SIGCONT)

    def result(self, timeout: float = 120) -> Any:
        """The call's result (or its exception, raised)."""
        return self.future.result(timeout)


@contextlib.contextmanager
def stalled_call(cluster: SimCluster, host: str, call: Callable[[], Any]) -> Iterator[StalledCall]:
    """Freeze ``host``'s agent, run ``call`` in a thread, and yield once the server's
    request sits unread in the agent's socket. The agent is released at the end of the
    block at the latest, and the call is awaited."""
    agent = cluster.host(host)
    pid = agent.agent_pid
    assert pid is not None, f"the agent of {host} is not running"
    os.kill(pid, signal.SIGSTOP)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stalled")
    stalled = StalledCall(pool.submit(call), pid, agent.agent_port)
    try:
        wait_until(
            lambda: request_waiting(agent.agent_port) or stalled.future.done(),
            IN_FLIGHT_TIMEOUT,
            f"the server's request to the agent of {host}",
        )
        if stalled.future.done():
            raise AssertionError(f"the call ended before reaching {host}: {stalled.future!r}")
        yield stalled
    finally:
        stalled.release()
        pool.shutdown(wait=True)


def restart_agent(cluster: SimCluster, host: str) -> None:
    """Start ``host``'s agent again after it was killed (new port; see sync_agents)."""
    agent = cluster.host(host)
    if agent.agent_pid is None:
        agent.start_agent()


def client_for(server: RunningServer, **kwargs: Any) -> AttestationClient:
    """A client of ``server`` with the admin's credentials."""
    client: AttestationClient = server.client(**kwargs)
    return client
