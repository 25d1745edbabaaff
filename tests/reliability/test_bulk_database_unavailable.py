"""Bulk attestation when the database is away: the whole call fails at once with
DatabaseUnavailableError, instead of retrying the database once per host (which, with a
database that does not answer, multiplies the connect timeout by the number of hosts)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soapattest.errors import AgentUnreachableError, DatabaseUnavailableError, UnknownHostError
from soapattest.server import attestation
from soapattest.server.config import ServerConfig
from soapattest.server.context import ServerContext, utc_now
from soapattest.server.keys import load_signing_identity
from soapattest.store import Store

NAMES = ["h-1", "h-2", "h-3"]


class _NoAgents:
    """An agent port no test here may reach (every plan fails before any agent call)."""

    def _never(self, *_: Any, **__: Any) -> Any:
        raise AgentUnreachableError("no agent in this test")

    fetch_fingerprint = identity = activate_credential = quote = event_log = ima_log = _never


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


def _context(tmp_path: Path, url: str) -> ServerContext:
    config = ServerConfig(state_dir=tmp_path / "state", database_url=url)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    signing = load_signing_identity(None, None, config.state_dir, config.saml_issuer, utc_now())
    return ServerContext(
        config=config,
        store=Store(url, connect_timeout_s=2),
        agents=_NoAgents(),
        signing=signing,
    )


@pytest.fixture
def ctx_down(tmp_path: Path) -> Iterator[ServerContext]:
    ctx = _context(tmp_path, f"postgresql://postgres@127.0.0.1:{_closed_port()}/x")
    yield ctx
    ctx.close()


@pytest.fixture
def ctx_up(tmp_path: Path) -> Iterator[ServerContext]:
    ctx = _context(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    ctx.store.upgrade()
    yield ctx
    ctx.close()


def test_bulk_faults_when_database_is_away(ctx_down: ServerContext) -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        attestation.attest_hosts(ctx_down, "tester", NAMES)
    assert info.value.code == "Server.DatabaseUnavailable"
    with pytest.raises(DatabaseUnavailableError):
        attestation.poll_hosts(ctx_down, "tester", NAMES, max_age=60)


def test_bulk_reports_per_host_errors_when_database_is_up(ctx_up: ServerContext) -> None:
    """Twin: with the database up, hosts that cannot be planned get their own error."""
    outcomes = attestation.attest_hosts(ctx_up, "tester", NAMES)
    assert [o.host for o in outcomes] == NAMES
    assert all(o.report is None and isinstance(o.error, UnknownHostError) for o in outcomes)
