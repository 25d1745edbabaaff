"""What the trust agent does, independent of SOAP: validate, call the TPM, read logs.

:class:`AgentBackend` is built once at start (it creates or loads the AK and
reads the identity) and then answers requests from several threads; the
TPM itself is serialised by :class:`~soapattest.agent.tpm.TpmAccess`.
Every argument from the network is validated here and refused with
:class:`~soapattest.errors.InvalidArgumentError` naming the argument.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from soapattest import __version__
from soapattest.agent.config import AgentConfig
from soapattest.agent.logs import ImaChunk, read_event_log, read_ima_chunk
from soapattest.agent.templates import KEY_TYPES
from soapattest.agent.tpm import AkInfo, EkInfo, QuoteResult, TpmAccess, TpmInfo
from soapattest.errors import EventLogUnavailableError, InvalidArgumentError, TpmError
from soapattest.tpm.constants import HASH_BY_NAME, HASH_COUNT_MAX, PCR_COUNT
from soapattest.tpm.pcr import PcrSelection

log = logging.getLogger("soapattest.agent")

NONCE_MIN = 1
NONCE_MAX = 64  # TPM2B_DATA holds sizeof(TPMT_HA) = 66 bytes; 64 is one SHA-512 digest
BLOB_MAX = 1024  # TPM2B_ID_OBJECT / TPM2B_ENCRYPTED_SECRET are a few hundred bytes at most


@dataclass(frozen=True, slots=True)
class Identity:
    """What GetIdentity returns: the EKs (public + certificate), the AK, TPM facts."""

    eks: tuple[EkInfo, ...]
    ak: AkInfo
    tpm: TpmInfo
    agent_version: str


def validate_nonce(nonce: bytes | None) -> bytes:
    """The nonce if it is 1..64 bytes, else :class:`InvalidArgumentError`."""
    if not nonce:
        raise InvalidArgumentError("nonce is empty", argument="nonce")
    if len(nonce) > NONCE_MAX:
        raise InvalidArgumentError(
            f"nonce has {len(nonce)} bytes, at most {NONCE_MAX} allowed", argument="nonce"
        )
    return bytes(nonce)


def validate_selection(
    selection: Sequence[tuple[str, Sequence[int]]] | None, active_banks: Sequence[str]
) -> PcrSelection:
    """Turn ``[(bank, [pcr, ...]), ...]`` into a :class:`PcrSelection` for this TPM.

    Refused (:class:`InvalidArgumentError`, argument ``selection``): an empty
    selection, more than 5 banks, a bank that is not a known hash name, a bank
    the TPM has not allocated, a bank listed twice, a bank without PCRs, a PCR
    outside 0..23 or listed twice.
    """
    if not selection:
        raise InvalidArgumentError("PCR selection is empty", argument="selection")
    if len(selection) > HASH_COUNT_MAX:
        raise InvalidArgumentError(
            f"{len(selection)} banks selected, at most {HASH_COUNT_MAX}", argument="selection"
        )
    mapping: dict[str, list[int]] = {}
    for bank, pcrs in selection:
        if bank not in HASH_BY_NAME:
            raise InvalidArgumentError(f"unknown PCR bank {bank!r}", argument="selection")
        if bank not in active_banks:
            raise InvalidArgumentError(
                f"PCR bank {bank} is not active on this TPM (active: {', '.join(active_banks)})",
                argument="selection",
            )
        if bank in mapping:
            raise InvalidArgumentError(f"PCR bank {bank} listed twice", argument="selection")
        pcr_list = list(pcrs or [])
        if not pcr_list:
            raise InvalidArgumentError(f"bank {bank} selects no PCR", argument="selection")
        seen: set[int] = set()
        for index in pcr_list:
            if not isinstance(index, int) or not 0 <= index < PCR_COUNT:
                raise InvalidArgumentError(
                    f"PCR index {index!r} outside 0..{PCR_COUNT - 1}", argument="selection"
                )
            if index in seen:
                raise InvalidArgumentError(
                    f"PCR {bank}:{index} listed twice", argument="selection"
                )
            seen.add(index)
        mapping[bank] = pcr_list
    return PcrSelection.from_mapping(mapping)


def _blob(value: bytes | None, argument: str) -> bytes:
    if not value:
        raise InvalidArgumentError(f"{argument} is empty", argument=argument)
    if len(value) > BLOB_MAX:
        raise InvalidArgumentError(f"{argument} exceeds {BLOB_MAX} bytes", argument=argument)
    return bytes(value)


class AgentBackend:
    """The agent's operations over one TPM and the configured log files.

    Construction creates or loads the AK (:meth:`TpmAccess.ensure_ak`) and
    reads the identity once (it does not change while the agent runs).
    Raises :class:`TpmError` when that fails.
    """

    def __init__(self, config: AgentConfig, tpm: TpmAccess) -> None:
        self.config = config
        self.tpm = tpm
        ak = tpm.ensure_ak(config.ak_type, config.ak_handle)
        eks = []
        for key_type in KEY_TYPES:
            try:
                eks.append(tpm.ek(key_type))
            except TpmError as exc:  # e.g. a TPM without ECC: serve the other EK
                log.warning("no %s EK: %s", key_type, exc)
        if not eks:
            raise TpmError("the TPM provides no RSA 2048 nor ECC P-256 EK", command="CreatePrimary")
        self.identity = Identity(tuple(eks), ak, tpm.info(), __version__)
        self.active_banks = self.identity.tpm.banks

    def get_identity(self) -> Identity:
        """The cached identity (EKs, AK, TPM facts, agent version)."""
        return self.identity

    def get_quote(
        self, nonce: bytes | None, selection: Sequence[tuple[str, Sequence[int]]] | None
    ) -> QuoteResult:
        """Validate the nonce and selection, then quote (see :meth:`TpmAccess.quote`)."""
        sel = validate_selection(selection, self.active_banks)
        return self.tpm.quote(validate_nonce(nonce), sel)

    def activate_credential(
        self, ek_type: str | None, credential_blob: bytes | None, encrypted_secret: bytes | None
    ) -> bytes:
        """Validate the arguments, then TPM2_ActivateCredential with the AK and that EK."""
        if ek_type not in [ek.key_type for ek in self.identity.eks]:
            raise InvalidArgumentError(
                f"ek_type {ek_type!r} is not one of "
                f"{', '.join(ek.key_type for ek in self.identity.eks)}",
                argument="ek_type",
            )
        blob = _blob(credential_blob, "credential_blob")
        secret = _blob(encrypted_secret, "encrypted_secret")
        try:
            return self.tpm.activate_credential(ek_type, blob, secret)
        except ValueError as exc:
            what = "encrypted_secret" if "encrypted_secret" in str(exc) else "credential_blob"
            raise InvalidArgumentError(str(exc), argument=what) from exc

    def get_event_log(self) -> bytes:
        """The measured-boot event log bytes (see :func:`read_event_log`)."""
        return read_event_log(self.config.eventlog_path, self.config.eventlog_max)

    def event_log_sha256(self) -> bytes | None:
        """SHA-256 of :meth:`get_event_log`'s bytes now, or None when there is no log."""
        try:
            return hashlib.sha256(self.get_event_log()).digest()
        except EventLogUnavailableError:
            return None

    def get_ima_log(self, offset: int | None) -> ImaChunk:
        """A chunk of the IMA list from ``offset`` (see :func:`read_ima_chunk`)."""
        if offset is None:
            offset = 0
        return read_ima_chunk(self.config.ima_path, offset, self.config.ima_chunk_max)
