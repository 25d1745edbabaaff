"""Trust agent configuration: an INI file, overridden by command-line flags.

Loaded once into the frozen :class:`AgentConfig` and passed down; nothing else
in the agent reads configuration. Every value is checked here, so a bad file
stops the agent at start with :class:`~soapattest.errors.AgentConfigError`
naming the option, never later in a request.

File format (all keys optional, section ``[agent]``; see ``conf/agent.conf``)::

    [agent]
    listen = 127.0.0.1:9290
    port_file =
    tcti = device:/dev/tpmrm0
    ak_type = ecc
    ak_handle = 0x81010002
    eventlog_path = /sys/kernel/security/tpm0/binary_bios_measurements
    ima_path = /sys/kernel/security/ima/binary_runtime_measurements
    ima_chunk_max = 1048576
    eventlog_max = 16777216
    max_request_bytes = 65536
    quote_attempts = 3
    log_level = INFO
    tls_cert =
    tls_key =
    tls_client_ca =
    allowed_client_cn =
"""

from __future__ import annotations

import configparser
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soapattest.agent.templates import KEY_TYPES
from soapattest.errors import AgentConfigError

SECTION = "agent"
DEFAULT_PORT = 9290
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Every setting of the trust agent, with bounded, documented defaults.

    - ``host``/``port``: where the SOAP service listens. Port 0 picks a free
      port (written to ``port_file`` and printed at start). Default
      ``127.0.0.1:9290``: without ``tls_client_ca`` the agent authenticates
      nobody, so exposing it beyond loopback is an explicit operator decision
      (enable mutual TLS below, or a firewall that only admits the servers).
    - ``port_file``: when set, the bound port is written there once listening.
    - ``tcti``: ``name:conf`` of the TPM transport (``device:/dev/tpmrm0``,
      ``swtpm:host=127.0.0.1,port=2321``, ``tabrmd:bus_type=system``).
    - ``ak_type``: ``ecc`` (NIST P-256, ECDSA-SHA256) or ``rsa`` (RSA 2048,
      RSASSA-SHA256); ``ak_handle``: its persistent handle (0x81000000-0x81ffffff).
    - ``eventlog_path`` / ``ima_path``: where the measured-boot log and the
      binary IMA list are read; ``eventlog_max`` bounds the log served (bytes);
      ``ima_chunk_max`` bounds one GetImaLog answer (bytes, 4 KiB..16 MiB).
    - ``max_request_bytes``: larger SOAP requests are refused (1 KiB..1 MiB).
    - ``quote_attempts``: quotes retried when PCRs change meanwhile (1..10).
    - ``log_level``: DEBUG, INFO, WARNING or ERROR.
    - ``tls_cert``/``tls_key``: PEM certificate (chain) and key; when set the agent
      speaks HTTPS only (TLS 1.2+).
    - ``tls_client_ca``: PEM CA bundle; when set, every client must present a
      certificate issued by it (mutual TLS): the agent answers only the
      attestation servers it is configured for. Needs ``tls_cert``.
    - ``allowed_client_cn``: comma-separated subject CNs; when set, a client
      certificate must also carry one of them. Needs ``tls_client_ca``.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    port_file: Path | None = None
    tcti: str = "device:/dev/tpmrm0"
    ak_type: str = "ecc"
    ak_handle: int = 0x81010002
    eventlog_path: Path = Path("/sys/kernel/security/tpm0/binary_bios_measurements")
    ima_path: Path = Path("/sys/kernel/security/ima/binary_runtime_measurements")
    eventlog_max: int = 16 * 1024 * 1024
    ima_chunk_max: int = 1024 * 1024
    max_request_bytes: int = 64 * 1024
    quote_attempts: int = 3
    log_level: str = "INFO"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    allowed_client_cn: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.host), "listen", "listen host is empty")
        _check(0 <= self.port <= 65535, "listen", f"port {self.port} outside 0..65535")
        _check(":" in self.tcti and bool(self.tcti.partition(":")[0]), "tcti",
               f"TCTI {self.tcti!r} is not name:conf (e.g. device:/dev/tpmrm0)")
        _check(self.ak_type in KEY_TYPES, "ak_type",
               f"ak_type {self.ak_type!r} is not one of {', '.join(KEY_TYPES)}")
        _check(0x81000000 <= self.ak_handle <= 0x81FFFFFF, "ak_handle",
               f"ak_handle 0x{self.ak_handle:x} is not a persistent handle (0x81000000-0x81ffffff)")
        _check(4096 <= self.ima_chunk_max <= 16 * 1024 * 1024, "ima_chunk_max",
               "ima_chunk_max must be within 4096..16777216")
        _check(1024 <= self.eventlog_max <= 64 * 1024 * 1024, "eventlog_max",
               "eventlog_max must be within 1024..67108864")
        _check(1024 <= self.max_request_bytes <= 1024 * 1024, "max_request_bytes",
               "max_request_bytes must be within 1024..1048576")
        _check(1 <= self.quote_attempts <= 10, "quote_attempts",
               "quote_attempts must be within 1..10")
        _check(self.log_level in LOG_LEVELS, "log_level",
               f"log_level must be one of {', '.join(LOG_LEVELS)}")
        _check((self.tls_cert is None) == (self.tls_key is None), "tls_key",
               "tls_cert and tls_key must be set together")
        _check(self.tls_client_ca is None or self.tls_cert is not None, "tls_client_ca",
               "tls_client_ca needs tls_cert and tls_key (mutual TLS)")
        _check(not self.allowed_client_cn or self.tls_client_ca is not None, "allowed_client_cn",
               "allowed_client_cn needs tls_client_ca")
        _check(all(cn and cn == cn.strip() for cn in self.allowed_client_cn),
               "allowed_client_cn", "allowed_client_cn has an empty name")

    @property
    def tls(self) -> bool:
        """True when the agent serves HTTPS."""
        return self.tls_cert is not None

    def replace(self, **changes: Any) -> AgentConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _check(ok: bool, option: str, message: str) -> None:
    if not ok:
        raise AgentConfigError(message, option=option)


def parse_listen(value: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:port"`` for IPv6) into ``(host, port)``.

    Raises :class:`AgentConfigError`.
    """
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise AgentConfigError(f"listen {value!r} is not host:port", option="listen")
    return host.strip("[]") or "127.0.0.1", int(port)


def _int(value: str, option: str) -> int:
    try:
        return int(value.strip(), 0)
    except ValueError:
        raise AgentConfigError(f"{option} = {value!r} is not an integer", option=option) from None


_INT_KEYS = ("ak_handle", "eventlog_max", "ima_chunk_max", "max_request_bytes", "quote_attempts")
_PATH_KEYS = ("eventlog_path", "ima_path", "port_file", "tls_cert", "tls_key", "tls_client_ca")
_KNOWN = {"listen", "tcti", "ak_type", "log_level", "allowed_client_cn", *_INT_KEYS, *_PATH_KEYS}


def values_from_mapping(raw: Mapping[str, str]) -> dict[str, Any]:
    """Typed field values from ``key = value`` strings (config file or flags).

    Empty values are ignored (``port_file =`` means "not set"). Raises
    :class:`AgentConfigError` for unknown keys or values that do not convert.
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _KNOWN:
            raise AgentConfigError(f"unknown option {key!r}", option=key)
        value = value.strip()
        if not value:
            continue
        if key == "listen":
            out["host"], out["port"] = parse_listen(value)
        elif key in _INT_KEYS:
            out[key] = _int(value, key)
        elif key in _PATH_KEYS:
            out[key] = Path(value)
        elif key == "log_level":
            out[key] = value.upper()
        elif key == "allowed_client_cn":
            out[key] = tuple(cn.strip() for cn in value.split(",") if cn.strip())
        else:
            out[key] = value
    return out


def load_config(
    path: Path | None = None, overrides: Mapping[str, str] | None = None
) -> AgentConfig:
    """Read ``path`` (INI, section ``[agent]``) then apply ``overrides`` (flag values).

    Raises :class:`AgentConfigError` for an unreadable file, a missing
    ``[agent]`` section, unknown keys or invalid values.
    """
    values: dict[str, Any] = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with path.open(encoding="utf-8") as f:
                parser.read_file(f)
        except (OSError, configparser.Error) as exc:
            raise AgentConfigError(f"cannot read {path}: {exc}", option="config") from exc
        if not parser.has_section(SECTION):
            raise AgentConfigError(f"{path} has no [{SECTION}] section", option="config")
        values.update(values_from_mapping(dict(parser.items(SECTION))))
    values.update(values_from_mapping(overrides or {}))
    try:
        return AgentConfig(**values)
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise AgentConfigError(str(exc), option="config") from exc
