"""The server's assertion-signing key and certificate: configured, or generated once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from soapattest.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """PEM private key and certificate used to sign SAML assertions."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.cert_pem)


def _generate(key_path: Path, cert_path: Path, issuer: str, now: datetime) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "soapattest assertion signer"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, issuer[:64]),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    os.replace(tmp, key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_signing_identity(
    key: Path | None, cert: Path | None, state_dir: Path, issuer: str, now: datetime
) -> SigningIdentity:
    """Load the configured key and certificate, or generate them under ``state_dir`` once.

    Raises :class:`ConfigError` when only one of the two is configured, a file is
    unreadable, or the key does not match the certificate.
    """
    if (key is None) != (cert is None):
        raise ConfigError("saml.key and saml.certificate go together", option="saml")
    if key is None or cert is None:
        key = state_dir / "saml-signing-key.pem"
        cert = state_dir / "saml-signing-cert.pem"
        if not key.exists() or not cert.exists():
            _generate(key, cert, issuer, now)
    try:
        key_pem = key.read_bytes()
        cert_pem = cert.read_bytes()
        private = serialization.load_pem_private_key(key_pem, password=None)
        public = x509.load_pem_x509_certificate(cert_pem).public_key()
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot load the SAML signing key/certificate: {exc}", option="saml"
        ) from exc
    pub_der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    priv_pub_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if pub_der != priv_pub_der:
        raise ConfigError("the SAML signing key does not match its certificate", option="saml")
    return SigningIdentity(key_pem=key_pem, cert_pem=cert_pem)
