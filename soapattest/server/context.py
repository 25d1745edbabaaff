"""Everything a use case needs, built once at start-up and passed down (no globals)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from soapattest.security.credentials import load_digest_key
from soapattest.security.nonces import StoreNonceCache
from soapattest.security.wssecurity import Authenticator
from soapattest.server.agents import AgentPort, SoapAgentClient
from soapattest.server.config import ServerConfig
from soapattest.server.keys import SigningIdentity, load_signing_identity
from soapattest.server.versions import VersionCache
from soapattest.store import Store
from soapattest.verify.ekcert import load_certificates


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class ServerContext:
    """Ports and settings of one server process.

    ``clock`` and ``random_bytes`` are injectable so that tests control time
    and nonces; ``agents`` is the port to trust agents.
    """

    config: ServerConfig
    store: Store
    agents: AgentPort
    signing: SigningIdentity
    authenticator: Authenticator | None = None
    ek_roots: tuple[x509.Certificate, ...] = ()
    ek_intermediates: tuple[x509.Certificate, ...] = ()
    clock: Callable[[], datetime] = utc_now
    random_bytes: Callable[[int], bytes] = os.urandom
    versions: VersionCache = field(default_factory=VersionCache)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The bounded thread pool used for bulk attestation (created on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.config.bulk_concurrency, thread_name_prefix="attest"
            )
        return self._pool

    def close(self) -> None:
        """Stop the thread pool and close database connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.store.close()


def _load_bundle(paths: Any) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for path in paths:
        certs.extend(load_certificates(path.read_bytes()))
    return tuple(certs)


def build_context(config: ServerConfig, *, agents: AgentPort | None = None) -> ServerContext:
    """Open the store (no migration here), load trust anchors and the signing identity.

    Raises :class:`~soapattest.errors.ConfigError` for unreadable key or
    certificate files; the store is not contacted until the first request.
    """
    from soapattest.errors import ConfigError, EkCertificateError

    config.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        roots = _load_bundle(config.ek_roots)
        intermediates = _load_bundle(config.ek_intermediates)
    except (OSError, EkCertificateError) as exc:
        raise ConfigError(f"cannot load EK trust anchors: {exc}", option="trust") from exc
    store = Store(config.db_url, busy_timeout_ms=int(config.busy_timeout * 1000))
    signing = load_signing_identity(
        config.saml_key, config.saml_certificate, config.state_dir, config.saml_issuer, utc_now()
    )
    authenticator = Authenticator(
        nonce_cache=StoreNonceCache(store),
        window=config.auth_token_window,
        digest_key=load_digest_key(config.auth_digest_key) if config.auth_digest_key else None,
    )
    port = agents or SoapAgentClient(
        timeout=config.agent_timeout,
        # base64 inflates by 4/3; the largest answer is an event log (IMA is chunked).
        max_response_bytes=config.event_log_max_bytes * 4 // 3 + 256 * 1024,
        ca_bundle=config.agent_ca,
        client_cert=config.agent_client_cert,
        client_key=config.agent_client_key,
    )
    return ServerContext(
        config=config,
        store=store,
        agents=port,
        signing=signing,
        authenticator=authenticator,
        ek_roots=roots,
        ek_intermediates=intermediates,
    )
