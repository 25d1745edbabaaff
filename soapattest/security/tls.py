"""TLS contexts (TLS 1.2 or newer) and certificate fingerprints.

Used by the trust agent (server side, optionally requiring client
certificates) and by the attestation server's agent client (verifying the
agent by CA and/or by a pinned SHA-256 fingerprint of its certificate).
"""

from __future__ import annotations

import hashlib
import re
import ssl
from pathlib import Path
from typing import Any

MIN_VERSION = ssl.TLSVersion.TLSv1_2
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def server_context(cert: Path, key: Path, *, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server context presenting ``cert``/``key`` (PEM); with ``client_ca``, clients must
    present a certificate issued by that CA bundle (mutual TLS).

    Raises OSError / ssl.SSLError for unreadable or mismatched files.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(client_ca))
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(
    *,
    ca: Path | None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    verify_chain: bool = True,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context. ``ca``: the CA bundle peers must chain to (None: the system's
    default CAs). ``verify_chain=False`` (and then no hostname check) is only for
    certificate pinning, where the caller compares the peer's fingerprint itself.
    ``client_cert``/``client_key``: presented when the peer asks (mutual TLS).

    Raises OSError / ssl.SSLError for unreadable files.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = MIN_VERSION
    if verify_chain:
        if ca is not None:
            ctx.load_verify_locations(cafile=str(ca))
        else:
            ctx.load_default_certs()
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        ctx.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
    return ctx


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, 64 lowercase hex digits."""
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 lowercase hex digits; accepts upper case, colons and an
    optional ``sha256:`` prefix. Raises ValueError."""
    value = text.strip().lower()
    value = value.removeprefix("sha256:").replace(":", "")
    if not _HEX64.match(value):
        raise ValueError("a certificate fingerprint is 64 hex digits (SHA-256)")
    return value


def peer_common_names(cert: dict[str, Any] | None) -> tuple[str, ...]:
    """The subject commonName values of a peer certificate as returned by
    ``SSLSocket.getpeercert()`` (empty when there is none)."""
    if not cert:
        return ()
    names: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.append(str(value))
    return tuple(names)
