"""TPMS_ATTEST: the structure a TPM signs in TPM2_Quote, TPM2_Certify, ... (Part 2, 10.12).

:func:`parse_attest` is on the server's hot path: it reads the wire bytes
directly with :class:`~soapattest.tpm.reader.Reader` and refuses anything
the specification does not allow, but it does *not* judge what the verifier
judges (magic, type expected, nonce): those are numbered verification steps
in :mod:`soapattest.verify`.

Size bounds (Part 2 with SHA-512 as the largest implemented hash):

* TPM2B_NAME (qualifiedSigner, names): ``sizeof(TPMU_NAME)`` = 2 + 64 = 66 bytes.
* TPM2B_DATA (extraData): ``sizeof(TPMT_HA)`` = 2 + 64 = 66 bytes, as the
  TPM's own unmarshalling allows (the verifier compares it with its nonce).
* TPM2B_DIGEST: ``sizeof(TPMU_HA)`` = 64 bytes.
* TPM2B_MAX_NV_BUFFER: 2048 bytes (MAX_NV_BUFFER_SIZE is vendor-defined; 1024
  and 2048 are the values seen in practice).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from soapattest.errors import InvalidValueError, UnknownAlgorithmError, UnknownAttestTypeError
from soapattest.tpm.constants import HASH_ALGORITHMS, TpmSt
from soapattest.tpm.pcr import PcrSelection, parse_pcr_selection
from soapattest.tpm.reader import Reader

NAME_MAX = 66
DATA_MAX = 66
DIGEST_MAX = 64
NV_BUFFER_MAX = 2048

_STRUCT = "TPMS_ATTEST"
_HEAD = struct.Struct(">IH")
_CLOCK_FW = struct.Struct(">QIIBQ")  # TPMS_CLOCK_INFO then firmwareVersion
_CLOCK = struct.Struct(">QIIB")
_QUOTE = int(TpmSt.ATTEST_QUOTE)


@dataclass(frozen=True)
class ClockInfo:
    """TPMS_CLOCK_INFO (Part 2, 10.11.1). ``safe`` is TPMI_YES_NO."""

    clock: int
    reset_count: int
    restart_count: int
    safe: bool


@dataclass(frozen=True)
class QuoteInfo:
    """TPMS_QUOTE_INFO (Part 2, 10.12.1): the quoted selection and the digest of its values."""

    pcr_select: PcrSelection
    pcr_digest: bytes


@dataclass(frozen=True, slots=True)
class CertifyInfo:
    """TPMS_CERTIFY_INFO (Part 2, 10.12.3)."""

    name: bytes
    qualified_name: bytes


@dataclass(frozen=True, slots=True)
class CreationInfo:
    """TPMS_CREATION_INFO (Part 2, 10.12.7)."""

    object_name: bytes
    creation_hash: bytes


@dataclass(frozen=True, slots=True)
class CommandAuditInfo:
    """TPMS_COMMAND_AUDIT_INFO (Part 2, 10.12.5)."""

    audit_counter: int
    digest_alg: int
    audit_digest: bytes
    command_digest: bytes


@dataclass(frozen=True, slots=True)
class SessionAuditInfo:
    """TPMS_SESSION_AUDIT_INFO (Part 2, 10.12.4)."""

    exclusive_session: bool
    session_digest: bytes


@dataclass(frozen=True, slots=True)
class TimeAttestInfo:
    """TPMS_TIME_ATTEST_INFO (Part 2, 10.12.2): TPMS_TIME_INFO then firmwareVersion."""

    time: int
    clock_info: ClockInfo
    firmware_version: int


@dataclass(frozen=True, slots=True)
class NvCertifyInfo:
    """TPMS_NV_CERTIFY_INFO (Part 2, 10.12.8)."""

    index_name: bytes
    offset: int
    nv_contents: bytes


@dataclass(frozen=True, slots=True)
class NvDigestCertifyInfo:
    """TPMS_NV_DIGEST_CERTIFY_INFO (Part 2, 10.12.9)."""

    index_name: bytes
    nv_digest: bytes


AttestedInfo = (
    QuoteInfo
    | CertifyInfo
    | CreationInfo
    | CommandAuditInfo
    | SessionAuditInfo
    | TimeAttestInfo
    | NvCertifyInfo
    | NvDigestCertifyInfo
)


@dataclass(frozen=True)
class Attest:
    """A parsed TPMS_ATTEST. Nothing in it is verified: it is what the bytes say.

    ``quote`` is set when ``type`` is TPM_ST_ATTEST_QUOTE; ``attested`` holds
    the parsed TPMU_ATTEST body for every type (the same object as ``quote``
    for quotes). ``raw`` is the exact buffer parsed: what the signature covers.
    """

    magic: int
    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock_info: ClockInfo
    firmware_version: int
    quote: QuoteInfo | None
    attested: AttestedInfo | None
    raw: bytes


# Hot path: the per-quote objects are built without the generated frozen
# __init__ (which pays one object.__setattr__ per field, the largest share of
# parse time); the state is exactly what ``Cls(...)`` would set - the round-trip
# tests compare the two.
_new = object.__new__
_set = object.__setattr__


def _clock_info(clock: int, reset_count: int, restart_count: int, safe: bool) -> ClockInfo:
    obj = _new(ClockInfo)
    _set(
        obj,
        "__dict__",
        {"clock": clock, "reset_count": reset_count, "restart_count": restart_count, "safe": safe},
    )
    return obj


def _yes_no(value: int, what: str, r: Reader, at: int) -> bool:
    if value > 1:
        raise InvalidValueError(
            f"{what} is {value}, TPMI_YES_NO allows 0 or 1", structure=r.structure, offset=at
        )
    return value == 1


def _quote(r: Reader) -> QuoteInfo:
    sel = parse_pcr_selection(r)
    obj = _new(QuoteInfo)
    digest = r.tpm2b("TPMS_QUOTE_INFO.pcrDigest", max_size=DIGEST_MAX)
    _set(obj, "__dict__", {"pcr_select": sel, "pcr_digest": digest})
    return obj


def _certify(r: Reader) -> CertifyInfo:
    name = r.tpm2b("TPMS_CERTIFY_INFO.name", max_size=NAME_MAX)
    return CertifyInfo(name, r.tpm2b("TPMS_CERTIFY_INFO.qualifiedName", max_size=NAME_MAX))


def _creation(r: Reader) -> CreationInfo:
    name = r.tpm2b("TPMS_CREATION_INFO.objectName", max_size=NAME_MAX)
    return CreationInfo(name, r.tpm2b("TPMS_CREATION_INFO.creationHash", max_size=DIGEST_MAX))


def _command_audit(r: Reader) -> CommandAuditInfo:
    counter = r.u64("TPMS_COMMAND_AUDIT_INFO.auditCounter")
    at = r.pos
    alg = r.u16("TPMS_COMMAND_AUDIT_INFO.digestAlg")
    if alg not in HASH_ALGORITHMS:
        raise UnknownAlgorithmError(
            f"audit digestAlg 0x{alg:04x} is not a known hash",
            alg=alg,
            structure=r.structure,
            offset=at,
        )
    audit = r.tpm2b("TPMS_COMMAND_AUDIT_INFO.auditDigest", max_size=DIGEST_MAX)
    command = r.tpm2b("TPMS_COMMAND_AUDIT_INFO.commandDigest", max_size=DIGEST_MAX)
    return CommandAuditInfo(counter, alg, audit, command)


def _session_audit(r: Reader) -> SessionAuditInfo:
    at = r.pos
    exclusive = _yes_no(r.u8("TPMS_SESSION_AUDIT_INFO.exclusiveSession"), "exclusiveSession", r, at)
    digest = r.tpm2b("TPMS_SESSION_AUDIT_INFO.sessionDigest", max_size=DIGEST_MAX)
    return SessionAuditInfo(exclusive, digest)


def _time(r: Reader) -> TimeAttestInfo:
    time = r.u64("TPMS_TIME_INFO.time")
    at = r.pos
    clock, reset, restart, safe = r.unpack(_CLOCK, "TPMS_CLOCK_INFO")
    info = _clock_info(clock, reset, restart, _yes_no(safe, "clockInfo.safe", r, at + 16))
    return TimeAttestInfo(time, info, r.u64("TPMS_TIME_ATTEST_INFO.firmwareVersion"))


def _nv(r: Reader) -> NvCertifyInfo:
    name = r.tpm2b("TPMS_NV_CERTIFY_INFO.indexName", max_size=NAME_MAX)
    offset = r.u16("TPMS_NV_CERTIFY_INFO.offset")
    contents = r.tpm2b("TPMS_NV_CERTIFY_INFO.nvContents", max_size=NV_BUFFER_MAX)
    return NvCertifyInfo(name, offset, contents)


def _nv_digest(r: Reader) -> NvDigestCertifyInfo:
    name = r.tpm2b("TPMS_NV_DIGEST_CERTIFY_INFO.indexName", max_size=NAME_MAX)
    digest = r.tpm2b("TPMS_NV_DIGEST_CERTIFY_INFO.nvDigest", max_size=DIGEST_MAX)
    return NvDigestCertifyInfo(name, digest)


_BODIES: dict[int, Callable[[Reader], AttestedInfo]] = {
    TpmSt.ATTEST_QUOTE: _quote,
    TpmSt.ATTEST_CERTIFY: _certify,
    TpmSt.ATTEST_CREATION: _creation,
    TpmSt.ATTEST_COMMAND_AUDIT: _command_audit,
    TpmSt.ATTEST_SESSION_AUDIT: _session_audit,
    TpmSt.ATTEST_TIME: _time,
    TpmSt.ATTEST_NV: _nv,
    TpmSt.ATTEST_NV_DIGEST: _nv_digest,
}


def parse_attest(data: bytes) -> Attest:
    """Parse a whole buffer as one TPMS_ATTEST (the contents of a TPM2B_ATTEST).

    ``magic`` is returned as found (the verifier checks it as its own step).
    ``type`` must be a TPMI_ST_ATTEST value; every TPM2B is bounded as the
    module docstring says; TPMI_YES_NO fields must be 0 or 1; the PCR
    selection follows :func:`~soapattest.tpm.pcr.parse_pcr_selection`.

    Raises (all :class:`~soapattest.errors.TpmFormatError`):
    :class:`TruncatedError`, :class:`TrailingBytesError`,
    :class:`UnknownAttestTypeError`, :class:`InvalidValueError` (oversize
    TPM2B, bad TPMI_YES_NO), :class:`UnknownAlgorithmError`,
    :class:`InvalidPcrSelectionError`.

    Security: the result is untrusted until the signature over ``raw`` has
    been verified with the AK.
    """
    raw = bytes(data)
    r = Reader(raw, _STRUCT)
    magic, st = r.unpack(_HEAD, "TPMS_ATTEST.magic/type")
    body = _BODIES.get(st)
    if body is None:
        raise UnknownAttestTypeError(
            f"type 0x{st:04x} is not a TPMI_ST_ATTEST", attest_type=st, structure=_STRUCT, offset=4
        )
    signer = r.tpm2b("TPMS_ATTEST.qualifiedSigner", max_size=NAME_MAX)
    extra = r.tpm2b("TPMS_ATTEST.extraData", max_size=DATA_MAX)
    at = r.pos
    clock, reset, restart, safe, firmware = r.unpack(_CLOCK_FW, "TPMS_ATTEST.clockInfo")
    clock_info = _clock_info(clock, reset, restart, _yes_no(safe, "clockInfo.safe", r, at + 16))
    attested = body(r)
    r.done()
    obj = _new(Attest)
    _set(
        obj,
        "__dict__",
        {
            "magic": magic,
            "type": st,
            "qualified_signer": signer,
            "extra_data": extra,
            "clock_info": clock_info,
            "firmware_version": firmware,
            "quote": attested if st == _QUOTE else None,
            "attested": attested,
            "raw": raw,
        },
    )
    return obj
