"""UEFI Secure Boot state from the PCR 7 events, and policy rules on it.

TCG PC Client PFP, 3.3.4.8 and 10.4.4 (PCR 7): before the separator the
firmware measures the Secure Boot configuration (EV_EFI_VARIABLE_DRIVER_CONFIG
for SecureBoot, PK, KEK, db, dbx, dbt, dbr), optional EV_EFI_ACTION strings,
then one EV_SEPARATOR; after it, one EV_EFI_VARIABLE_AUTHORITY per db entry
(or shim/MOK entry) that verified a loaded image.

Rules (fail closed):

1. PCR 7 must be quoted and its events must replay (else nothing is trusted).
2. Every PCR 7 event is of a type this engine understands, and its digests
   are the hash of its data; otherwise its content cannot be believed and
   PCR 7 appraisal fails.
3. Exactly one separator; configuration variables only before it.
4. The requirements: Secure Boot enabled, dbx containing given hashes, boot
   applications verified only by allowed authorities (SHA-256 fingerprints of
   the certificates, or the SHA-256 hash for hash-type db entries).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from soapattest.model import Check, SecureBootRequirements
from soapattest.tpm.eventlog import EventType, UntrustedEvent, digest_verified
from soapattest.tpm.eventlog.cursor import DecodeError
from soapattest.tpm.eventlog.efi import (
    EFI_GLOBAL_VARIABLE,
    EFI_IMAGE_SECURITY_DATABASE,
    SHIM_LOCK,
    split_variable,
)
from soapattest.verify.checks import failed, hexs, info, passed
from soapattest.verify.eventlog import LogAppraisal

COMPONENT = "secureboot"
PCR = 7
CONFIG_VARIABLES = {
    EFI_GLOBAL_VARIABLE: {"SecureBoot", "PK", "KEK", "SetupMode", "AuditMode", "DeployedMode"},
    EFI_IMAGE_SECURITY_DATABASE: {"db", "dbx", "dbt", "dbr"},
}
SHIM_CONFIG_AUTHORITIES = {"SbatLevel", "MokListTrusted", "MokList", "MokListX", "MokSBState"}
KNOWN_ACTIONS = {b"DMA Protection Disabled", b"UEFI Debug Mode"}
_CERT_X509 = bytes.fromhex("a159c0a5e494a74a87b5ab155c2bf072")  # EFI_CERT_X509_GUID (LE)
_CERT_SHA256 = bytes.fromhex("2616c4c14c509240aca941f936934328")  # EFI_CERT_SHA256_GUID (LE)


@dataclass(frozen=True, slots=True)
class Authority:
    """An EV_EFI_VARIABLE_AUTHORITY event: who verified a loaded image."""

    event_index: int
    database: str  # "db", "Shim", "MokList", ...
    fingerprint: bytes  # SHA-256 of the certificate DER, or the hash itself
    is_certificate: bool


@dataclass(frozen=True, slots=True)
class SecureBootState:
    """What the trusted PCR 7 events say. ``problems`` non-empty means: do not believe it."""

    enabled: bool | None
    setup_mode: bool | None
    pk_present: bool
    db_fingerprints: frozenset[bytes]
    dbx_hashes: frozenset[bytes]
    authorities: tuple[Authority, ...]
    debug_mode: bool
    dma_protection_disabled: bool
    problems: tuple[tuple[int | None, str], ...]


def _signature_entries(value: bytes) -> list[tuple[bytes, bytes]]:
    """(signature type GUID, payload) for every EFI_SIGNATURE_DATA of a signature database."""
    out: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(value):
        if len(value) - pos < 28:
            raise DecodeError("truncated EFI_SIGNATURE_LIST header")
        sig_type = value[pos : pos + 16]
        list_size = int.from_bytes(value[pos + 16 : pos + 20], "little")
        header_size = int.from_bytes(value[pos + 20 : pos + 24], "little")
        sig_size = int.from_bytes(value[pos + 24 : pos + 28], "little")
        end = pos + list_size
        body = pos + 28 + header_size
        if list_size < 28 or end > len(value) or body > end or sig_size <= 16:
            raise DecodeError("malformed EFI_SIGNATURE_LIST")
        if (end - body) % sig_size:
            raise DecodeError("EFI_SIGNATURE_LIST size is not a multiple of SignatureSize")
        for at in range(body, end, sig_size):
            out.append((sig_type, value[at + 16 : at + sig_size]))  # skip SignatureOwner
        pos = end
    return out


def _fingerprints(value: bytes) -> tuple[set[bytes], set[bytes]]:
    certs: set[bytes] = set()
    hashes: set[bytes] = set()
    for sig_type, payload in _signature_entries(value):
        if sig_type == _CERT_X509:
            certs.add(hashlib.sha256(payload).digest())
        elif sig_type == _CERT_SHA256:
            hashes.add(payload)
    return certs, hashes


def _authority(event: UntrustedEvent, name: str, value: bytes) -> Authority:
    # EFI_SIGNATURE_DATA (owner GUID + certificate) or a bare DER certificate, or a hash.
    if len(value) > 18 and value[16] == 0x30:
        return Authority(event.index, name, hashlib.sha256(value[16:]).digest(), True)
    if len(value) > 2 and value[0] == 0x30:
        return Authority(event.index, name, hashlib.sha256(value).digest(), True)
    if len(value) == 48:  # owner GUID + SHA-256 hash entry of db
        return Authority(event.index, name, value[16:], False)
    raise DecodeError("authority is neither a certificate nor a SHA-256 entry")


def secure_boot_state(events: tuple[UntrustedEvent, ...]) -> SecureBootState:
    """Read the Secure Boot state from PCR 7 events (already vouched for by a quote)."""
    problems: list[tuple[int | None, str]] = []
    variables: dict[str, bytes] = {}
    db: set[bytes] = set()
    dbx: set[bytes] = set()
    authorities: list[Authority] = []
    flags = {"debug": False, "dma": False}
    separators = 0
    for ev in events:
        label = f"event {ev.index} {ev.type_name}"
        # 2. Understood type, digest of the data.
        if digest_verified(ev) is not True:
            problems.append((ev.index, f"{label}: digest is not the hash of its data"))
            continue
        try:
            if ev.untrusted_type == EventType.EV_SEPARATOR:
                separators += 1
                if separators > 1:
                    problems.append((ev.index, f"{label}: second separator in PCR 7"))
            elif ev.untrusted_type == EventType.EV_EFI_VARIABLE_DRIVER_CONFIG:
                guid, name, value, _ = split_variable(ev.data)
                if separators:  # 3. configuration after the separator
                    problems.append((ev.index, f"{label}: variable {name} after the separator"))
                elif name not in CONFIG_VARIABLES.get(guid, set()):
                    problems.append((ev.index, f"{label}: unexpected variable {name} ({guid})"))
                elif name in variables:
                    problems.append((ev.index, f"{label}: variable {name} measured twice"))
                else:
                    variables[name] = value
                    if name == "db":
                        certs, hashes = _fingerprints(value)
                        db |= certs | hashes
                    elif name == "dbx":
                        certs, hashes = _fingerprints(value)
                        dbx |= hashes | certs
            elif ev.untrusted_type == EventType.EV_EFI_VARIABLE_AUTHORITY:
                guid, name, value, _ = split_variable(ev.data)
                if guid == SHIM_LOCK and name in SHIM_CONFIG_AUTHORITIES:
                    continue  # shim's measured configuration (SBAT level, MOK state)
                authorities.append(_authority(ev, name, value))
            elif ev.untrusted_type == EventType.EV_EFI_ACTION:
                if ev.data not in KNOWN_ACTIONS:
                    problems.append((ev.index, f"{label}: unknown action {ev.data[:40]!r}"))
                flags["debug"] |= ev.data == b"UEFI Debug Mode"
                flags["dma"] |= ev.data == b"DMA Protection Disabled"
            else:
                problems.append((ev.index, f"{label}: event type not expected in PCR 7"))
        except DecodeError as exc:
            problems.append((ev.index, f"{label}: data does not decode ({exc})"))
    if separators == 0:
        problems.append((None, "PCR 7 has no separator"))

    def flag(name: str) -> bool | None:
        value = variables.get(name)
        if value is None:
            return None
        if len(value) != 1 or value[0] not in (0, 1):
            problems.append((None, f"variable {name} has a non-boolean value {value.hex()}"))
            return None
        return value[0] == 1

    return SecureBootState(
        enabled=flag("SecureBoot"),
        setup_mode=flag("SetupMode"),
        pk_present=bool(variables.get("PK")),
        db_fingerprints=frozenset(db),
        dbx_hashes=frozenset(dbx),
        authorities=tuple(authorities),
        debug_mode=flags["debug"],
        dma_protection_disabled=flags["dma"],
        problems=tuple(problems),
    )


def evaluate_secure_boot(
    log: LogAppraisal | None, bank: str, req: SecureBootRequirements
) -> list[Check]:
    """Checks for ``req`` on the PCR 7 events the quote vouches for in ``bank``."""
    events = log.trusted_events(bank, PCR) if log is not None else None
    # 1. Vouched-for PCR 7 events.
    if events is None:
        return [
            failed(
                "secureboot.events",
                COMPONENT,
                f"PCR 7 ({bank}) events are not vouched for by the quote: Secure Boot state "
                "unknown",
                pcr=PCR,
                bank=bank,
            )
        ]
    state = secure_boot_state(events)
    # 2-3. Understood and well-ordered.
    checks: list[Check] = [
        failed("secureboot.events", COMPONENT, text, pcr=PCR, event_index=idx)
        for idx, text in state.problems
    ]
    if not state.problems:
        checks.append(
            passed(
                "secureboot.events",
                COMPONENT,
                f"all {len(events)} PCR 7 events are understood and match their data",
                pcr=PCR,
            )
        )
    # 4. Requirements.
    if req.require_enabled:
        if state.enabled is True and state.setup_mode is not True:
            checks.append(passed("secureboot.enabled", COMPONENT, "Secure Boot is enabled"))
        else:
            what = {None: "not measured", False: "disabled"}.get(state.enabled, "in setup mode")
            checks.append(failed("secureboot.enabled", COMPONENT, f"Secure Boot is {what}"))
        if state.debug_mode:
            checks.append(failed("secureboot.debug", COMPONENT, "firmware is in UEFI debug mode"))
    for revoked in req.dbx_must_contain:
        if revoked in state.dbx_hashes:
            checks.append(
                passed("secureboot.dbx", COMPONENT, f"dbx revokes {hexs(revoked, 16)}")
            )
        else:
            checks.append(
                failed(
                    "secureboot.dbx",
                    COMPONENT,
                    f"dbx does not contain the required revocation {hexs(revoked, 16)}",
                    expected=revoked.hex(),
                )
            )
    if req.allowed_authorities:
        allowed = set(req.allowed_authorities)
        bad = [a for a in state.authorities if a.fingerprint not in allowed]
        for a in bad:
            checks.append(
                failed(
                    "secureboot.authority",
                    COMPONENT,
                    f"event {a.event_index}: a boot image was verified by {a.database} entry "
                    f"{hexs(a.fingerprint, 16)}, which is not an allowed authority",
                    event_index=a.event_index,
                    actual=a.fingerprint.hex(),
                )
            )
        if not bad:
            checks.append(
                passed(
                    "secureboot.authority",
                    COMPONENT,
                    f"all {len(state.authorities)} image verifications used allowed authorities",
                )
            )
    if state.dma_protection_disabled:
        checks.append(info("secureboot.dma", COMPONENT, "firmware reports DMA protection disabled"))
    return checks
