"""Small helpers for building :class:`~soapattest.model.Check` lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

from soapattest.model import Check, CheckStatus


def hexs(value: bytes | None, limit: int = 0) -> str:
    """Lowercase hex of ``value`` (abbreviated to ``limit`` characters plus an ellipsis)."""
    if value is None:
        return "-"
    text = value.hex()
    if limit and len(text) > limit:
        return text[:limit] + "…"
    return text


# Hot path (an appraisal builds ~50 checks): a Check is made without the
# generated frozen __init__ (one object.__setattr__ call per field); the slot
# setters give exactly the state ``Check(...)`` would set. The field order is
# taken from the dataclass, so a new field cannot be skipped silently.
_FIELDS = tuple(f.name for f in fields(Check))
if _FIELDS != (
    "id", "component", "status", "reason", "expected", "actual", "pcr", "bank", "event_index",
):  # pragma: no cover - guards a change of the model
    raise ImportError("soapattest.model.Check changed: update soapattest.verify.checks")
_SET: tuple[Callable[[Any, Any], None], ...] = tuple(
    getattr(Check, name).__set__ for name in _FIELDS
)
_new = object.__new__


def make_check(
    status: CheckStatus,
    check_id: str,
    component: str,
    reason: str,
    *,
    expected: str | None = None,
    actual: str | None = None,
    pcr: int | None = None,
    bank: str | None = None,
    event_index: int | None = None,
) -> Check:
    """A :class:`Check` with ``status``; keyword fields as in :class:`Check`."""
    c = _new(Check)
    s_id, s_comp, s_status, s_reason, s_exp, s_act, s_pcr, s_bank, s_event = _SET
    s_id(c, check_id)
    s_comp(c, component)
    s_status(c, status)
    s_reason(c, reason)
    s_exp(c, expected)
    s_act(c, actual)
    s_pcr(c, pcr)
    s_bank(c, bank)
    s_event(c, event_index)
    return c


def _maker(status: CheckStatus) -> Callable[..., Check]:
    def make(
        check_id: str,
        component: str,
        reason: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
        pcr: int | None = None,
        bank: str | None = None,
        event_index: int | None = None,
    ) -> Check:
        c = _new(Check)
        s_id, s_comp, s_status, s_reason, s_exp, s_act, s_pcr, s_bank, s_event = _SET
        s_id(c, check_id)
        s_comp(c, component)
        s_status(c, status)
        s_reason(c, reason)
        s_exp(c, expected)
        s_act(c, actual)
        s_pcr(c, pcr)
        s_bank(c, bank)
        s_event(c, event_index)
        return c

    make.__name__ = make.__qualname__ = status.value.lower()
    make.__doc__ = f"A {status.value} :class:`Check` (arguments as :func:`make_check`)."
    return make


passed = _maker(CheckStatus.PASS)
failed = _maker(CheckStatus.FAIL)
errored = _maker(CheckStatus.ERROR)
info = _maker(CheckStatus.INFO)


# Passing checks that recur in every report of a host (same PCR, same value,
# same event count...) are immutable values: each call site keeps a memo from
# the exact inputs of the check's fields to the check, so a report reuses them.
Memo = dict[tuple[object, ...], Check]
MEMO_MAX = 4096
_MEMOS: list[dict[Any, Any]] = []
_K = TypeVar("_K")
_V = TypeVar("_V")


def registered(memo: dict[_K, _V]) -> dict[_K, _V]:
    """Register a module-level memo of the engine (so :func:`clear_memos` empties it)."""
    _MEMOS.append(memo)
    return memo


def clear_memos() -> None:
    """Empty every memo of the engine (tests and the benchmark's cold-cache figures).

    Every memo maps the exact inputs of a pure function to its result, so
    clearing them never changes a result, only the time it takes.
    """
    for memo in _MEMOS:
        memo.clear()


def remember(memo: Memo, key: tuple[object, ...], check: Check) -> Check:
    """Store ``check`` under ``key`` (``key`` must determine every field); return it."""
    if len(memo) >= MEMO_MAX:
        memo.clear()
    memo[key] = check
    return check


# ---------------------------------------------------------------------------- folding

_FOLDED_REASON: dict[str, Callable[[str, str, str, int], str]] = {
    "eventlog.replay": lambda pcrs, bank, comp, n: (
        f"PCRs {pcrs} ({bank}) replay to the quoted values"
    ),
    "eventlog.separator": lambda pcrs, bank, comp, n: (
        f"PCRs {pcrs} each have one well-formed separator"
    ),
    "whitelist.pcr": lambda pcrs, bank, comp, n: (
        f"PCRs {pcrs} ({bank}) match {comp.replace(':', ' ', 1)}"
    ),
    "whitelist.event": lambda pcrs, bank, comp, n: (
        f"PCRs {pcrs} ({bank}): every event is in {comp.replace(':', ' ', 1)}"
    ),
}


def pcr_ranges(pcrs: list[int]) -> str:
    """``[0, 1, 2, 4]`` -> ``"0-2, 4"``."""
    out: list[str] = []
    start = prev = pcrs[0]
    for p in [*pcrs[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ", ".join(out)


def fold_passes(checks: list[Check]) -> list[Check]:
    """Merge the per-PCR PASS checks of one step, bank and component into one check.

    A report keeps every failure, error and observation as it is; what passed
    for PCRs 0-7 alike is said once ("PCRs 0-7 (sha256) replay to the quoted
    values"). Only the steps in ``_FOLDED_REASON`` are folded.
    """
    groups: dict[tuple[str, str, str], list[Check]] = {}
    for c in checks:
        if c.status is CheckStatus.PASS and c.pcr is not None and c.id in _FOLDED_REASON:
            groups.setdefault((c.id, c.component, c.bank or ""), []).append(c)
    if not any(len(g) > 1 for g in groups.values()):
        return checks
    out: list[Check] = []
    emitted: set[tuple[str, str, str]] = set()
    for c in checks:
        key = (c.id, c.component, c.bank or "")
        group = groups.get(key) if c.status is CheckStatus.PASS and c.pcr is not None else None
        if group is None or len(group) == 1:
            out.append(c)
            continue
        if key in emitted:
            continue
        emitted.add(key)
        pcrs = sorted({g.pcr for g in group if g.pcr is not None})
        reason = _FOLDED_REASON[c.id](pcr_ranges(pcrs), c.bank or "", c.component, len(group))
        out.append(make_check(CheckStatus.PASS, c.id, c.component, reason, bank=c.bank))
    return out
