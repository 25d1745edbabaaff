"""EK certificate validation: is this EK from a TPM a trusted manufacturer made?

TCG EK Credential Profile 2.x. Steps:

1. The certificate parses (DER X.509).
2. It is valid at ``now`` and is not a CA certificate.
3. If it carries an extended key usage, that includes tcg-kp-EKCertificate
   (2.23.133.8.1).
4. A chain exists from it, through the supplied intermediates, to one of the
   configured roots: each link's issuer name matches, its signature verifies
   with the issuer's key, each issuer is a valid CA (basicConstraints CA:TRUE,
   keyCertSign when keyUsage is present) at ``now``; depth is bounded.
5. The certificate's public key is the EK public the TPM reported.

X.509 policy checks meant for TLS (name constraints on hostnames, clientAuth
EKUs) do not apply to EK certificates, hence this small dedicated validator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from soapattest.errors import EkCertificateError
from soapattest.tpm.public import TpmPublic

TCG_KP_EK_CERTIFICATE = x509.ObjectIdentifier("2.23.133.8.1")
MAX_CHAIN_DEPTH = 6


@dataclass(frozen=True, slots=True)
class EkChain:
    """A validated chain, leaf first, root last."""

    certificates: tuple[x509.Certificate, ...]

    @property
    def root_subject(self) -> str:
        """RFC 4514 subject of the trust anchor."""
        return self.certificates[-1].subject.rfc4514_string()


def _valid_at(cert: x509.Certificate, now: datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise EkCertificateError(
            f"{what} '{cert.subject.rfc4514_string()}' is not valid at {now.isoformat()} "
            f"(valid {cert.not_valid_before_utc.isoformat()} to "
            f"{cert.not_valid_after_utc.isoformat()})"
        )


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # malformed extension encoding
        raise EkCertificateError(f"certificate extension does not parse: {exc}") from exc


def _is_ca(cert: x509.Certificate) -> bool:
    bc = _ext(cert, x509.BasicConstraints)
    if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
        return False
    ku = _ext(cert, x509.KeyUsage)
    return not isinstance(ku, x509.KeyUsage) or ku.key_cert_sign


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _same_key(cert_key: object, ek: TpmPublic) -> bool:
    tpm_key = ek.public_key()
    if isinstance(cert_key, rsa.RSAPublicKey) and isinstance(tpm_key, rsa.RSAPublicKey):
        return cert_key.public_numbers() == tpm_key.public_numbers()
    if isinstance(cert_key, ec.EllipticCurvePublicKey) and isinstance(
        tpm_key, ec.EllipticCurvePublicKey
    ):
        return (
            cert_key.curve.name == tpm_key.curve.name
            and cert_key.public_numbers() == tpm_key.public_numbers()
        )
    return False


def load_certificates(pem_or_der: bytes) -> list[x509.Certificate]:
    """Parse one DER certificate or a PEM bundle; raises :class:`EkCertificateError`."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem_or_der:
            return x509.load_pem_x509_certificates(pem_or_der)
        return [x509.load_der_x509_certificate(pem_or_der)]
    except ValueError as exc:
        raise EkCertificateError(f"certificate does not parse: {exc}") from exc


def validate_ek_certificate(
    cert_der: bytes,
    ek: TpmPublic,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    now: datetime,
) -> EkChain:
    """Validate an EK certificate and bind it to ``ek``; return the chain.

    Raises :class:`EkCertificateError` naming the failed step. An empty
    ``roots`` list trusts nothing (there is no accept-all).
    """
    if not roots:
        raise EkCertificateError("no EK manufacturer root is configured: nothing can be trusted")
    # 1. Parse.
    if not cert_der:
        raise EkCertificateError("the TPM has no EK certificate")
    try:
        leaf = x509.load_der_x509_certificate(cert_der)
    except ValueError as exc:
        raise EkCertificateError(f"EK certificate does not parse: {exc}") from exc
    # 2. Validity, not a CA.
    _valid_at(leaf, now, "EK certificate")
    if _is_ca(leaf):
        raise EkCertificateError("the EK certificate is a CA certificate")
    # 3. Extended key usage.
    eku = _ext(leaf, x509.ExtendedKeyUsage)
    if (
        isinstance(eku, x509.ExtendedKeyUsage)
        and TCG_KP_EK_CERTIFICATE not in eku
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    ):
        raise EkCertificateError("the certificate's extended key usage excludes EK use")
    # 4. Chain to a root.
    chain = [leaf]
    current = leaf
    while True:
        for root in roots:
            if root.subject == current.issuer and _issued_by(current, root):
                _valid_at(root, now, "root certificate")
                chain.append(root)
                return _finish(chain, leaf, ek)
        if len(chain) >= MAX_CHAIN_DEPTH:
            raise EkCertificateError(f"no chain to a configured root within {MAX_CHAIN_DEPTH}")
        parent = next(
            (
                c
                for c in intermediates
                if c.subject == current.issuer
                and c not in chain
                and _is_ca(c)
                and _issued_by(current, c)
            ),
            None,
        )
        if parent is None:
            raise EkCertificateError(
                f"'{current.subject.rfc4514_string()}' is not issued by a configured root or "
                f"intermediate (issuer '{current.issuer.rfc4514_string()}')"
            )
        _valid_at(parent, now, "intermediate certificate")
        chain.append(parent)
        current = parent


def _finish(chain: list[x509.Certificate], leaf: x509.Certificate, ek: TpmPublic) -> EkChain:
    # 5. The certificate certifies this EK.
    if not _same_key(leaf.public_key(), ek):
        raise EkCertificateError("the EK certificate's key is not the EK the TPM reported")
    return EkChain(tuple(chain))
