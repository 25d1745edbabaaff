"""Sample domain values for the store tests (plain functions, no fixtures)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from soapattest.model import (
    Check,
    CheckStatus,
    Combine,
    EntryKind,
    Host,
    HostIdentity,
    Policy,
    TrustReport,
    TrustStatus,
    WhitelistEntry,
    WhitelistRef,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def identity(tag: int) -> HostIdentity:
    """A distinct (fake-bytes) TPM identity; the store treats these as opaque."""
    return HostIdentity(
        ek_public=bytes([tag]) * 32 + b"ek",
        ek_certificate=bytes([tag]) * 8 + b"cert",
        ak_public=bytes([tag]) * 32 + b"ak",
        ak_name=b"\x00\x0b" + bytes([tag]) * 32,
        activated_at=at(tag),
        qualified_signer=b"\x00\x0b" + bytes([tag + 1]) * 32,
    )


def host(name: str, *, pool: str = "", policy: str = "", ident: int | None = None) -> Host:
    return Host(
        name=name,
        agent_url=f"http://127.0.0.1:9/{name}",
        pool=pool,
        policy=policy,
        labels={"rack": "r1", "zone": "a"},
        description=f"host {name}",
        identity=None if ident is None else identity(ident),
    )


def pcr_entry(pcr: int, fill: int, label: str = "") -> WhitelistEntry:
    return WhitelistEntry(EntryKind.PCR, "sha256", pcr, bytes([fill]) * 32, label=label)


def event_entry(pcr: int, fill: int) -> WhitelistEntry:
    return WhitelistEntry(EntryKind.EVENT, "sha1", pcr, bytes([fill]) * 20, label="EV_X")


def ima_entry(path: str, fill: int) -> WhitelistEntry:
    return WhitelistEntry(EntryKind.IMA, "sha256", 10, bytes([fill]) * 32, path=path)


def policy(name: str, *whitelists: WhitelistRef) -> Policy:
    return Policy(
        name=name,
        version=0,
        combine=Combine.ALL_OF,
        whitelists=whitelists or (WhitelistRef("wl"),),
    )


def report(
    host_name: str, created_at: datetime, status: TrustStatus = TrustStatus.TRUSTED
) -> TrustReport:
    check_status = {
        TrustStatus.TRUSTED: CheckStatus.PASS,
        TrustStatus.UNTRUSTED: CheckStatus.FAIL,
        TrustStatus.UNKNOWN: CheckStatus.ERROR,
    }[status]
    return TrustReport(
        host=host_name,
        status=status,
        checks=(
            Check("quote.signature", "quote", CheckStatus.PASS, "signature verifies"),
            Check(
                "whitelist.pcr",
                "whitelist:wl",
                check_status,
                "PCR 7 value",
                expected="aa" * 32,
                actual="bb" * 32,
                pcr=7,
                bank="sha256",
            ),
            Check("eventlog.event", "eventlog", CheckStatus.INFO, "seen", event_index=3),
        ),
        created_at=created_at,
        policy="p",
        policy_version=1,
        whitelists=(("wl", 2),),
        pcrs={"sha256": {0: b"\x01" * 32, 7: b"\x07" * 32}, "sha1": {0: b"\x02" * 20}},
        reset_count=3,
        restart_count=1,
        clock=2**63 + 5,
        firmware_version=2**64 - 1,
        reboot_detected=True,
        event_log_sha256=b"\xee" * 32,
    )
