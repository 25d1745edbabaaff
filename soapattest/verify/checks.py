"""Small helpers for building :class:`~soapattest.model.Check` lists."""

from __future__ import annotations

from functools import partial

from soapattest.model import Check, CheckStatus


def hexs(value: bytes | None, limit: int = 0) -> str:
    """Lowercase hex of ``value`` (abbreviated to ``limit`` characters plus an ellipsis)."""
    if value is None:
        return "-"
    text = value.hex()
    if limit and len(text) > limit:
        return text[:limit] + "…"
    return text


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
    return Check(
        id=check_id,
        component=component,
        status=status,
        reason=reason,
        expected=expected,
        actual=actual,
        pcr=pcr,
        bank=bank,
        event_index=event_index,
    )


passed = partial(make_check, CheckStatus.PASS)
failed = partial(make_check, CheckStatus.FAIL)
errored = partial(make_check, CheckStatus.ERROR)
info = partial(make_check, CheckStatus.INFO)
