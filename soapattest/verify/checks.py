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
