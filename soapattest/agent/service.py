# mypy: allow-subclassing-any, allow-untyped-decorators
"""The trust agent's SOAP 1.1 interface (Spyne, document/literal wrapped).

Namespace ``urn:soapattest:agent:v1``. Binary fields are ``xs:base64Binary``
(decoded once here, at the edge). Operations:

- ``GetIdentity()``: EK publics and certificates, AK public and name, PCR
  banks, TPM vendor and firmware, agent version.
- ``ActivateCredential(ek_type, credential_blob, encrypted_secret)``: the
  decrypted credential (proves the AK lives in the TPM of that EK).
- ``GetQuote(nonce, selection)``: TPMS_ATTEST, TPMT_SIGNATURE and the values
  of exactly the quoted PCRs.
- ``GetEventLog()``: the measured-boot event log.
- ``GetImaLog(offset)``: the IMA list from a byte offset, chunked.

Every failure is a SOAP Fault whose faultcode is the stable dotted code of a
:class:`~soapattest.errors.SoapAttestError` (``Client.InvalidArgument``,
``Client.CredentialRejected``, ``Server.TpmError``, ``Server.PcrsChanging``,
``Server.EventLogUnavailable``, ``Server.ImaLogUnavailable``) or
``Server.Internal`` for an unexpected error (logged with its traceback, never
sent). The operations are thin: decode, call
:class:`~soapattest.agent.backend.AgentBackend`, encode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from spyne import Application, ComplexModel, Fault, ServiceBase, rpc
from spyne.model.binary import ByteArray
from spyne.model.primitive import Boolean, Unicode, UnsignedInteger32, UnsignedInteger64
from spyne.protocol.soap import Soap11

from soapattest.agent.backend import NONCE_MAX, AgentBackend
from soapattest.errors import SoapAttestError

NS = "urn:soapattest:agent:v1"
log = logging.getLogger("soapattest.agent.service")

T = TypeVar("T")


def _b64(doc: str, **kw: Any) -> Any:
    return ByteArray(doc=doc, **kw)


Bank = Unicode(
    type_name="PcrBankName", __namespace__=NS, min_len=1, max_len=16, pattern="[a-z0-9_]+",
    min_occurs=1, nillable=False,
    doc='PCR bank (hash algorithm) name: "sha1", "sha256", "sha384", "sha512" or "sm3_256".',
)
PcrIndex = UnsignedInteger32(
    type_name="PcrIndex", __namespace__=NS, le=23, min_occurs=1, nillable=False,
    doc="PCR index, 0..23.",
)
KeyType = Unicode(
    type_name="KeyType", __namespace__=NS, values=["rsa", "ecc"], min_occurs=1, nillable=False,
    doc='"rsa": RSA 2048; "ecc": NIST P-256.',
)


class PcrBankSelection(ComplexModel):
    """PCRs of one bank to quote: a bank name and the PCR indices (0..23, each at most once)."""

    __namespace__ = NS
    _type_info = [
        ("bank", Bank),
        ("pcr", PcrIndex.customize(max_occurs=24, type_name="PcrIndex", __namespace__=NS)),
    ]


class PcrValue(ComplexModel):
    """One PCR: its index and its value (the bank's digest size)."""

    __namespace__ = NS
    _type_info = [
        ("index", PcrIndex),
        ("value", _b64("PCR value (20 bytes for sha1, 32 for sha256, ...).",
                       min_occurs=1, nillable=False)),
    ]


class PcrBankValues(ComplexModel):
    """The values of the quoted PCRs of one bank, indices ascending."""

    __namespace__ = NS
    _type_info = [
        ("bank", Bank),
        ("pcr", PcrValue.customize(min_occurs=1, max_occurs=24, nillable=False)),
    ]


class Quote(ComplexModel):
    """A TPM2_Quote and the PCR values it covers (untrusted until the server verifies it)."""

    __namespace__ = NS
    _type_info = [
        ("attest", _b64("TPMS_ATTEST bytes as signed by the AK (TPM 2.0 Part 2, 10.12.12).",
                        min_occurs=1, nillable=False)),
        ("signature", _b64("TPMT_SIGNATURE bytes (TPM 2.0 Part 2, 11.3.4).",
                           min_occurs=1, nillable=False)),
        ("pcr_update_counter", UnsignedInteger32(min_occurs=1, nillable=False,
                                                 doc="pcrUpdateCounter the values were read at.")),
        ("banks", PcrBankValues.customize(min_occurs=1, max_occurs=5, nillable=False)),
        ("event_log_sha256", _b64(
            "SHA-256 of the event log GetEventLog returns now (absent when there is none): "
            "a server that holds that log already need not fetch it again. Untrusted like "
            "the log itself - a log only counts if it replays to the signed PCR values.",
            min_occurs=0)),
    ]


class EndorsementKey(ComplexModel):
    """One EK: its type, its TPM2B_PUBLIC and its certificate (absent when not provisioned)."""

    __namespace__ = NS
    _type_info = [
        ("key_type", KeyType),
        ("public", _b64("TPM2B_PUBLIC bytes of the EK.", min_occurs=1, nillable=False)),
        ("certificate", _b64("EK certificate, DER (NV 0x01c00002 / 0x01c0000a).",
                             min_occurs=0)),
    ]


class Identity(ComplexModel):
    """The TPM identity of the host and facts about its TPM and agent."""

    __namespace__ = NS
    _type_info = [
        ("ek", EndorsementKey.customize(min_occurs=1, max_occurs=2, nillable=False)),
        ("ak_type", KeyType),
        ("ak_public", _b64("TPM2B_PUBLIC bytes of the attestation key.",
                           min_occurs=1, nillable=False)),
        ("ak_name", _b64("TPM2B_NAME content of the AK: nameAlg || H(TPMT_PUBLIC).",
                         min_occurs=1, nillable=False)),
        ("pcr_bank", Bank.customize(max_occurs=5, type_name="PcrBankName", __namespace__=NS)),
        ("tpm_manufacturer", Unicode(min_occurs=1, nillable=False,
                                     doc="TPM_PT_MANUFACTURER as ASCII (e.g. IBM, INTC).")),
        ("tpm_manufacturer_id", UnsignedInteger32(min_occurs=1, nillable=False)),
        ("firmware_version_1", UnsignedInteger32(min_occurs=1, nillable=False,
                                                 doc="TPM_PT_FIRMWARE_VERSION_1.")),
        ("firmware_version_2", UnsignedInteger32(min_occurs=1, nillable=False,
                                                 doc="TPM_PT_FIRMWARE_VERSION_2.")),
        ("agent_version", Unicode(min_occurs=1, nillable=False)),
    ]


class EventLog(ComplexModel):
    """The measured-boot event log (TCG PC Client PFP binary format), as the host has it."""

    __namespace__ = NS
    _type_info = [
        ("data", _b64("binary_bios_measurements bytes.", min_occurs=1, nillable=False)),
    ]


class ImaLogChunk(ComplexModel):
    """Bytes [offset, next_offset) of the binary IMA list, ending on an entry boundary."""

    __namespace__ = NS
    _type_info = [
        ("data", _b64("binary_runtime_measurements bytes from the requested offset.",
                      min_occurs=1, nillable=False)),
        ("next_offset", UnsignedInteger64(min_occurs=1, nillable=False,
                                          doc="Offset to ask for next.")),
        ("more", Boolean(min_occurs=1, nillable=False,
                         doc="True when the list holds bytes after next_offset.")),
    ]


def _call(ctx: Any, op: Callable[[AgentBackend], T]) -> T:
    """Run ``op`` on the backend; map soapattest errors to faults, hide anything else."""
    backend: AgentBackend = ctx.app.backend
    try:
        return op(backend)
    except SoapAttestError as exc:
        ctx.transport.req_env["soapattest.fault"] = exc.code
        raise Fault(faultcode=exc.code, faultstring=exc.message) from exc
    except Exception:
        log.exception("unexpected error in %s", ctx.method_request_string)
        ctx.transport.req_env["soapattest.fault"] = "Server.Internal"
        raise Fault(faultcode="Server.Internal", faultstring="internal error") from None


class AgentService(ServiceBase):
    """Trust agent operations (see the module docstring)."""

    @rpc(_returns=Identity, _body_style="wrapped", _out_variable_name="identity")
    def GetIdentity(ctx: Any) -> Identity:
        """The host's TPM identity: EKs with certificates, AK public and name, TPM facts."""

        def op(b: AgentBackend) -> Identity:
            ident = b.get_identity()
            return Identity(
                ek=[EndorsementKey(key_type=e.key_type, public=[e.public],
                                   certificate=[e.certificate] if e.certificate else None)
                    for e in ident.eks],
                ak_type=ident.ak.key_type,
                ak_public=[ident.ak.public],
                ak_name=[ident.ak.name],
                pcr_bank=list(ident.tpm.banks),
                tpm_manufacturer=ident.tpm.manufacturer,
                tpm_manufacturer_id=ident.tpm.manufacturer_id,
                firmware_version_1=ident.tpm.firmware_version_1,
                firmware_version_2=ident.tpm.firmware_version_2,
                agent_version=ident.agent_version,
            )

        return _call(ctx, op)

    @rpc(
        KeyType,
        _b64("TPM2B_ID_OBJECT bytes (credentialBlob of TPM2_MakeCredential).",
             min_occurs=1, nillable=False),
        _b64("TPM2B_ENCRYPTED_SECRET bytes (secret of TPM2_MakeCredential).",
             min_occurs=1, nillable=False),
        _returns=_b64("The decrypted credential (certInfo)."),
        _body_style="wrapped",
        _out_variable_name="credential",
    )
    def ActivateCredential(
        ctx: Any, ek_type: str | None, credential_blob: Any, encrypted_secret: Any
    ) -> Any:
        """TPM2_ActivateCredential with the AK and the EK of ek_type."""
        blob = b"".join(credential_blob or [])
        secret = b"".join(encrypted_secret or [])
        return _call(ctx, lambda b: [b.activate_credential(ek_type, blob, secret)])

    @rpc(
        _b64(f"Caller's fresh nonce, 1..{NONCE_MAX} bytes (becomes TPMS_ATTEST.extraData).",
             min_occurs=1, nillable=False),
        PcrBankSelection.customize(min_occurs=1, max_occurs=5, nillable=False),
        _returns=Quote,
        _body_style="wrapped",
        _out_variable_name="quote",
    )
    def GetQuote(ctx: Any, nonce: Any, selection: Any) -> Quote:
        """Quote the selected PCRs with the AK; returns the quote and the values it covers."""
        raw_nonce = b"".join(nonce or [])
        raw_sel = [(s.bank, list(s.pcr or [])) for s in (selection or [])]

        def op(b: AgentBackend) -> Quote:
            q = b.get_quote(raw_nonce, raw_sel)
            log_digest = b.event_log_sha256()
            return Quote(
                attest=[q.attest],
                signature=[q.signature],
                pcr_update_counter=q.update_counter,
                banks=[
                    PcrBankValues(bank=bank, pcr=[PcrValue(index=i, value=[v])
                                                  for i, v in sorted(vals.items())])
                    for bank, vals in q.pcrs.items()
                ],
                event_log_sha256=[log_digest] if log_digest is not None else None,
            )

        return _call(ctx, op)

    @rpc(_returns=EventLog, _body_style="wrapped", _out_variable_name="eventlog")
    def GetEventLog(ctx: Any) -> EventLog:
        """The host's measured-boot event log."""
        return _call(ctx, lambda b: EventLog(data=[b.get_event_log()]))

    @rpc(
        UnsignedInteger64(min_occurs=1, nillable=False,
                          doc="Byte offset to start from (0, or a previous next_offset)."),
        _returns=ImaLogChunk,
        _body_style="wrapped",
        _out_variable_name="chunk",
    )
    def GetImaLog(ctx: Any, offset: int | None) -> ImaLogChunk:
        """The binary IMA list from offset, at most the agent's chunk size."""

        def op(b: AgentBackend) -> ImaLogChunk:
            c = b.get_ima_log(offset)
            return ImaLogChunk(data=[c.data], next_offset=c.next_offset, more=c.more)

        return _call(ctx, op)


def build_application(backend: AgentBackend | None) -> Application:
    """The Spyne application; ``backend`` may be ``None`` to generate the WSDL only."""
    app = Application(
        [AgentService],
        tns=NS,
        name="SoapAttestAgent",
        in_protocol=Soap11(validator=None),
        out_protocol=Soap11(),
    )
    app.backend = backend
    app.event_manager.add_listener("method_call", _record_operation)
    return app


def _record_operation(ctx: Any) -> None:
    """Spyne event: remember the operation name for the request log line."""
    env = getattr(ctx.transport, "req_env", None)
    if env is not None:
        env["soapattest.operation"] = (ctx.method_request_string or "").rpartition("}")[2]


def build_wsgi_app(backend: AgentBackend | None) -> Any:
    """The Spyne WSGI application for ``backend`` (records Spyne's own faults for the log)."""
    from spyne.server.wsgi import WsgiApplication

    wsgi = WsgiApplication(build_application(backend))

    def record_fault(ctx: Any) -> None:
        env = getattr(ctx.transport, "req_env", None)
        err = getattr(ctx, "out_error", None) or getattr(ctx, "in_error", None)
        if env is not None and err is not None and "soapattest.fault" not in env:
            env["soapattest.fault"] = getattr(err, "faultcode", type(err).__name__)

    wsgi.event_manager.add_listener("wsgi_exception", record_fault)
    return wsgi
