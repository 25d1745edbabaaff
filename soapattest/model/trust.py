"""Trust results: a :class:`Check` per verification step, a :class:`TrustReport` per run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class TrustStatus(StrEnum):
    """Overall verdict of a trust report."""

    TRUSTED = "TRUSTED"  # every check passed
    UNTRUSTED = "UNTRUSTED"  # at least one check failed
    UNKNOWN = "UNKNOWN"  # nothing failed, but something could not be decided


class CheckStatus(StrEnum):
    """Outcome of one check."""

    PASS = "PASS"  # noqa: S105 (a status, not a password)
    FAIL = "FAIL"  # evidence contradicts the policy or is forged
    ERROR = "ERROR"  # the check could not be performed (agent down, TPM error)
    INFO = "INFO"  # an observation that does not decide trust (reboot seen, ...)


@dataclass(frozen=True, slots=True)
class Check:
    """One named verification step and its outcome.

    ``id`` is stable and machine-readable (``quote.signature``,
    ``eventlog.replay``, ``whitelist.pcr``, ...); ``component`` groups checks
    for consumers (``quote``, ``eventlog``, ``secureboot``, ``ima``,
    ``whitelist:<name>``); ``reason`` is a sentence an operator can read.
    """

    id: str
    component: str
    status: CheckStatus
    reason: str
    expected: str | None = None
    actual: str | None = None
    pcr: int | None = None
    bank: str | None = None
    event_index: int | None = None


def overall_status(checks: Iterable[Check]) -> TrustStatus:
    """Fold checks into a verdict. No checks at all is UNKNOWN, never TRUSTED."""
    seen_pass = False
    seen_error = False
    # Enum members read once (an attribute lookup on an Enum class is slow; a
    # report has ~50 checks).
    fail, error, ok = CheckStatus.FAIL, CheckStatus.ERROR, CheckStatus.PASS
    for check in checks:
        status = check.status
        if status is fail:
            return TrustStatus.UNTRUSTED
        if status is error:
            seen_error = True
        elif status is ok:
            seen_pass = True
    if seen_error or not seen_pass:
        return TrustStatus.UNKNOWN
    return TrustStatus.TRUSTED


@dataclass(frozen=True, slots=True)
class TrustReport:
    """An immutable evaluation of one host at one time.

    ``pcrs`` holds only values that were verified by a quote signature (bank ->
    PCR -> value); it is empty when the quote did not verify. ``report_id`` is
    assigned by the store (0 before it is stored).
    """

    host: str
    status: TrustStatus
    checks: tuple[Check, ...]
    created_at: datetime
    policy: str | None = None
    policy_version: int | None = None
    whitelists: tuple[tuple[str, int], ...] = ()
    pcrs: Mapping[str, Mapping[int, bytes]] = field(default_factory=dict)
    reset_count: int | None = None
    restart_count: int | None = None
    clock: int | None = None
    firmware_version: int | None = None
    reboot_detected: bool = False
    event_log_sha256: bytes | None = None
    report_id: int = 0

    def failures(self) -> tuple[Check, ...]:
        """Checks that failed or could not be decided."""
        return tuple(c for c in self.checks if c.status in (CheckStatus.FAIL, CheckStatus.ERROR))

    def components(self) -> dict[str, TrustStatus]:
        """Per-component verdict (``quote``, ``eventlog``, ``whitelist:<name>``, ...).

        Components with only INFO checks (observations such as the policy used)
        decide nothing and are left out.
        """
        grouped: dict[str, list[Check]] = {}
        for check in self.checks:
            if check.status is not CheckStatus.INFO:
                grouped.setdefault(check.component, []).append(check)
        return {name: overall_status(checks) for name, checks in grouped.items()}
