"""Attestation server configuration: INI file, then environment, then flags.

Loaded once into the frozen :class:`ServerConfig` and passed down; nothing
else reads configuration. Every value is checked here: a bad file stops the
server at start with :class:`~soapattest.errors.ConfigError` naming the
option. No setting switches a security check off.

Precedence (documented in docs/operator-guide.md): built-in defaults <
``--config`` file < ``SOAPATTEST_<SECTION>_<KEY>`` environment variables <
command-line flags.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soapattest.errors import ConfigError

ENV_PREFIX = "SOAPATTEST_"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Every setting of the attestation server, with bounded defaults.

    [server]
    - ``listen``: host:port of the SOAP endpoint (default 127.0.0.1:8080).
    - ``workers``: gunicorn worker processes (1..64).
    - ``threads``: concurrent requests per worker (1..256). Bulk attestation waits on
      agents on its own pool (``bulk_concurrency``), so a few threads suffice; with
      SQLite more threads mostly queue on the single writer (higher tail latency).
    - ``public_url``: URL written into the WSDL's soap:address (default: from listen).
    - ``state_dir``: where the embedded database and generated keys live.
    - ``max_request_bytes``: larger SOAP requests are refused (4 KiB..64 MiB).
    - ``request_timeout``: seconds a client has to send a whole request body (1..300);
      a slower client gets ``Client.RequestTimeout`` and its thread is freed.
    - ``tls_cert`` / ``tls_key``: PEM certificate and key: serve HTTPS (PasswordText
      UsernameTokens are accepted only then). ``tls_client_ca``: require client
      certificates issued by this CA (mutual TLS) in addition to the UsernameToken.
    - ``forwarded_allow_ips``: behind a TLS-terminating proxy, the proxy addresses
      (comma separated) whose X-Forwarded-Proto header is believed; only then does a
      request count as received over TLS (PasswordText). Empty: no proxy is trusted.

    [database]
    - ``url``: SQLAlchemy URL; default ``sqlite:///<state_dir>/soapattest.sqlite``.
      ``postgresql://user@host:port/db`` selects PostgreSQL.
    - ``busy_timeout``: seconds to wait for a locked SQLite database (1..120).

    [attestation]
    - ``nonce_ttl``: seconds a quote nonce stays valid (5..3600).
    - ``agent_timeout``: seconds for one call to an agent (1..300).
    - ``bulk_concurrency``: agents contacted at once by AttestHosts/PollHosts (1..1024).
    - ``max_hosts_per_call``: hosts per bulk call (1..100000).
    - ``event_log_max_bytes`` / ``ima_log_max_bytes``: evidence caps.

    [trust]
    - ``ek_roots``: PEM bundle(s) of EK manufacturer roots, comma separated.
    - ``ek_intermediates``: PEM bundle(s) of intermediate CAs.
    - ``require_ek_certificate``: must stay true in production (a host without an
      EK certificate chaining to a root is refused).

    [saml]
    - ``key`` / ``certificate``: PEM signing key and its certificate; generated
      into state_dir at first start when empty.
    - ``issuer``: SAML Issuer; ``validity``: seconds an assertion is valid (30..86400).

    [agents] (TLS to the trust agents; see docs/security.md)
    - ``agent_ca``: PEM CA bundle the agents' certificates must chain to (https
      agent URLs); empty: the system CAs, unless the host has a pinned fingerprint.
    - ``client_cert`` / ``client_key``: PEM certificate and key presented to agents
      that require client certificates (mutual TLS).
    - ``require_tls``: refuse to register hosts whose agent URL is not https://.
      Without ``agent_ca``, a host's agent certificate is pinned at registration.

    [auth]
    - ``digest_key``: file with the key sealing PasswordDigest secrets (mode 0600);
      empty: PasswordDigest is refused, PasswordText over TLS only.
    - ``token_window``: seconds a UsernameToken's Created may differ from the
      server clock; nonces are remembered that long (30..3600).
    """

    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    workers: int = 2
    threads: int = 4
    public_url: str = ""
    state_dir: Path = Path("var")
    max_request_bytes: int = 4 * 1024 * 1024
    request_timeout: float = 15.0
    database_url: str = ""
    busy_timeout: float = 10.0
    nonce_ttl: int = 120
    agent_timeout: float = 10.0
    bulk_concurrency: int = 32
    max_hosts_per_call: int = 10000
    event_log_max_bytes: int = 16 * 1024 * 1024
    ima_log_max_bytes: int = 64 * 1024 * 1024
    ek_roots: tuple[Path, ...] = ()
    ek_intermediates: tuple[Path, ...] = ()
    require_ek_certificate: bool = True
    saml_key: Path | None = None
    saml_certificate: Path | None = None
    saml_issuer: str = "urn:soapattest:server"
    saml_validity: int = 300
    log_level: str = "INFO"
    forwarded_allow_ips: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    agent_ca: Path | None = None
    agent_require_tls: bool = False
    agent_client_cert: Path | None = None
    agent_client_key: Path | None = None
    auth_digest_key: Path | None = None
    auth_token_window: int = 300

    def __post_init__(self) -> None:
        _check(0 <= self.listen_port <= 65535, "server.listen", "port outside 0..65535")
        _check(1 <= self.workers <= 64, "server.workers", "workers must be within 1..64")
        _check(1 <= self.threads <= 256, "server.threads", "threads must be within 1..256")
        _check(
            4096 <= self.max_request_bytes <= 64 * 1024 * 1024,
            "server.max_request_bytes",
            "max_request_bytes must be within 4096..67108864",
        )
        _check(1 <= self.request_timeout <= 300, "server.request_timeout", "must be 1..300")
        _check(1 <= self.busy_timeout <= 120, "database.busy_timeout", "must be within 1..120")
        _check(5 <= self.nonce_ttl <= 3600, "attestation.nonce_ttl", "must be within 5..3600")
        _check(1 <= self.agent_timeout <= 300, "attestation.agent_timeout", "must be 1..300")
        _check(
            1 <= self.bulk_concurrency <= 1024,
            "attestation.bulk_concurrency",
            "must be within 1..1024",
        )
        _check(
            1 <= self.max_hosts_per_call <= 100_000,
            "attestation.max_hosts_per_call",
            "must be within 1..100000",
        )
        _check(
            1024 <= self.event_log_max_bytes <= 64 * 1024 * 1024,
            "attestation.event_log_max_bytes",
            "must be within 1024..67108864",
        )
        _check(
            1024 <= self.ima_log_max_bytes <= 512 * 1024 * 1024,
            "attestation.ima_log_max_bytes",
            "must be within 1024..536870912",
        )
        _check(30 <= self.saml_validity <= 86400, "saml.validity", "must be within 30..86400")
        _check(
            (self.agent_client_cert is None) == (self.agent_client_key is None),
            "agents.client_key",
            "client_cert and client_key must be set together",
        )
        _check(
            (self.tls_cert is None) == (self.tls_key is None),
            "server.tls_cert",
            "tls_cert and tls_key must be set together",
        )
        _check(
            self.tls_client_ca is None or self.tls_cert is not None,
            "server.tls_client_ca",
            "client certificates need TLS: set tls_cert and tls_key",
        )
        _check(30 <= self.auth_token_window <= 3600, "auth.token_window", "must be 30..3600")
        _check(
            self.log_level in ("DEBUG", "INFO", "WARNING", "ERROR"),
            "server.log_level",
            "must be DEBUG, INFO, WARNING or ERROR",
        )

    @property
    def db_url(self) -> str:
        """The database URL (the embedded SQLite file under ``state_dir`` by default)."""
        return self.database_url or f"sqlite:///{self.state_dir / 'soapattest.sqlite'}"

    @property
    def url(self) -> str:
        """The public URL of the SOAP endpoint."""
        scheme = "https" if self.tls_cert else "http"
        return self.public_url or f"{scheme}://{self.listen_host}:{self.listen_port}/"

    def replace(self, **changes: Any) -> ServerConfig:
        """A validated copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def _check(ok: bool, option: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{option}: {message}", option=option)


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p.strip()) for p in value.split(",") if p.strip())


def _bool(value: str, option: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{option}: {value!r} is not a boolean", option=option)


def _number(kind: type, value: str, option: str) -> Any:
    try:
        return kind(value.strip())
    except ValueError:
        raise ConfigError(f"{option}: {value!r} is not a number", option=option) from None


def _optional_path(value: str) -> Path | None:
    return Path(value.strip()) if value.strip() else None


# (section, key) -> (field name, converter)
_FIELDS: dict[tuple[str, str], tuple[str, Any]] = {
    ("server", "workers"): ("workers", int),
    ("server", "threads"): ("threads", int),
    ("server", "public_url"): ("public_url", str),
    ("server", "state_dir"): ("state_dir", Path),
    ("server", "max_request_bytes"): ("max_request_bytes", int),
    ("server", "request_timeout"): ("request_timeout", float),
    ("server", "log_level"): ("log_level", str.upper),
    ("database", "url"): ("database_url", str),
    ("database", "busy_timeout"): ("busy_timeout", float),
    ("attestation", "nonce_ttl"): ("nonce_ttl", int),
    ("attestation", "agent_timeout"): ("agent_timeout", float),
    ("attestation", "bulk_concurrency"): ("bulk_concurrency", int),
    ("attestation", "max_hosts_per_call"): ("max_hosts_per_call", int),
    ("attestation", "event_log_max_bytes"): ("event_log_max_bytes", int),
    ("attestation", "ima_log_max_bytes"): ("ima_log_max_bytes", int),
    ("trust", "ek_roots"): ("ek_roots", _paths),
    ("trust", "ek_intermediates"): ("ek_intermediates", _paths),
    ("trust", "require_ek_certificate"): ("require_ek_certificate", bool),
    ("saml", "key"): ("saml_key", lambda v: Path(v) if v.strip() else None),
    ("saml", "certificate"): ("saml_certificate", lambda v: Path(v) if v.strip() else None),
    ("saml", "issuer"): ("saml_issuer", str),
    ("saml", "validity"): ("saml_validity", int),
    ("server", "forwarded_allow_ips"): ("forwarded_allow_ips", str),
    ("server", "tls_cert"): ("tls_cert", _optional_path),
    ("server", "tls_key"): ("tls_key", _optional_path),
    ("server", "tls_client_ca"): ("tls_client_ca", _optional_path),
    ("agents", "agent_ca"): ("agent_ca", _optional_path),
    ("agents", "require_tls"): ("agent_require_tls", bool),
    ("agents", "client_cert"): ("agent_client_cert", _optional_path),
    ("agents", "client_key"): ("agent_client_key", _optional_path),
    ("auth", "digest_key"): ("auth_digest_key", _optional_path),
    ("auth", "token_window"): ("auth_token_window", int),
}


def _apply(changes: dict[str, Any], section: str, key: str, value: str, base: Path) -> None:
    option = f"{section}.{key}"
    if (section, key) == ("server", "listen"):
        host, sep, port = value.strip().rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"{option}: {value!r} is not host:port", option=option)
        changes["listen_host"] = host.strip("[]") or "127.0.0.1"
        changes["listen_port"] = int(port)
        return
    spec = _FIELDS.get((section, key))
    if spec is None:
        raise ConfigError(f"unknown option {option}", option=option)
    name, conv = spec
    if conv is bool:
        converted: Any = _bool(value, option)
    elif conv in (int, float):
        converted = _number(conv, value, option)
    else:
        converted = conv(value)
    # Relative paths in a file are relative to that file's directory.
    if isinstance(converted, Path) and not converted.is_absolute():
        converted = base / converted
    elif isinstance(converted, tuple):
        converted = tuple(p if p.is_absolute() else base / p for p in converted)
    changes[name] = converted


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Read ``path`` (if given), then ``SOAPATTEST_<SECTION>_<KEY>`` variables, then ``overrides``.

    Raises :class:`ConfigError` for an unreadable file, an unknown option or a
    value out of bounds.
    """
    changes: dict[str, Any] = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, configparser.Error) as exc:
            raise ConfigError(f"cannot read {path}: {exc}", option="config") from exc
        for section in parser.sections():
            for key, value in parser.items(section):
                if value.strip() == "" and (section, key) not in (("server", "public_url"),):
                    continue
                _apply(changes, section, key, value, path.parent.resolve())
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        if section in ("server", "database", "attestation", "trust", "saml", "agents", "auth") and (
            key
        ):
            _apply(changes, section, key, value, Path.cwd())
    changes.update(overrides or {})
    try:
        return ServerConfig(**changes)
    except TypeError as exc:
        raise ConfigError(f"invalid configuration: {exc}", option="config") from exc
