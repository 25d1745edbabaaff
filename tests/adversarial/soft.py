"""UNSAFE software hosts for the adversarial suite: a software AK, EK and PCR banks.

A :class:`SoftHost` can sign anything a real TPM never would (wrong magic, a
CERTIFY structure, counters that go backwards), which is what the attacks in
this suite need. It also holds a software RSA EK with a certificate from a
:class:`SoftCa`, and can answer ActivateCredential in software: it passes
every registration step except the EK chain to a configured manufacturer root.

Tests enrol a soft host's identity by writing it into the store
(:func:`enrol`), never through RegisterHost: that is the test-only path. One
test shows that RegisterHost refuses a soft host (its EK certificate does not
chain to the server's roots).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

try:  # cryptography >= 47 keeps CFB under "decrepit"
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB

from soapattest.model import Host, HostIdentity
from soapattest.sim.boot import plan_ima
from soapattest.store import Store
from soapattest.testing.unsafe_soft_tpm import UnsafeSoftTpm
from soapattest.tpm.constants import TpmAlg
from soapattest.tpm.credential import INTEGRITY_LABEL, STORAGE_LABEL, kdfa
from soapattest.tpm.eventlog import parse_event_log
from soapattest.tpm.marshal import EK_ATTRIBUTES, EK_POLICY_SHA256, build_public_rsa

TCG_KP_EK_CERTIFICATE = x509.ObjectIdentifier("2.23.133.8.1")


class SoftCa:
    """A self-made EK "manufacturer" CA (``subject`` may copy a real root's subject)."""

    def __init__(self, subject: x509.Name | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.subject = subject or x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "adversarial soft EK CA")]
        )
        now = datetime.now(UTC)
        self.root = (
            x509.CertificateBuilder()
            .subject_name(self.subject)
            .issuer_name(self.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue_ek(self, key: rsa.RSAPublicKey, host: str) -> bytes:
        """A DER EK certificate for ``key`` (EKU tcg-kp-EKCertificate)."""
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"soft EK {host}")]))
            .issuer_name(self.subject)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([TCG_KP_EK_CERTIFICATE]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(Encoding.DER)


class SoftHost:
    """An UNSAFE host: :class:`UnsafeSoftTpm` PCRs and AK, a software EK, served logs.

    ``boot(raw)`` resets the PCRs and extends them from the event log ``raw``
    (and the IMA list), as firmware and kernel would; ``event_log`` /
    ``ima_log`` are what its agent serves (tests may serve something else).
    """

    def __init__(
        self,
        name: str,
        log: bytes,
        *,
        ima: bytes | None = None,
        banks: tuple[str, ...] = ("sha1", "sha256"),
        sig_hash: str = "sha256",
        ca: SoftCa | None = None,
    ) -> None:
        self.name = name
        self.tpm = UnsafeSoftTpm(banks=banks, sig_hash=sig_hash)
        self.event_log = log
        self.ima_log = ima
        self._ca = ca
        self._ek: rsa.RSAPrivateKey | None = None
        self.boot(log, ima=ima)

    # ------------------------------------------------------------------ measurements

    def boot(self, log: bytes, *, ima: bytes | None = None, served: bytes | None = None) -> None:
        """TPM reset, extend ``log`` (and ``ima``); serve ``served`` (default ``log``)."""
        self.tpm.boot(parse_event_log(log))
        if ima is not None:
            _, extends = plan_ima(ima, self.tpm.banks)
            for pcr, digests in extends:
                self.tpm.extend(pcr, digests)
        self.event_log = log if served is None else served
        self.ima_log = ima

    def extend(self, pcr: int, data: bytes) -> None:
        """Extend ``pcr`` with H(data) in every bank (a runtime measurement)."""
        self.tpm.extend(pcr, {b: hashlib.new(b, data).digest() for b in self.tpm.banks})

    # ------------------------------------------------------------------ identity

    @property
    def ek_key(self) -> rsa.RSAPrivateKey:
        if self._ek is None:
            self._ek = rsa.generate_private_key(65537, 2048)
        return self._ek

    @property
    def ek_public(self) -> bytes:
        """TPM2B_PUBLIC of the software EK (TCG default RSA EK template)."""
        return build_public_rsa(
            self.ek_key.public_key(),
            EK_ATTRIBUTES,
            scheme=TpmAlg.NULL,
            symmetric=(TpmAlg.AES, 128, TpmAlg.CFB),
            auth_policy=EK_POLICY_SHA256,
        )

    @property
    def ek_certificate(self) -> bytes:
        """The EK certificate from the host's CA (a fresh self-made CA when none was given)."""
        if self._ca is None:
            self._ca = SoftCa()
        return self._ca.issue_ek(self.ek_key.public_key(), self.name)

    def activate_credential(self, blob: bytes, secret: bytes) -> bytes:
        """TPM2_ActivateCredential in software, for this host's AK name (raises ValueError)."""
        name = self.tpm.ak_name
        seed = self.ek_key.decrypt(
            _unwrap(secret),
            padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()),
                algorithm=hashes.SHA256(),
                label=b"IDENTITY\0",
            ),
        )
        inner = _unwrap(blob)
        size = int.from_bytes(inner[:2], "big")
        integrity, enc_identity = inner[2 : 2 + size], inner[2 + size :]
        hmac_key = kdfa(TpmAlg.SHA256, seed, INTEGRITY_LABEL, b"", b"", 256)
        mac = crypto_hmac.HMAC(hmac_key, hashes.SHA256())
        mac.update(enc_identity + name)
        mac.verify(integrity)
        sym_key = kdfa(TpmAlg.SHA256, seed, STORAGE_LABEL, name, b"", 128)
        dec = Cipher(algorithms.AES(sym_key), CFB(b"\0" * 16)).decryptor()
        return _unwrap(dec.update(enc_identity) + dec.finalize())

    def identity(self, now: datetime) -> HostIdentity:
        """The identity a test writes into the store for this host."""
        return HostIdentity(
            ek_public=self.ek_public if self._ek is not None else b"soft-ek",
            ek_certificate=b"",
            ak_public=self.tpm.ak_public_bytes,
            ak_name=self.tpm.ak_name,
            activated_at=now,
            qualified_signer=self.tpm.qualified_signer,
        )


def _unwrap(data: bytes) -> bytes:
    size = int.from_bytes(data[:2], "big")
    if len(data) < 2 + size:
        raise ValueError("truncated TPM2B")
    return data[2 : 2 + size]


def enrol(
    store: Store,
    host: SoftHost,
    *,
    agent_url: str,
    policy: str = "",
    pool: str = "",
    labels: Mapping[str, str] | None = None,
) -> None:
    """TEST-ONLY enrolment: write ``host``'s software identity straight into the store.

    No production path does this (RegisterHost demands an EK certificate that
    chains to a configured root and a credential activation).
    """
    now = datetime.now(UTC)
    with store.transaction() as tx:
        tx.hosts.add(
            Host(
                name=host.name,
                agent_url=agent_url,
                policy=policy,
                pool=pool,
                labels=dict(labels or {}),
            ),
            now,
        )
        tx.hosts.set_identity(host.name, host.identity(now), now)
