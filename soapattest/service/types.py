# mypy: allow-subclassing-any, allow-untyped-decorators
"""SOAP wire types of the attestation service (namespace ``urn:soapattest:v1``).

These Spyne models exist only at the SOAP edge: :mod:`soapattest.service.convert`
turns them into domain dataclasses and back. Every type and field carries
documentation and constraints that end up in the WSDL; binary values are
``xs:base64Binary``, times ``xs:dateTime`` in UTC, lists are repeated elements.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from spyne import ComplexModel
from spyne.model.binary import ByteArray
from spyne.model.primitive import (
    Boolean,
    DateTime,
    Unicode,
    UnsignedInteger32,
    UnsignedInteger64,
)

NS = "urn:soapattest:v1"
NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9._-]{0,62}"


M = TypeVar("M", bound=ComplexModel)
_IMMUTABLE = (type(None), str, int, bool, bytes)


@functools.cache
def _blank(cls: type[ComplexModel]) -> dict[str, Any] | None:
    """The attributes Spyne gives a fresh instance of ``cls`` (None: not all immutable)."""
    state = dict(cls().__dict__)
    return state if all(isinstance(v, _IMMUTABLE) for v in state.values()) else None


def new(cls: type[M], **values: Any) -> M:
    """``cls(**values)`` for a response object, without Spyne's per-instance walk over the
    type's fields (the defaults are taken once from a real instance). Responses are built
    by the thousand; the walk cost more than writing them out."""
    blank = _blank(cls)  # type: ignore[arg-type]  # classes are hashable
    if blank is None:
        made: M = cls(**values)
        return made
    inst = object.__new__(cls)
    state = inst.__dict__
    state.update(blank)
    state.update(values)
    return inst


def req(model: Any, **kw: Any) -> Any:
    """A mandatory element (minOccurs=1, not nillable)."""
    return model.customize(min_occurs=1, nillable=False, **kw)


def opt(model: Any, **kw: Any) -> Any:
    """An optional element."""
    return model.customize(min_occurs=0, **kw)


def many(model: Any, *, min_occurs: int = 0, max_occurs: Any = "unbounded", **kw: Any) -> Any:
    """A repeated element."""
    return model.customize(min_occurs=min_occurs, max_occurs=max_occurs, nillable=False, **kw)


Name = Unicode(
    type_name="Name",
    __namespace__=NS,
    min_len=1,
    max_len=63,
    pattern=NAME_PATTERN,
    doc="A host, pool, whitelist or policy name: letters, digits, '.', '_', '-'.",
)
Bank = Unicode(
    type_name="PcrBank",
    __namespace__=NS,
    values=["sha1", "sha256", "sha384", "sha512", "sm3_256"],
    doc="PCR bank (hash algorithm).",
)
PcrIndex = UnsignedInteger32(type_name="PcrIndex", __namespace__=NS, le=23, doc="PCR index 0..23.")
Text = Unicode(type_name="Text", __namespace__=NS, max_len=1024, doc="Free text.")
Url = Unicode(
    type_name="AgentUrl",
    __namespace__=NS,
    min_len=8,
    max_len=2048,
    pattern="https?://.+",
    doc="http(s) URL of a host's trust agent.",
)
Binary = ByteArray  # xs:base64Binary
TrustStatus = Unicode(
    type_name="TrustStatus",
    __namespace__=NS,
    values=["TRUSTED", "UNTRUSTED", "UNKNOWN"],
    doc="TRUSTED: every check passed; UNTRUSTED: a check failed; UNKNOWN: undecided.",
)
CheckStatus = Unicode(
    type_name="CheckStatus",
    __namespace__=NS,
    values=["PASS", "FAIL", "ERROR", "INFO"],
    doc="PASS, FAIL (evidence contradicts policy), ERROR (could not check), INFO.",
)
EntryKind = Unicode(
    type_name="EntryKind",
    __namespace__=NS,
    values=["pcr", "event", "ima"],
    doc="pcr: a final PCR value; event: an event digest in a PCR; ima: a file hash for a path.",
)
Combine = Unicode(
    type_name="Combine",
    __namespace__=NS,
    values=["ALL_OF", "ANY_OF"],
    doc="ALL_OF: every whitelist must match; ANY_OF: at least one.",
)
ImportMode = Unicode(
    type_name="ImportMode",
    __namespace__=NS,
    values=["CREATE", "NEW_VERSION", "MERGE"],
    doc="CREATE: new whitelist; NEW_VERSION: replace entries in a new version; MERGE: add.",
)
ImaMode = Unicode(
    type_name="ImaMode",
    __namespace__=NS,
    values=["off", "integrity", "allowlist"],
    doc="off; integrity: IMA list replays to PCR 10 with boot_aggregate; allowlist: and files.",
)


class Label(ComplexModel):
    """A host label (asset tag): key and value."""

    __namespace__ = NS
    _type_info = [
        ("key", req(Unicode, max_len=63, pattern="[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")),
        ("value", req(Unicode, max_len=128)),
    ]


class PcrSelection(ComplexModel):
    """PCRs of one bank."""

    __namespace__ = NS
    _type_info = [("bank", req(Bank)), ("pcr", many(PcrIndex, min_occurs=1, max_occurs=24))]


class PcrValue(ComplexModel):
    """One PCR value of one bank."""

    __namespace__ = NS
    _type_info = [
        ("bank", req(Bank)),
        ("index", req(PcrIndex)),
        ("value", req(Binary, doc="The PCR value (digest size of the bank).")),
    ]


class HostInfo(ComplexModel):
    """A registered host and its TPM identity."""

    __namespace__ = NS
    _type_info = [
        ("name", req(Name)),
        ("agent_url", req(Url)),
        ("pool", opt(Name)),
        ("policy", opt(Name, doc="The host's own policy (a pool policy applies otherwise).")),
        ("effective_policy", opt(Name, doc="The policy attestation uses for this host.")),
        ("labels", many(Label, max_occurs=32)),
        ("description", opt(Text)),
        ("ak_name", opt(Binary, doc="TPM name of the attestation key.")),
        ("ek_certificate", opt(Binary, doc="DER EK certificate that was validated.")),
        ("activated_at", opt(DateTime, doc="When credential activation bound the AK.")),
        ("reset_count", opt(UnsignedInteger32, doc="resetCount of the last verified quote.")),
        ("created_at", opt(DateTime)),
    ]


class HostList(ComplexModel):
    """A page of hosts."""

    __namespace__ = NS
    _type_info = [("host", many(HostInfo)), ("total", req(UnsignedInteger32))]


class Check(ComplexModel):
    """One verification step of a trust report."""

    __namespace__ = NS
    _type_info = [
        ("id", req(Unicode, max_len=64, doc="Stable step id, e.g. quote.signature.")),
        ("component", req(Unicode, max_len=128, doc="quote, eventlog, whitelist:<name>, ...")),
        ("status", req(CheckStatus)),
        ("reason", req(Unicode, doc="A sentence an operator can read.")),
        ("expected", opt(Unicode)),
        ("actual", opt(Unicode)),
        ("pcr", opt(PcrIndex)),
        ("bank", opt(Bank)),
        ("event_index", opt(UnsignedInteger32)),
    ]


class WhitelistVersion(ComplexModel):
    """A whitelist name and version."""

    __namespace__ = NS
    _type_info = [("name", req(Name)), ("version", req(UnsignedInteger32))]


class TrustReport(ComplexModel):
    """An immutable evaluation of a host: the verdict and every check."""

    __namespace__ = NS
    _type_info = [
        ("report_id", req(UnsignedInteger64)),
        ("host", req(Name)),
        ("status", req(TrustStatus)),
        ("created_at", req(DateTime)),
        ("policy", opt(Name)),
        ("policy_version", opt(UnsignedInteger32)),
        ("whitelist", many(WhitelistVersion)),
        ("check", many(Check)),
        ("pcr", many(PcrValue, doc="PCR values verified by the quote signature.")),
        ("reset_count", opt(UnsignedInteger32)),
        ("restart_count", opt(UnsignedInteger32)),
        ("clock", opt(UnsignedInteger64)),
        ("firmware_version", opt(UnsignedInteger64)),
        ("reboot_detected", opt(Boolean)),
        ("event_log_sha256", opt(Binary)),
    ]


class ReportList(ComplexModel):
    """A page of trust reports, newest first."""

    __namespace__ = NS
    _type_info = [("report", many(TrustReport)), ("total", req(UnsignedInteger32))]


class HostTrust(ComplexModel):
    """The trust of one host in a bulk answer: a report, or the fault that prevented one."""

    __namespace__ = NS
    _type_info = [
        ("host", req(Unicode, max_len=128)),
        ("status", opt(TrustStatus, doc="Absent when no report could be made (see fault).")),
        ("cached", req(Boolean, doc="True when served from a report younger than max_age.")),
        ("report", opt(TrustReport)),
        ("fault_code", opt(Unicode, doc="Why no report was made (e.g. Client.UnknownHost).")),
        ("fault_string", opt(Unicode)),
    ]


class Quote(ComplexModel):
    """A quote and the PCR values it covers."""

    __namespace__ = NS
    _type_info = [
        ("attest", req(Binary, doc="TPMS_ATTEST bytes.")),
        ("signature", req(Binary, doc="TPMT_SIGNATURE bytes.")),
        ("pcr", many(PcrValue, min_occurs=1)),
    ]


class RetrievedQuote(ComplexModel):
    """A fresh quote fetched from a host, verified with its AK, and its event log."""

    __namespace__ = NS
    _type_info = [
        ("nonce", req(Binary)),
        ("quote", req(Quote)),
        ("event_log", opt(Binary, doc="The host's measured-boot event log.")),
    ]


class Event(ComplexModel):
    """One event-log event (type as logged: not trusted by itself)."""

    __namespace__ = NS
    _type_info = [
        ("index", req(UnsignedInteger32)),
        ("pcr", req(UnsignedInteger32)),
        ("type", req(Unicode, max_len=64)),
        ("digest", many(PcrValue, doc="One digest per bank (index = the event's PCR).")),
        ("summary", opt(Unicode)),
        ("trusted", req(Boolean, doc="True when the quote vouches for this event's PCR.")),
    ]


class Measurements(ComplexModel):
    """Verified PCR values and the decoded event log of the newest report."""

    __namespace__ = NS
    _type_info = [
        ("host", req(Name)),
        ("report_id", req(UnsignedInteger64)),
        ("pcr", many(PcrValue)),
        ("event", many(Event)),
    ]


class WhitelistEntry(ComplexModel):
    """A golden measurement."""

    __namespace__ = NS
    _type_info = [
        ("kind", req(EntryKind)),
        ("bank", req(Bank, doc="PCR bank; for ima entries the file hash algorithm.")),
        ("pcr", req(PcrIndex)),
        ("digest", req(Binary)),
        ("path", opt(Unicode, max_len=4096, doc="File path (ima entries only).")),
        ("label", opt(Unicode, max_len=256, doc="Description; never used for matching.")),
    ]


class Whitelist(ComplexModel):
    """One version of a whitelist."""

    __namespace__ = NS
    _type_info = [
        ("name", req(Name)),
        ("version", req(UnsignedInteger32)),
        ("description", opt(Text)),
        ("created_at", opt(DateTime)),
        ("created_by", opt(Unicode, max_len=128)),
        ("source_host", opt(Unicode, max_len=63)),
        ("entry_count", req(UnsignedInteger32)),
        ("entry", many(WhitelistEntry)),
    ]


class WhitelistRef(ComplexModel):
    """A whitelist by name; version absent means the latest at evaluation time."""

    __namespace__ = NS
    _type_info = [("name", req(Name)), ("version", opt(UnsignedInteger32))]


class SecureBootRequirements(ComplexModel):
    """UEFI Secure Boot rules on the PCR 7 events."""

    __namespace__ = NS
    _type_info = [
        ("require_enabled", req(Boolean)),
        ("dbx_must_contain", many(Binary, doc="SHA-256 hashes that dbx must revoke.")),
        (
            "allowed_authority",
            many(Binary, doc="SHA-256 fingerprints of db certificates allowed to verify images."),
        ),
    ]


class ImaRequirements(ComplexModel):
    """IMA appraisal mode and bank."""

    __namespace__ = NS
    _type_info = [("mode", req(ImaMode)), ("bank", req(Bank))]


class Policy(ComplexModel):
    """One version of a policy: whitelists combined, banks, extra rules."""

    __namespace__ = NS
    _type_info = [
        ("name", req(Name)),
        ("version", opt(UnsignedInteger32, doc="Set by the server.")),
        ("combine", req(Combine)),
        ("whitelist", many(WhitelistRef, min_occurs=1, max_occurs=64)),
        ("bank", many(Bank, min_occurs=1, max_occurs=5, doc="Banks every quote must cover.")),
        ("use_event_log", opt(Boolean, doc="Appraise the event log (default true).")),
        ("secure_boot", opt(SecureBootRequirements)),
        ("ima", opt(ImaRequirements)),
        (
            "signature_hash",
            many(Unicode, max_occurs=4, doc="Accepted AK hashes (default sha256+)."),
        ),
        ("min_rsa_bits", opt(UnsignedInteger32)),
        ("min_ecc_bits", opt(UnsignedInteger32)),
        ("description", opt(Text)),
        ("created_at", opt(DateTime)),
        ("created_by", opt(Unicode, max_len=128)),
    ]


class PoolInfo(ComplexModel):
    """A pool, its policy and its size."""

    __namespace__ = NS
    _type_info = [
        ("name", req(Name)),
        ("policy", opt(Name)),
        ("host_count", req(UnsignedInteger32)),
    ]


class WorkloadRequirements(ComplexModel):
    """What a workload requires of a host beyond a TRUSTED newest report."""

    __namespace__ = NS
    _type_info = [
        ("max_report_age", opt(UnsignedInteger32, doc="Seconds (default 3600).")),
        ("pool", many(Name, max_occurs=64)),
        ("policy", many(Name, max_occurs=64)),
        ("label", many(Label, max_occurs=32)),
        ("component", many(Unicode, max_occurs=32, doc="Components that must be TRUSTED.")),
    ]


class PlacementDecision(ComplexModel):
    """Allow or deny, with every reason."""

    __namespace__ = NS
    _type_info = [
        ("host", req(Name)),
        ("allowed", req(Boolean)),
        ("reason", many(Unicode)),
        ("report_id", opt(UnsignedInteger64)),
    ]


class TrustAssertion(ComplexModel):
    """A signed SAML 2.0 assertion (XML text) about a host's newest report."""

    __namespace__ = NS
    _type_info = [
        ("assertion", req(Unicode, doc="The saml2:Assertion element, signed (XML-DSig).")),
        ("report_id", req(UnsignedInteger64)),
        ("status", req(TrustStatus)),
    ]


class AuditRecord(ComplexModel):
    """One audit log entry."""

    __namespace__ = NS
    _type_info = [
        ("id", req(UnsignedInteger64)),
        ("at", req(DateTime)),
        ("actor", req(Unicode)),
        ("action", req(Unicode)),
        ("target_type", req(Unicode)),
        ("target", req(Unicode)),
        ("outcome", req(Unicode)),
        ("details", opt(Unicode, doc="JSON object.")),
    ]


class AuditList(ComplexModel):
    """A page of audit records, newest first."""

    __namespace__ = NS
    _type_info = [("record", many(AuditRecord)), ("total", req(UnsignedInteger32))]
