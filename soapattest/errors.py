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
