"""The only module of soapattest that talks to a TPM (tpm2-pytss ESAPI).

:class:`TpmAccess` wraps one ESAPI context opened on a TCTI given as
``"name:conf"`` (``device:/dev/tpmrm0``, ``swtpm:host=127.0.0.1,port=2321``,
``tabrmd:bus_type=system``, ``mssim:...``). Every public method takes one
lock: TPM commands of concurrent SOAP requests never interleave (a TPM
executes one command at a time anyway, and a PCR read / quote / read
sequence must not be split).

ESAPI/TCTI failures become :class:`~soapattest.errors.TpmError` (with the
command name and the TSS2 response code); the context is reopened on the next
call after a TCTI-layer failure (connection lost).

Security notes: the AK is created with an empty auth value (it is a
restricted key: it only signs TPM-generated structures, so knowing its auth
lets a local process quote, not forge). The EK is only ever used through its
TCG policy (PolicySecret(TPM_RH_ENDORSEMENT)) with the default, empty
endorsement auth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tpm2_pytss import ESAPI, TCTILdr, TSS2_Exception
from tpm2_pytss.constants import ESYS_TR, TPM2_CAP, TPM2_SE, TPM2_SU, TPMA_NV
from tpm2_pytss.types import (
    TPM2B_ENCRYPTED_SECRET,
    TPM2B_ID_OBJECT,
    TPM2B_NV_PUBLIC,
    TPM2B_PUBLIC,
    TPML_DIGEST_VALUES,
    TPML_PCR_SELECTION,
    TPMS_NV_PUBLIC,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
)

from soapattest.agent.templates import (
    EK_CERT_NV_INDEX,
    EK_NONCE_NV_INDEX,
    EK_TEMPLATE_NV_INDEX,
    KEY_TYPES,
    ak_template,
    ek_template,
    same_key_kind,
)
from soapattest.agent.tpmtypes import (
    AkInfo,
    EkInfo,
    QuoteResult,
    TpmInfo,
    digest_list,
    parse_tcti,
    trim_der,
)
from soapattest.errors import CredentialRejectedError, PcrsChangingError, TpmError
from soapattest.tpm.attest import parse_attest
from soapattest.tpm.constants import HASH_ALGORITHMS, HASH_BY_NAME, TpmAlg
from soapattest.tpm.pcr import PcrSelection, PcrValues, pcr_digest, pcr_selection_from_bytes
from soapattest.tpm.public import parse_public

log = logging.getLogger("soapattest.agent.tpm")

_TCTI_LAYER = 0x000A0000  # TSS2_TCTI_RC_LAYER: the transport failed, reopen
_RC_LAYER_MASK = 0x00FF0000
_NV_CHUNK_DEFAULT = 1024
_CERT_MAX = 8192  # bigger EK certificate "NV areas" are refused


def _rc(exc: BaseException) -> int | None:
    rc = getattr(exc, "rc", None)
    return int(rc) if rc is not None else None


def _tpml_selection(sel: PcrSelection) -> Any:
    tpml, _ = TPML_PCR_SELECTION.unmarshal(sel.to_bytes())
    return tpml


class _PcrsChanged(Exception):
    """Internal: the pcrUpdateCounter moved while reading one selection."""


class TpmAccess:
    """Serialised access to one TPM through tpm2-pytss ESAPI.

    ``tcti``: ``"name:conf"`` (see :func:`parse_tcti`). ``quote_attempts``:
    how many times :meth:`quote` retries when PCRs change under it before it
    raises :class:`PcrsChangingError`.

    The constructor connects (raises :class:`TpmError` when it cannot);
    :meth:`close` disconnects. Use as a context manager.
    """

    def __init__(self, tcti: str, *, quote_attempts: int = 3) -> None:
        if quote_attempts < 1:
            raise ValueError("quote_attempts must be >= 1")
        self.tcti = tcti
        self.quote_attempts = quote_attempts
        self._lock = threading.RLock()
        self._tcti_name, self._tcti_conf = parse_tcti(tcti)
        self._tctildr: Any = None
        self._esys: Any = None
        self._ak_handle: int | None = None
        self._ak_tr: Any = None
        self._ak_scheme_hash = "sha256"
        with self._lock:
            self._connect()

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> None:
        try:
            self._tctildr = TCTILdr(self._tcti_name, self._tcti_conf)
            self._esys = ESAPI(self._tctildr)
        except (TSS2_Exception, OSError, RuntimeError) as exc:
            self._tctildr = None
            self._esys = None
            raise TpmError(f"cannot open TCTI {self.tcti!r}: {exc}", command="Initialize",
                           rc=_rc(exc)) from exc

    def _disconnect(self) -> None:
        esys, tctildr = self._esys, self._tctildr
        self._esys = self._tctildr = None
        self._ak_tr = None
        for closer in (getattr(esys, "close", None), getattr(tctildr, "close", None)):
            if closer is None:
                continue
            try:
                closer()
            except Exception:
                log.debug("error while closing the TPM context", exc_info=True)

    @property
    def esys(self) -> Any:
        """The live ESAPI context (reconnects when the last call lost the transport)."""
        if self._esys is None:
            self._connect()
        return self._esys

    @contextmanager
    def _command(self, name: str) -> Iterator[None]:
        try:
            yield
        except TSS2_Exception as exc:
            rc = _rc(exc)
            if rc is not None and rc & _RC_LAYER_MASK == _TCTI_LAYER:
                log.warning("TPM transport failed during %s; reconnecting on next use", name)
                self._disconnect()
            raise TpmError(f"TPM2_{name} failed: {exc}", command=name, rc=rc) from exc

    def close(self) -> None:
        """Disconnect from the TPM (idempotent)."""
        with self._lock:
            self._disconnect()

    def __enter__(self) -> TpmAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ facts

    def _properties(self, first: int, count: int) -> dict[int, int]:
        with self._command("GetCapability"):
            _, cap = self.esys.get_capability(TPM2_CAP.TPM_PROPERTIES, first, count)
        return {int(p.property): int(p.value) for p in cap.data.tpmProperties}

    def active_banks(self) -> tuple[str, ...]:
        """Names of the PCR banks with at least one allocated PCR, in TPM order."""
        with self._lock, self._command("GetCapability"):
            _, cap = self.esys.get_capability(TPM2_CAP.PCRS, 0, 1)
            banks = []
            for sel in cap.data.assignedPCR:
                alg = HASH_ALGORITHMS.get(int(sel.hash))
                if alg is not None and any(bytes(sel.pcrSelect)[: sel.sizeofSelect]):
                    banks.append(alg.name)
            return tuple(banks)

    def info(self) -> TpmInfo:
        """Manufacturer, firmware version (TPM_PT 0x105, 0x10b, 0x10c) and active banks."""
        with self._lock:
            props = self._properties(0x105, 1)
            props.update(self._properties(0x10B, 2))
            manufacturer_id = props.get(0x105, 0)
            text = manufacturer_id.to_bytes(4, "big").decode("ascii", "replace")
            return TpmInfo(
                manufacturer=text.rstrip("\0 ").replace("\0", " "),
                manufacturer_id=manufacturer_id,
                firmware_version_1=props.get(0x10B, 0),
                firmware_version_2=props.get(0x10C, 0),
                banks=self.active_banks(),
            )

    # ------------------------------------------------------------------ NV

    def _nv_defined(self, index: int) -> tuple[Any, int] | None:
        """``(ESYS_TR, dataSize)`` of a defined NV index, ``None`` when undefined."""
        with self._command("GetCapability"):
            _, cap = self.esys.get_capability(TPM2_CAP.HANDLES, index, 1)
        if index not in [int(h) for h in cap.data.handles]:
            return None
        with self._command("NV_ReadPublic"):
            tr = self.esys.tr_from_tpmpublic(index)
            pub, _ = self.esys.nv_read_public(tr)
        return tr, int(pub.nvPublic.dataSize)

    def nv_read(self, index: int, max_size: int = _CERT_MAX) -> bytes | None:
        """The whole content of NV ``index``, ``None`` if undefined.

        Read with the index's own (empty) authorization, or with the owner's
        (empty) one when the index does not allow that (TPMA_NV_OWNERREAD only).
        Raises :class:`TpmError` when the index is larger than ``max_size`` or
        cannot be read.
        """
        with self._lock:
            found = self._nv_defined(index)
            if found is None:
                return None
            tr, size = found
            if size > max_size:
                raise TpmError(f"NV index 0x{index:08x} holds {size} bytes (> {max_size})",
                               command="NV_Read")
            chunk = self._properties(0x12C, 1).get(0x12C, _NV_CHUNK_DEFAULT) or _NV_CHUNK_DEFAULT
            try:
                for auth in (None, ESYS_TR.OWNER):
                    try:
                        return self._nv_read_all(tr, size, chunk, auth)
                    except TpmError as exc:
                        if auth is not None or self._esys is None:
                            raise
                        log.debug("NV 0x%08x: index auth refused (%s); trying owner", index, exc)
                raise AssertionError("unreachable")
            finally:
                if self._esys is not None:
                    self.esys.tr_close(tr)

    def _nv_read_all(self, tr: Any, size: int, chunk: int, auth: Any) -> bytes:
        out = bytearray()
        with self._command("NV_Read"):
            while len(out) < size:
                n = min(chunk, size - len(out))
                out += bytes(self.esys.nv_read(tr, n, len(out), auth_handle=auth))
        return bytes(out)

    # ------------------------------------------------------------------ keys

    def _ek_template(self, key_type: str) -> Any:
        custom = self.nv_read(EK_TEMPLATE_NV_INDEX[key_type], 1024)
        if custom is not None:
            # Manufacturer-provided template (TPMT_PUBLIC) replaces the default one.
            pub, _ = TPM2B_PUBLIC.unmarshal(len(custom).to_bytes(2, "big") + custom)
            return pub
        nonce = self.nv_read(EK_NONCE_NV_INDEX[key_type], 256)
        pub, _ = TPM2B_PUBLIC.unmarshal(ek_template(key_type, nonce))
        return pub

    def _create_ek(self, key_type: str) -> tuple[Any, bytes]:
        template = self._ek_template(key_type)
        with self._command("CreatePrimary"):
            handle, public, *_ = self.esys.create_primary(None, template, ESYS_TR.ENDORSEMENT)
        return handle, bytes(public.marshal())

    def ek(self, key_type: str) -> EkInfo:
        """Create the EK of ``key_type`` from its TCG template and read its certificate.

        The key is flushed again; only its public part is returned. DER
        certificates padded in NV are trimmed to their DER length.
        """
        if key_type not in KEY_TYPES:
            raise ValueError(f"unknown key type {key_type!r}")
        with self._lock:
            handle, public = self._create_ek(key_type)
            with self._command("FlushContext"):
                self.esys.flush_context(handle)
            cert = self.nv_read(EK_CERT_NV_INDEX[key_type])
            return EkInfo(key_type, public, trim_der(cert) if cert else None)

    def ensure_ak(self, key_type: str, handle: int) -> AkInfo:
        """Load the persistent AK at ``handle``, creating and persisting it if absent.

        The AK is a primary key of the endorsement hierarchy made from
        :func:`~soapattest.agent.templates.ak_template`, persisted with
        TPM2_EvictControl (owner authorization, empty). An existing object at
        ``handle`` is reused only if it was made from the same template kind;
        otherwise :class:`TpmError` is raised (the agent never evicts a key it
        did not verify as its own).
        """
        if key_type not in KEY_TYPES:
            raise ValueError(f"unknown AK type {key_type!r}")
        if not 0x81000000 <= handle <= 0x81FFFFFF:
            raise ValueError(f"AK handle 0x{handle:08x} is not a persistent handle")
        wanted = parse_public(ak_template(key_type))
        with self._lock:
            with self._command("GetCapability"):
                _, cap = self.esys.get_capability(TPM2_CAP.HANDLES, handle, 1)
            created = handle not in [int(h) for h in cap.data.handles]
            if created:
                tmpl, _ = TPM2B_PUBLIC.unmarshal(ak_template(key_type))
                with self._command("CreatePrimary"):
                    transient, *_ = self.esys.create_primary(None, tmpl, ESYS_TR.ENDORSEMENT)
                with self._command("EvictControl"):
                    try:
                        self.esys.evict_control(ESYS_TR.OWNER, transient, handle)
                    finally:
                        self.esys.flush_context(transient)
                log.info("created AK (%s) at persistent handle 0x%08x", key_type, handle)
            with self._command("ReadPublic"):
                tr = self.esys.tr_from_tpmpublic(handle)
                public, name, _ = self.esys.read_public(tr)
                self.esys.tr_close(tr)
            pub_bytes = bytes(public.marshal())
            if not same_key_kind(parse_public(pub_bytes), wanted):
                raise TpmError(
                    f"persistent handle 0x{handle:08x} holds a key that is not a {key_type} AK "
                    "of the soapattest template; configure another ak_handle or evict it",
                    command="ReadPublic",
                )
            self._ak_handle = handle
            self._ak_tr = None
            self._ak_scheme_hash = HASH_ALGORITHMS[wanted.scheme_hash].name
            return AkInfo(key_type, handle, pub_bytes, bytes(name.marshal())[2:], created)

    def _ak(self) -> Any:
        """The AK's ESYS_TR, resolved once per connection (TPM2_ReadPublic)."""
        if self._ak_handle is None:
            raise TpmError("no AK loaded (call ensure_ak first)", command="Quote")
        if self._ak_tr is None:
            with self._command("ReadPublic"):
                self._ak_tr = self.esys.tr_from_tpmpublic(self._ak_handle)
        return self._ak_tr

    # ------------------------------------------------------------------ PCRs and quotes

    def _read_pcrs(self, selection: PcrSelection) -> tuple[int, PcrValues]:
        """Read every selected PCR (several TPM2_PCR_Read calls: 8 digests at most per call).

        Raises :class:`_PcrsChanged` when the pcrUpdateCounter moves between calls.
        """
        remaining = {bank: set(idx) for bank, idx in selection.banks}
        values: PcrValues = {bank: {} for bank, _ in selection.banks}
        counter: int | None = None
        while any(remaining.values()):
            ask = PcrSelection.from_mapping({b: sorted(i) for b, i in remaining.items() if i})
            with self._command("PCR_Read"):
                cnt, got_sel, digests = self.esys.pcr_read(_tpml_selection(ask))
            if counter is None:
                counter = int(cnt)
            elif int(cnt) != counter:
                raise _PcrsChanged
            got = digest_list(bytes(digests.marshal()))
            pos = 0
            for bank, indices in pcr_selection_from_bytes(bytes(got_sel.marshal())).banks:
                for i in indices:
                    if pos < len(got) and i in remaining.get(bank, ()):
                        values[bank][i] = got[pos]
                        remaining[bank].discard(i)
                    pos += 1
            if pos == 0:
                missing = {b: sorted(i) for b, i in remaining.items() if i}
                raise TpmError(f"TPM returned no value for PCRs {missing}", command="PCR_Read")
        assert counter is not None
        return counter, values

    def read_pcrs(self, selection: PcrSelection) -> tuple[int, PcrValues]:
        """``(pcrUpdateCounter, values)`` of ``selection``, read consistently (retried)."""
        with self._lock:
            for _ in range(self.quote_attempts):
                try:
                    return self._read_pcrs(selection)
                except _PcrsChanged:
                    continue
            raise PcrsChangingError("PCRs kept changing while being read",
                                    attempts=self.quote_attempts)

    def _update_counter(self, selection: PcrSelection) -> int:
        probe = PcrSelection.from_mapping({selection.banks[0][0]: [selection.banks[0][1][0]]})
        with self._command("PCR_Read"):
            cnt, _, _ = self.esys.pcr_read(_tpml_selection(probe))
        return int(cnt)

    def quote(self, nonce: bytes, selection: PcrSelection) -> QuoteResult:
        """TPM2_Quote over ``selection`` with ``nonce`` as qualifyingData, plus the PCR values.

        Steps (TPM 2.0 Part 3, 18.4 TPM2_Quote; Part 3, 22.4 TPM2_PCR_Read):
        1. read the selected PCRs and the pcrUpdateCounter;
        2. quote with the AK's own scheme (ECDSA/RSASSA with SHA-256);
        3. read the counter again; check that the quote's pcrDigest is the
           hash of the values read in 1 (this also covers PCRs whose extend
           does not increment the counter, such as PCR 16 and 23);
        4. if either check fails, start again (``quote_attempts`` times),
           then raise :class:`PcrsChangingError`.

        The caller validates ``nonce`` (1..64 bytes) and ``selection``
        (banks active on this TPM). Raises :class:`TpmError`.
        """
        with self._lock:
            for attempt in range(1, self.quote_attempts + 1):
                try:
                    counter, values = self._read_pcrs(selection)
                except _PcrsChanged:
                    continue
                ak = self._ak()
                with self._command("Quote"):
                    attest, sig = self.esys.quote(
                        ak, _tpml_selection(selection), nonce,
                        TPMT_SIG_SCHEME(scheme=TpmAlg.NULL),  # the AK's own scheme
                    )
                attest_bytes = bytes(attest)  # TPM2B_ATTEST buffer: the TPMS_ATTEST
                if self._update_counter(selection) != counter:
                    log.info("PCRs changed during quote attempt %d; retrying", attempt)
                    continue
                quoted = parse_attest(attest_bytes).quote
                expected = pcr_digest(self._ak_scheme_hash, selection, values)
                if quoted is None or quoted.pcr_digest != expected:
                    log.info("quoted PCR digest differs from values read (attempt %d)", attempt)
                    continue
                return QuoteResult(attest_bytes, bytes(sig.marshal()), values, counter, attempt)
            raise PcrsChangingError(
                f"PCRs changed during each of {self.quote_attempts} quote attempts",
                attempts=self.quote_attempts,
            )

    # ------------------------------------------------------------------ credentials

    def activate_credential(self, ek_type: str, credential_blob: bytes, secret: bytes) -> bytes:
        """TPM2_ActivateCredential (Part 3, 12.5) with the AK and the EK of ``ek_type``.

        ``credential_blob`` is a marshalled TPM2B_ID_OBJECT, ``secret`` a
        marshalled TPM2B_ENCRYPTED_SECRET (as TPM2_MakeCredential outputs
        them). The EK is used through a policy session satisfying its TCG
        policy, PolicySecret(TPM_RH_ENDORSEMENT); the AK (ADMIN role) with its
        empty password. Returns the decrypted credential (certInfo).

        Raises ``ValueError`` when the blobs do not unmarshal exactly,
        :class:`CredentialRejectedError` when the TPM refuses them (not made
        for this EK and AK), :class:`TpmError` for other failures.
        """
        blob = _unmarshal_exact(TPM2B_ID_OBJECT, credential_blob, "credential_blob")
        enc = _unmarshal_exact(TPM2B_ENCRYPTED_SECRET, secret, "encrypted_secret")
        with self._lock:
            ak = self._ak()
            ek, _ = self._create_ek(ek_type)
            session = None
            try:
                with self._command("StartAuthSession"):
                    session = self.esys.start_auth_session(
                        ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY,
                        TPMT_SYM_DEF(algorithm=TpmAlg.NULL), TpmAlg.SHA256,
                    )
                with self._command("PolicySecret"):
                    self.esys.policy_secret(ESYS_TR.ENDORSEMENT, session)
                try:
                    cert_info = self.esys.activate_credential(
                        ak, ek, blob, enc, session1=ESYS_TR.PASSWORD, session2=session
                    )
                except TSS2_Exception as exc:
                    rc = _rc(exc)
                    if rc is not None and rc & _RC_LAYER_MASK == _TCTI_LAYER:
                        self._disconnect()
                        raise TpmError(f"TPM2_ActivateCredential failed: {exc}",
                                       command="ActivateCredential", rc=rc) from exc
                    raise CredentialRejectedError(
                        f"the TPM refused the credential: {exc}", rc=rc
                    ) from exc
                return bytes(cert_info)
            finally:
                self._flush_quietly(session, ek)

    def _flush_quietly(self, *handles: Any) -> None:
        for h in handles:
            if h is None or self._esys is None:
                continue
            try:
                self._esys.flush_context(h)
            except Exception:
                log.debug("flush failed", exc_info=True)

    # ------------------------------------------------------------------ simulator support

    def startup(self, locality: int = 0) -> None:
        """TPM2_Startup(CLEAR) issued at ``locality`` (0 or 3), then back to locality 0.

        Only for simulators (swtpm started without ``startup-clear``): a PC
        Client TPM initialises PCR 0 to the startup locality, which is how a
        platform whose firmware starts the TPM from locality 3 shows up in the
        event log (StartupLocality event). Raises :class:`TpmError`.
        """
        if locality not in (0, 3):
            raise ValueError("TPM2_Startup locality must be 0 or 3")
        with self._lock, self._command("Startup"):
            if locality:
                self._tctildr.set_locality(locality)
            try:
                self.esys.startup(TPM2_SU.CLEAR)
            finally:
                if locality:
                    self._tctildr.set_locality(0)

    def pcr_extend(self, pcr: int, digests: Mapping[str, bytes]) -> None:
        """TPM2_PCR_Extend of PCR ``pcr`` with one digest per bank (``{"sha256": ...}``).

        Used by the simulator to replay an event log into a swtpm.
        """
        if not 0 <= pcr <= 23:
            raise ValueError(f"PCR {pcr} outside 0..23")
        wire = [len(digests).to_bytes(4, "big")]  # TPML_DIGEST_VALUES (Part 2, 10.9.8)
        for bank, digest in digests.items():
            alg = HASH_BY_NAME.get(bank)
            if alg is None or len(digest) != alg.digest_size:
                raise ValueError(f"bad {bank} digest for PCR {pcr}")
            wire.append(int(alg.alg).to_bytes(2, "big") + digest)
        values, _ = TPML_DIGEST_VALUES.unmarshal(b"".join(wire))
        with self._lock, self._command("PCR_Extend"):
            self.esys.pcr_extend(ESYS_TR(pcr), values)

    def provision_ek_certificate(self, key_type: str, der: bytes) -> None:
        """Store an EK certificate at its TCG NV index (platform hierarchy, empty auth).

        Manufacturing step for simulated TPMs: defines the index with the
        attributes TPM vendors use (platform-created, PP-write, owner/auth/PP
        read, no DA) and writes ``der``. Raises :class:`TpmError`.
        """
        index = EK_CERT_NV_INDEX[key_type]
        attrs = (TPMA_NV.PLATFORMCREATE | TPMA_NV.PPWRITE | TPMA_NV.PPREAD | TPMA_NV.OWNERREAD
                 | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA | TPMA_NV.WRITEDEFINE)
        pub = TPM2B_NV_PUBLIC(nvPublic=TPMS_NV_PUBLIC(
            nvIndex=index, nameAlg=TpmAlg.SHA256, attributes=attrs, dataSize=len(der)))
        with self._lock:
            with self._command("NV_DefineSpace"):
                tr = self.esys.nv_define_space(None, pub, ESYS_TR.PLATFORM)
            chunk = self._properties(0x12C, 1).get(0x12C, _NV_CHUNK_DEFAULT) or _NV_CHUNK_DEFAULT
            with self._command("NV_Write"):
                for off in range(0, len(der), chunk):
                    self.esys.nv_write(tr, der[off : off + chunk], off, ESYS_TR.PLATFORM)
                self.esys.tr_close(tr)

    def shutdown(self) -> None:
        """TPM2_Shutdown(CLEAR): an orderly power-off (next Startup is a TPM Reset)."""
        with self._lock, self._command("Shutdown"):
            self.esys.shutdown(TPM2_SU.CLEAR)


def _unmarshal_exact(cls: Any, data: bytes, what: str) -> Any:
    """``cls.unmarshal(data)`` consuming every byte, else ``ValueError`` naming ``what``."""
    try:
        value, used = cls.unmarshal(data)
    except (TSS2_Exception, TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not a valid {cls.__name__}: {exc}") from None
    if used != len(data):
        raise ValueError(f"{what} has {len(data) - used} trailing bytes")
    return value


__all__ = [
    "AkInfo",
    "EkInfo",
    "QuoteResult",
    "TpmAccess",
    "TpmInfo",
    "parse_tcti",
]
