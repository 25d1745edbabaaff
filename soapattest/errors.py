"""The whole error tree of soapattest.

Every error carries a stable, dotted ``code`` that the service layer sends as
the SOAP fault code and the client maps back to the same class:
``Client.*`` means the caller sent something wrong (or untrustworthy),
``Server.*`` means we (or a host we depend on) failed.

Rules: one subclass per rejection reason, names end in ``Error``, data that
explains the rejection is kept as attributes (not only in the message).
"""

from __future__ import annotations


class SoapAttestError(Exception):
    """Base of every error soapattest raises on purpose."""

    code = "Server.Internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------
# TPM 2.0 wire formats (soapattest.tpm): malformed structures.
# --------------------------------------------------------------------------


class TpmFormatError(SoapAttestError):
    """A TPM 2.0 structure does not parse.

    ``structure`` names the structure being parsed, ``offset`` is the byte
    offset (within the buffer handed to the parser) where parsing failed.
    """

    code = "Client.InvalidTpmStructure"

    def __init__(self, message: str, *, structure: str = "", offset: int | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        what = f"{structure}: " if structure else ""
        super().__init__(f"{what}{message}{where}")
        self.structure = structure
        self.offset = offset


class TruncatedError(TpmFormatError):
    """The buffer ends before the structure does (or a size field points past it)."""


class TrailingBytesError(TpmFormatError):
    """Bytes remain after a complete structure."""


class UnknownAlgorithmError(TpmFormatError):
    """An algorithm identifier this parser does not accept."""

    def __init__(
        self, message: str, *, alg: int, structure: str = "", offset: int | None = None
    ) -> None:
        super().__init__(message, structure=structure, offset=offset)
        self.alg = alg


class InvalidPcrSelectionError(TpmFormatError):
    """A PCR selection is malformed (too many banks, PCRs beyond 23, duplicate bank...)."""


class InvalidValueError(TpmFormatError):
    """A field has a value outside what the specification allows."""


class UnknownBankError(InvalidPcrSelectionError):
    """A PCR bank name ("sha256") that is not a known TPM hash algorithm."""

    def __init__(self, message: str, *, bank: str, structure: str = "") -> None:
        super().__init__(message, structure=structure)
        self.bank = bank


class UnknownAttestTypeError(InvalidValueError):
    """TPMS_ATTEST.type is not a TPMI_ST_ATTEST value (Part 2, 10.12.10)."""

    def __init__(
        self, message: str, *, attest_type: int, structure: str = "", offset: int | None = None
    ) -> None:
        super().__init__(message, structure=structure, offset=offset)
        self.attest_type = attest_type


class NullSignatureError(UnknownAlgorithmError):
    """TPMT_SIGNATURE.sigAlg is TPM_ALG_NULL: the structure carries no signature."""


class ReservedAttributeBitsError(InvalidValueError):
    """TPMA_OBJECT has reserved bits set (``bits`` holds them)."""

    def __init__(
        self, message: str, *, bits: int, structure: str = "", offset: int | None = None
    ) -> None:
        super().__init__(message, structure=structure, offset=offset)
        self.bits = bits


class UnsupportedCurveError(InvalidValueError):
    """A TPM_ECC_CURVE other than NIST P-256, P-384 or P-521."""

    def __init__(
        self, message: str, *, curve: int, structure: str = "", offset: int | None = None
    ) -> None:
        super().__init__(message, structure=structure, offset=offset)
        self.curve = curve


class InvalidPublicKeyError(InvalidValueError):
    """A TPMT_PUBLIC's key material is not a usable public key (point off the curve, ...)."""


class NoPublicKeyError(InvalidPublicKeyError):
    """The object is a KEYEDHASH or SYMCIPHER object: it has no asymmetric public key."""


class PcrValuesError(SoapAttestError):
    """Reported PCR values cannot be hashed for a selection.

    ``bank`` and ``index`` name the offending PCR.
    """

    code = "Client.InvalidPcrValues"

    def __init__(self, message: str, *, bank: str, index: int | None = None) -> None:
        super().__init__(message)
        self.bank = bank
        self.index = index


class MissingPcrValueError(PcrValuesError):
    """A selected PCR has no reported value."""


class PcrValueLengthError(PcrValuesError):
    """A PCR value (or an extended digest) does not have its bank's digest size."""


class CredentialError(SoapAttestError):
    """MakeCredential cannot be computed for this EK / name (unsupported key, bad name)."""

    code = "Client.InvalidArgument"


# --------------------------------------------------------------------------
# Measured-boot event logs and IMA lists (soapattest.tpm.eventlog, .ima).
# --------------------------------------------------------------------------


class EventLogError(SoapAttestError):
    """A TCG PC Client firmware event log is malformed.

    ``event_index`` is the 0-based index of the event being parsed (``None``
    when the failure is before the first event), ``offset`` the byte offset
    in the log.
    """

    code = "Client.InvalidEventLog"

    def __init__(
        self, message: str, *, event_index: int | None = None, offset: int | None = None
    ) -> None:
        where = []
        if event_index is not None:
            where.append(f"event {event_index}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{message}")
        self.event_index = event_index
        self.offset = offset
        self.reason = message


class EventLogLimitError(EventLogError):
    """The log exceeds a configured bound (size, event count, event size)."""


class EventLogEmptyError(EventLogError):
    """The log holds no bytes at all."""


class EventLogTruncatedError(EventLogError):
    """The log ends inside an event, or a size field points past the end of the log."""


class EventLogSpecIdError(EventLogError):
    """The "Spec ID Event03" header event of a crypto-agile log is malformed."""


class EventLogPcrIndexError(EventLogError):
    """An event names a PCR outside 0..23; ``pcr`` is the logged index."""

    def __init__(
        self, message: str, *, pcr: int, event_index: int | None = None, offset: int | None = None
    ) -> None:
        super().__init__(message, event_index=event_index, offset=offset)
        self.pcr = pcr


class EventLogUnknownAlgorithmError(EventLogError):
    """An event carries a digest whose algorithm the SpecID event does not declare."""

    def __init__(
        self, message: str, *, alg: int, event_index: int | None = None, offset: int | None = None
    ) -> None:
        super().__init__(message, event_index=event_index, offset=offset)
        self.alg = alg


class EventLogDuplicateDigestError(EventLogError):
    """An event carries two digests of the same algorithm; ``alg`` is the repeated one."""

    def __init__(
        self, message: str, *, alg: int, event_index: int | None = None, offset: int | None = None
    ) -> None:
        super().__init__(message, event_index=event_index, offset=offset)
        self.alg = alg


class EventLogDigestCountError(EventLogError):
    """An event's TPML_DIGEST_VALUES.count differs from the SpecID algorithm count."""


class EventLogStartupLocalityError(EventLogError):
    """A StartupLocality event is malformed, repeated, or names an impossible locality."""


class EventLogBankError(EventLogError):
    """A replay asked for a PCR bank the log does not carry; ``bank`` is its name."""

    def __init__(self, message: str, *, bank: str) -> None:
        super().__init__(message)
        self.bank = bank


class ImaLogError(SoapAttestError):
    """An IMA measurement list is malformed.

    ``entry_index`` is the 0-based entry, ``offset`` the byte offset (binary)
    or ``line`` the 1-based line (ascii).
    """

    code = "Client.InvalidImaLog"

    def __init__(
        self,
        message: str,
        *,
        entry_index: int | None = None,
        offset: int | None = None,
        line: int | None = None,
    ) -> None:
        where = []
        if entry_index is not None:
            where.append(f"entry {entry_index}")
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{message}")
        self.entry_index = entry_index
        self.offset = offset
        self.line = line
        self.reason = message


class ImaLogLimitError(ImaLogError):
    """The IMA list exceeds a configured bound."""


class ImaTruncatedError(ImaLogError):
    """The IMA list ends inside an entry (or a length field points past its end)."""


class ImaUnknownFormatError(ImaLogError):
    """The list is neither a recognisable ascii nor binary IMA list, or could be both."""


class ImaUnsupportedAlgorithmError(ImaLogError):
    """A hash algorithm / PCR bank name IMA replay does not support; ``alg`` names it."""

    def __init__(self, message: str, *, alg: str) -> None:
        super().__init__(message)
        self.alg = alg


class ImaTemplateDataUnavailableError(ImaLogError):
    """An entry's template data is unknown (ascii list, undecodable template), so it
    cannot be hashed into a bank other than the one its template digest was recorded in."""


class ImaBootAggregateError(ImaLogError):
    """A boot_aggregate cannot be computed or checked (missing or ill-sized PCR values,
    an entry that is not a boot_aggregate, an unknown algorithm)."""


# --------------------------------------------------------------------------
# Trust agent (soapattest.agent) and simulated hosts (soapattest.sim).
# The agent sends these codes as SOAP faults; the server's agent client maps
# them back to the same classes.
# --------------------------------------------------------------------------


class AgentError(SoapAttestError):
    """A trust agent request failed."""

    code = "Server.AgentError"


class InvalidArgumentError(AgentError):
    """A request argument is missing, malformed or out of range; ``argument`` names it."""

    code = "Client.InvalidArgument"

    def __init__(self, message: str, *, argument: str = "") -> None:
        super().__init__(message)
        self.argument = argument


class RequestTooLargeError(AgentError):
    """The request body exceeds the configured limit (``size`` and ``limit`` in bytes)."""

    code = "Client.RequestTooLarge"

    def __init__(self, message: str, *, size: int | None, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class RequestTimeoutError(SoapAttestError):
    """The request body did not arrive within the configured time (a slow or stalled
    client); ``limit`` is that time in seconds."""

    code = "Client.RequestTimeout"

    def __init__(self, message: str, *, limit: float) -> None:
        super().__init__(message)
        self.limit = limit


class AgentConfigError(AgentError):
    """The agent configuration (file or flags) is invalid; ``option`` names the setting."""

    code = "Client.InvalidConfiguration"

    def __init__(self, message: str, *, option: str = "") -> None:
        super().__init__(message)
        self.option = option


class TpmError(AgentError):
    """A TPM command failed; ``command`` names it, ``rc`` is the TSS2 response code."""

    code = "Server.TpmError"

    def __init__(self, message: str, *, command: str = "", rc: int | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.rc = rc


class PcrsChangingError(TpmError):
    """PCRs kept changing between reading them and quoting; gave up after ``attempts``."""

    code = "Server.PcrsChanging"

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message, command="Quote")
        self.attempts = attempts


class CredentialRejectedError(AgentError):
    """TPM2_ActivateCredential refused the blob (wrong EK, wrong AK name, corrupt data)."""

    code = "Client.CredentialRejected"

    def __init__(self, message: str, *, rc: int | None = None) -> None:
        super().__init__(message)
        self.rc = rc


class EventLogUnavailableError(AgentError):
    """The measured-boot event log cannot be read on the host; ``path`` is where it was sought."""

    code = "Server.EventLogUnavailable"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ImaLogUnavailableError(AgentError):
    """The IMA measurement list cannot be read on the host; ``path`` is where it was sought."""

    code = "Server.ImaLogUnavailable"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class SimulationError(SoapAttestError):
    """A simulated host (swtpm + agent) could not be set up, started or stopped."""

    code = "Server.SimulationError"


class UnsupportedSimLogError(SimulationError):
    """An event log cannot be replayed into a swtpm; ``log`` names it, ``reason`` says why."""

    code = "Client.UnsupportedEventLog"

    def __init__(self, message: str, *, log: str, reason: str) -> None:
        super().__init__(message)
        self.log = log
        self.reason = reason


# --------------------------------------------------------------------------
# Quote / signature verification (soapattest.tpm.signature, soapattest.verify).
# Each class is one rejection reason of a numbered step in verify.quote.
# --------------------------------------------------------------------------


class QuoteVerificationError(SoapAttestError):
    """A quote (or its evidence) does not verify. ``step`` names the failed check."""

    code = "Client.InvalidQuote"
    step = "quote"


class QuoteFormatError(QuoteVerificationError):
    """The TPMS_ATTEST or TPMT_SIGNATURE bytes do not parse."""

    step = "quote.format"


class BadMagicError(QuoteVerificationError):
    """TPMS_ATTEST.magic is not TPM_GENERATED_VALUE: the TPM did not produce it."""

    step = "quote.magic"


class WrongAttestTypeError(QuoteVerificationError):
    """TPMS_ATTEST.type is not TPM_ST_ATTEST_QUOTE (e.g. a CERTIFY carrying the nonce)."""

    step = "quote.type"


class SignatureSchemeError(QuoteVerificationError):
    """The signature's scheme or hash differs from what the AK's template fixes."""

    step = "quote.signature_scheme"


class WeakKeyError(QuoteVerificationError):
    """The AK is below the minimum key size, or of a refused kind/curve/hash."""

    step = "quote.key_strength"


class SignatureInvalidError(QuoteVerificationError):
    """The signature does not verify over TPMS_ATTEST with the registered AK."""

    step = "quote.signature"


class NonceMismatchError(QuoteVerificationError):
    """extraData is not the nonce this server issued for this quote."""

    step = "quote.nonce"


class QualifiedSignerError(QuoteVerificationError):
    """qualifiedSigner is inconsistent with the registered AK."""

    step = "quote.qualified_signer"


class PcrSelectionMismatchError(QuoteVerificationError):
    """The quoted PCR selection and the reported PCR values differ, or miss required PCRs."""

    step = "quote.pcr_selection"

    def __init__(self, message: str, *, missing: tuple[str, ...] = (), extra: tuple[str, ...] = ()):
        super().__init__(message)
        self.missing = missing
        self.extra = extra


class PcrDigestMismatchError(QuoteVerificationError):
    """The hash of the reported PCR values is not the quote's pcrDigest."""

    step = "quote.pcr_digest"


class ClockRegressionError(QuoteVerificationError):
    """resetCount, restartCount or clock went backwards since the host's previous quote."""

    step = "quote.clock"


# --------------------------------------------------------------------------
# Appraisal against event logs, whitelists and policies (soapattest.verify).
# --------------------------------------------------------------------------


class AppraisalError(SoapAttestError):
    """Evidence verified cryptographically but does not meet the policy."""

    code = "Client.Untrusted"


class PcrReplayError(AppraisalError):
    """The event log does not replay to the quoted PCR values."""

    def __init__(self, message: str, *, bank: str, pcr_indices: tuple[int, ...]):
        super().__init__(message)
        self.bank = bank
        self.pcr_indices = pcr_indices


class PolicyError(SoapAttestError):
    """A policy or whitelist definition is invalid (empty, inconsistent, unknown bank)."""

    code = "Client.InvalidPolicy"


# --------------------------------------------------------------------------
# Host identity: EK certificate, AK properties, credential activation.
# --------------------------------------------------------------------------


class IdentityError(SoapAttestError):
    """A host's TPM identity cannot be accepted."""

    code = "Client.InvalidIdentity"


class AkAttributesError(IdentityError):
    """The AK is not a restricted, fixedTPM signing key of an accepted kind."""


class EkCertificateError(IdentityError):
    """The EK certificate does not chain to a configured root or does not match the EK."""


class ActivationError(IdentityError):
    """Credential activation failed: the AK is not proven to live beside the EK."""


class IdentityInUseError(IdentityError):
    """The TPM (its EK or its AK) is already bound to the active host ``host``: a second
    registration would let one machine borrow another's trust (an agent relaying to it)."""

    def __init__(self, message: str, *, host: str = "") -> None:
        super().__init__(message)
        self.host = host


# --------------------------------------------------------------------------
# Store (soapattest.store): lookups, uniqueness, versions, references, the database.
# --------------------------------------------------------------------------


class NotFoundError(SoapAttestError):
    """A stored object does not exist (or was deleted); ``name`` identifies it as text,
    ``version`` is the version asked for (``None``: the latest)."""

    code = "Client.NotFound"

    def __init__(self, message: str, *, name: str = "", version: int | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.version = version


class UnknownHostError(NotFoundError):
    """No active host has this name."""

    code = "Client.UnknownHost"


class WhitelistNotFoundError(NotFoundError):
    """No active whitelist has this name (or it has no such version)."""

    code = "Client.WhitelistNotFound"


class PolicyNotFoundError(NotFoundError):
    """No active policy has this name (or it has no such version)."""

    code = "Client.PolicyNotFound"


class ReportNotFoundError(NotFoundError):
    """No trust report has this id; ``report_id`` is the id asked for."""

    code = "Client.ReportNotFound"

    def __init__(self, message: str, *, report_id: int) -> None:
        super().__init__(message, name=str(report_id))
        self.report_id = report_id


class UserNotFoundError(NotFoundError):
    """No user has this name."""

    code = "Client.UserNotFound"


class AlreadyExistsError(SoapAttestError):
    """An active object already has this ``name``."""

    code = "Client.AlreadyExists"

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class HostExistsError(AlreadyExistsError):
    """An active host already has this name."""


class WhitelistExistsError(AlreadyExistsError):
    """An active whitelist already has this name."""


class PolicyExistsError(AlreadyExistsError):
    """An active policy already has this name."""


class UserExistsError(AlreadyExistsError):
    """A user already has this name."""


class VersionConflictError(SoapAttestError):
    """A change was based on version ``expected`` of ``name`` but ``actual`` is the latest
    (someone else changed it in between); nothing was written."""

    code = "Client.VersionConflict"

    def __init__(self, message: str, *, name: str, expected: int, actual: int) -> None:
        super().__init__(message)
        self.name = name
        self.expected = expected
        self.actual = actual


class InUseError(SoapAttestError):
    """``name`` cannot be deleted: ``used_by`` still refers to it."""

    code = "Client.InUse"

    def __init__(self, message: str, *, name: str, used_by: tuple[str, ...]) -> None:
        super().__init__(message)
        self.name = name
        self.used_by = used_by


class WhitelistInUseError(InUseError):
    """The latest version of a policy (``used_by``: ``policy:<name>``) references the whitelist."""


class PolicyInUseError(InUseError):
    """The policy is assigned to hosts or pools (``used_by``: ``host:<name>``, ``pool:<name>``)."""


class DatabaseError(SoapAttestError):
    """The database refused an operation for a reason the store does not expect
    (a constraint or trigger that the store's own checks should have prevented)."""

    code = "Server.DatabaseError"


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached or is busy: connection refused or lost, SQLite
    "database is locked" after the busy timeout, pool exhausted. Retrying later may work;
    ``reason`` is the driver's message."""

    code = "Server.DatabaseUnavailable"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------
# Attestation server (soapattest.server, soapattest.service).
# --------------------------------------------------------------------------


class ConfigError(SoapAttestError):
    """The server configuration is invalid; ``option`` names the setting."""

    code = "Server.Configuration"

    def __init__(self, message: str, *, option: str = "") -> None:
        super().__init__(message)
        self.option = option


class AgentUnreachableError(SoapAttestError):
    """The host's trust agent did not answer (refused, timed out, TLS failure)."""

    code = "Server.AgentUnreachable"


class AgentTlsError(AgentUnreachableError):
    """TLS with the host's trust agent failed: certificate not issued by the configured CA,
    name mismatch, pinned fingerprint mismatch, client certificate refused, or a pinned
    host addressed over plain HTTP."""


class AgentResponseError(SoapAttestError):
    """The host's trust agent answered something that is not a valid response."""

    code = "Server.AgentBadResponse"


class AgentFaultError(SoapAttestError):
    """The host's trust agent answered with a SOAP fault; ``agent_code`` is its code."""

    code = "Server.AgentFault"

    def __init__(self, message: str, *, agent_code: str = "") -> None:
        super().__init__(message)
        self.agent_code = agent_code


class NotAuthorizedError(SoapAttestError):
    """The caller is not authenticated, or its roles do not allow the operation."""

    code = "Client.NotAuthorized"


class NoPolicyError(SoapAttestError):
    """The host has no policy (neither its own nor its pool's): it cannot be appraised."""

    code = "Client.NoPolicy"


class NonceError(SoapAttestError):
    """A nonce was not issued by this server for this host, expired, or was used already."""

    code = "Client.InvalidNonce"


class AssertionVerificationError(SoapAttestError):
    """A SAML trust assertion does not verify (signature, structure or validity period)."""

    code = "Client.InvalidAssertion"


# --------------------------------------------------------------------------
# Security (soapattest.security): authentication, authorization, XML hardening.
# Authentication errors share Client.NotAuthorized; their messages never say
# whether a user exists (``reason`` is for the server log only).
# --------------------------------------------------------------------------


class AuthenticationError(NotAuthorizedError):
    """The caller could not be authenticated. ``reason`` (server log only) says why."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class MissingTokenError(AuthenticationError):
    """The request carries no wsse:Security header or no UsernameToken in it."""


class MalformedTokenError(AuthenticationError):
    """The UsernameToken is structurally invalid (duplicate or missing element, bad
    base64, unknown password type, bad timestamp)."""


class StaleTokenError(AuthenticationError):
    """wsu:Created is outside the accepted window around the server's clock;
    ``skew_seconds`` is created minus now."""

    def __init__(self, message: str, *, skew_seconds: float) -> None:
        super().__init__(message)
        self.skew_seconds = skew_seconds


class ReplayedNonceError(AuthenticationError):
    """The token's Nonce was already used within the replay window."""


class InsecureTransportError(AuthenticationError):
    """A PasswordText token arrived over a connection that is not TLS."""


class BadCredentialsError(AuthenticationError):
    """Unknown user, wrong password, or a digest for a user without digest credentials
    (deliberately indistinguishable to the caller)."""


class OperationDeniedError(NotAuthorizedError):
    """The authenticated caller's ``roles`` do not allow ``operation`` (or it is unknown)."""

    def __init__(self, message: str, *, operation: str, roles: tuple[str, ...]) -> None:
        super().__init__(message)
        self.operation = operation
        self.roles = roles


class ReplayCacheFullError(SoapAttestError):
    """The nonce replay cache is full of unexpired entries; the request is refused
    rather than risking an undetected replay. ``capacity`` is its size."""

    code = "Server.Busy"

    def __init__(self, message: str, *, capacity: int) -> None:
        super().__init__(message)
        self.capacity = capacity


class CredentialFormatError(SoapAttestError):
    """A stored credential string (password hash, sealed digest secret) does not parse,
    or was sealed with another key; ``part`` names the piece."""

    code = "Server.InvalidCredential"

    def __init__(self, message: str, *, part: str = "") -> None:
        super().__init__(message)
        self.part = part


class WeakPasswordError(SoapAttestError):
    """A new password does not meet the policy (length, characters)."""

    code = "Client.WeakPassword"


class XmlRequestError(SoapAttestError):
    """A SOAP request refused by the XML guard before any SOAP processing."""

    code = "Client.InvalidEnvelope"


class InvalidEnvelopeError(XmlRequestError):
    """Not well-formed XML, not a SOAP 1.1 envelope, or not exactly one Body child."""


class XmlForbiddenError(XmlRequestError):
    """A forbidden XML construct (DOCTYPE/DTD, entity, processing instruction, an
    encoding other than UTF-8); ``construct`` names it."""

    code = "Client.XmlForbidden"

    def __init__(self, message: str, *, construct: str) -> None:
        super().__init__(message)
        self.construct = construct


class XmlTooDeepError(XmlRequestError):
    """Elements nest deeper than ``limit``."""

    code = "Client.XmlTooDeep"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class MustUnderstandError(XmlRequestError):
    """A header addressed to us with soap:mustUnderstand="1" that we do not process;
    ``header`` is its Clark name ({namespace}local)."""

    code = "Client.MustUnderstand"

    def __init__(self, message: str, *, header: str) -> None:
        super().__init__(message)
        self.header = header


# --------------------------------------------------------------------------
# Client library (soapattest.client): failures on the way to the server.
# Faults the server sends map back to the classes above by their code.
# --------------------------------------------------------------------------


class ServerUnreachableError(SoapAttestError):
    """The attestation server did not answer: connection refused, timeout, DNS or TLS
    failure. ``url`` is the endpoint, ``reason`` the transport's message."""

    code = "Server.Unreachable"

    def __init__(self, message: str, *, url: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class ServerResponseError(SoapAttestError):
    """The attestation server answered something that is not a valid SOAP response of
    the operation (HTTP error without a fault, invalid XML, a DTD or entities, elements
    the WSDL does not define). ``status`` is the HTTP status (0 when unknown)."""

    code = "Server.BadResponse"

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------
# Fault code -> error class (clients map SOAP faults back to these types).
# --------------------------------------------------------------------------


def error_class_for(code: str) -> type[SoapAttestError]:
    """The most general error class whose ``code`` is ``code`` (SoapAttestError if none).

    Several classes share a code (every malformed-log reason is
    ``Client.InvalidEventLog``); a fault carries only the code, so the class
    returned is the one that introduces the code in the hierarchy.
    """
    best: type[SoapAttestError] | None = None
    stack: list[type[SoapAttestError]] = [SoapAttestError]
    while stack:
        cls = stack.pop()
        parent_codes = {getattr(b, "code", None) for b in cls.__bases__}
        introduces = cls.code == code and code not in parent_codes
        if introduces and (best is None or issubclass(best, cls)):
            best = cls
        stack.extend(cls.__subclasses__())
    return best or SoapAttestError

