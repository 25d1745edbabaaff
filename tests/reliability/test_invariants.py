"""The invariant checks used by the fault tests can fail: each kind of damage they look
for, written straight into a real SQLite store, is reported; the undamaged twin passes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from soapattest.model import TrustStatus
from soapattest.store import Store, Tx
from tests.integration.store_data import at, host, report
from tests.reliability.invariants import (
    InvariantError,
    Snapshot,
    check_consistent,
    new_nonces,
    new_reports,
    snapshot,
)

TTL = 120


def _decision(tx: Tx, report_id: int, name: str, outcome: str) -> None:
    tx.audit.record(
        actor="t",
        action="trust.decision",
        target_type="host",
        target=name,
        outcome=outcome,
        details={"report_id": report_id},
        at=at(1),
    )


def _good(tx: Tx) -> None:
    stored = tx.reports.add(report("h", at(1)))
    _decision(tx, stored.report_id, "h", "TRUSTED")
    tx.nonces.issue("h", b"n1", "attest", now=at(0), expires_at=at(TTL))
    tx.nonces.consume("h", b"n1", "attest", now=at(1))
    tx.nonces.issue("h", b"n2", "attest", now=at(2), expires_at=at(2 + TTL))  # never used


def _no_audit(tx: Tx) -> None:
    tx.reports.add(report("h", at(1)))


def _audit_without_report(tx: Tx) -> None:
    _decision(tx, 999, "h", "TRUSTED")


def _two_audits(tx: Tx) -> None:
    stored = tx.reports.add(report("h", at(1)))
    _decision(tx, stored.report_id, "h", "TRUSTED")
    _decision(tx, stored.report_id, "h", "TRUSTED")


def _audit_disagrees(tx: Tx) -> None:
    stored = tx.reports.add(report("h", at(1)))
    _decision(tx, stored.report_id, "h", "UNKNOWN")


def _status_not_verdict(tx: Tx) -> None:
    untrusted = report("h", at(1), TrustStatus.UNTRUSTED)
    forged = dataclasses.replace(untrusted, status=TrustStatus.TRUSTED)
    stored = tx.reports.add(forged)
    _decision(tx, stored.report_id, "h", "TRUSTED")


def _trusted_without_pcrs(tx: Tx) -> None:
    stored = tx.reports.add(dataclasses.replace(report("h", at(1)), pcrs={}))
    _decision(tx, stored.report_id, "h", "TRUSTED")


def _immortal_nonce(tx: Tx) -> None:
    tx.nonces.issue("h", b"n", "attest", now=at(0), expires_at=at(0) + timedelta(days=30))


DAMAGE: dict[str, Callable[[Tx], None]] = {
    "report without audit record": _no_audit,
    "audit record without report": _audit_without_report,
    "two audit records": _two_audits,
    "audit disagrees": _audit_disagrees,
    "status is not the verdict": _status_not_verdict,
    "TRUSTED without PCRs": _trusted_without_pcrs,
    "nonce outlives its TTL": _immortal_nonce,
}


def _store(tmp_path: Path, write: Callable[[Tx], None]) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with Store(url) as store:
        store.upgrade()
        with store.transaction() as tx:
            tx.hosts.add(host("h"), at(0))
        with store.transaction() as tx:
            write(tx)
    return url


def test_consistent_store_passes(tmp_path: Path) -> None:
    url = _store(tmp_path, _good)
    snap = snapshot(url)
    check_consistent(snap, nonce_ttl=TTL)
    assert [r.host for r in snap.reports] == ["h"]
    assert {h: len(r) for h, r in new_reports(Snapshot((), (), ()), snap).items()} == {"h": 1}
    nonces = sorted(new_nonces(snap, at(0))["h"], key=lambda n: n.issued_at)
    assert [n.consumed_at is None for n in nonces] == [False, True]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_found(tmp_path: Path, damage: str) -> None:
    url = _store(tmp_path, DAMAGE[damage])
    with pytest.raises(InvariantError):
        check_consistent(snapshot(url), nonce_ttl=TTL)
