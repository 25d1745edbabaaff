"""How the client commands show results: stable JSON documents and rich tables.

JSON conventions (documented in docs/client.md, stable within a major version):
binary values (digests, names, nonces) are lowercase hex, times are ISO 8601 UTC
with a ``Z``, absent values are ``null``, keys are sorted. Tables are for people
and may change.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from soapattest.client.results import HostInfo, HostTrust, PoolInfo, WhitelistSummary
from soapattest.model import (
    AuditRecord,
    Check,
    CheckStatus,
    PlacementDecision,
    Policy,
    TrustReport,
    TrustStatus,
    Whitelist,
    WhitelistEntry,
)

STATUS_STYLE = {
    TrustStatus.TRUSTED: "bold green",
    TrustStatus.UNTRUSTED: "bold red",
    TrustStatus.UNKNOWN: "bold yellow",
}
CHECK_STYLE = {
    CheckStatus.PASS: "green",
    CheckStatus.FAIL: "red",
    CheckStatus.ERROR: "yellow",
    CheckStatus.INFO: "dim",
}
_EVENT_REF = re.compile(r"\bevent \d+\b")


def console(stderr: bool = False) -> Console:
    """A console that does not squeeze tables to 80 columns when piped."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


# ---------------------------------------------------------------- JSON documents


def when(value: datetime | None) -> str | None:
    """ISO 8601 UTC with ``Z`` (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def hx(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def pcrs_json(pcrs: Mapping[str, Mapping[int, bytes]]) -> dict[str, dict[str, str]]:
    return {bank: {str(i): v.hex() for i, v in sorted(vals.items())} for bank, vals in pcrs.items()}


def host_json(h: HostInfo) -> dict[str, Any]:
    cert_pem = None
    if h.ek_certificate:
        b64 = base64.encodebytes(h.ek_certificate).decode("ascii")
        cert_pem = f"-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n"
    return {
        "name": h.name,
        "agent_url": h.agent_url,
        "pool": h.pool or None,
        "policy": h.policy or None,
        "effective_policy": h.effective_policy or None,
        "labels": dict(h.labels),
        "description": h.description or None,
        "ak_name": hx(h.ak_name) if h.ak_name else None,
        "ek_certificate_pem": cert_pem,
        "ek_certificate_sha256": hashlib.sha256(h.ek_certificate).hexdigest()
        if h.ek_certificate
        else None,
        "activated_at": when(h.activated_at),
        "reset_count": h.reset_count,
        "created_at": when(h.created_at),
    }


def check_json(c: Check) -> dict[str, Any]:
    return {
        "id": c.id,
        "component": c.component,
        "status": c.status.value,
        "reason": c.reason,
        "expected": c.expected,
        "actual": c.actual,
        "pcr": c.pcr,
        "bank": c.bank,
        "event_index": c.event_index,
    }


def report_json(r: TrustReport) -> dict[str, Any]:
    return {
        "report_id": r.report_id,
        "host": r.host,
        "status": r.status.value,
        "created_at": when(r.created_at),
        "policy": r.policy,
        "policy_version": r.policy_version,
        "whitelists": [{"name": n, "version": v} for n, v in r.whitelists],
        "checks": [check_json(c) for c in r.checks],
        "pcrs": pcrs_json(r.pcrs),
        "reset_count": r.reset_count,
        "restart_count": r.restart_count,
        "clock": r.clock,
        "firmware_version": r.firmware_version,
        "reboot_detected": r.reboot_detected,
        "event_log_sha256": hx(r.event_log_sha256),
    }


def host_trust_json(t: HostTrust) -> dict[str, Any]:
    return {
        "host": t.host,
        "status": t.status.value if t.status else None,
        "cached": t.cached,
        "report": report_json(t.report) if t.report else None,
        "fault_code": t.fault_code or None,
        "fault_string": t.fault_string or None,
    }


def entry_json(e: WhitelistEntry) -> dict[str, Any]:
    return {
        "kind": e.kind.value,
        "bank": e.bank,
        "pcr": e.pcr,
        "digest": e.digest.hex(),
        "path": e.path or None,
        "label": e.label or None,
    }


def whitelist_json(w: Whitelist) -> dict[str, Any]:
    return {
        "name": w.name,
        "version": w.version,
        "description": w.description or None,
        "created_at": when(w.created_at),
        "created_by": w.created_by or None,
        "source_host": w.source_host or None,
        "entry_count": len(w.entries),
        "entries": [entry_json(e) for e in w.entries],
    }


def whitelist_summary_json(w: WhitelistSummary) -> dict[str, Any]:
    return {
        "name": w.name,
        "version": w.version,
        "description": w.description or None,
        "created_at": when(w.created_at),
        "created_by": w.created_by or None,
        "source_host": w.source_host or None,
        "entry_count": w.entry_count,
    }


def policy_json(p: Policy) -> dict[str, Any]:
    sb = p.secure_boot
    return {
        "name": p.name,
        "version": p.version,
        "combine": p.combine.value,
        "whitelists": [{"name": r.name, "version": r.version} for r in p.whitelists],
        "banks": list(p.banks),
        "use_event_log": p.use_event_log,
        "secure_boot": None
        if sb is None
        else {
            "require_enabled": sb.require_enabled,
            "dbx_must_contain": [x.hex() for x in sb.dbx_must_contain],
            "allowed_authorities": [x.hex() for x in sb.allowed_authorities],
        },
        "ima": {"mode": p.ima.mode.value, "bank": p.ima.bank},
        "signature_hashes": list(p.signature_hashes),
        "min_rsa_bits": p.min_rsa_bits,
        "min_ecc_bits": p.min_ecc_bits,
        "description": p.description or None,
        "created_at": when(p.created_at),
        "created_by": p.created_by or None,
    }


def decision_json(d: PlacementDecision) -> dict[str, Any]:
    return {
        "host": d.host,
        "allowed": d.allowed,
        "reasons": list(d.reasons),
        "report_id": d.report_id,
    }


def pool_json(p: PoolInfo) -> dict[str, Any]:
    return {"name": p.name, "policy": p.policy or None, "host_count": p.host_count}


def audit_json(a: AuditRecord) -> dict[str, Any]:
    return {
        "id": a.record_id,
        "at": when(a.at),
        "actor": a.actor,
        "action": a.action,
        "target_type": a.target_type,
        "target": a.target,
        "outcome": a.outcome,
        "details": dict(a.details),
    }


# ---------------------------------------------------------------- tables


def status_text(status: TrustStatus | None, fallback: str = "-") -> Text:
    if status is None:
        return Text(fallback, style="bold yellow")
    return Text(status.value, style=STATUS_STYLE[status])


def first_failure(report: TrustReport | None) -> str:
    """The first FAIL (else ERROR) check's reason, for one-line summaries."""
    if report is None:
        return ""
    failures = report.failures()
    fails = [c for c in failures if c.status is CheckStatus.FAIL] or list(failures)
    if not fails:
        return ""
    more = f" (+{len(fails) - 1} more)" if len(fails) > 1 else ""
    return fails[0].reason + more


def hosts_table(hosts: Iterable[HostInfo]) -> Table:
    table = Table(title="Hosts")
    for col in ("name", "pool", "policy", "agent", "labels", "resetCount", "registered"):
        table.add_column(col)
    for h in hosts:
        policy = h.policy or (f"{h.effective_policy} (pool)" if h.effective_policy else "-")
        table.add_row(
            h.name,
            h.pool or "-",
            policy,
            h.agent_url,
            ", ".join(f"{k}={v}" for k, v in sorted(h.labels.items())),
            "-" if h.reset_count is None else str(h.reset_count),
            when(h.created_at) or "-",
        )
    return table


def host_table(h: HostInfo) -> Table:
    table = Table(title=f"Host {h.name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    doc = host_json(h)
    doc.pop("ek_certificate_pem")
    for key, value in doc.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "-"
        table.add_row(key, "-" if value is None else str(value))
    return table


def trust_table(results: Iterable[HostTrust], title: str = "Trust") -> Table:
    table = Table(title=title)
    for col in ("host", "status", "report", "policy", "cached", "reason"):
        table.add_column(col)
    for t in results:
        reason = f"{t.fault_code}: {t.fault_string}" if t.fault_code else first_failure(t.report)
        table.add_row(
            t.host,
            status_text(t.status, "NO REPORT"),
            str(t.report.report_id) if t.report else "-",
            f"{t.report.policy}@{t.report.policy_version}" if t.report and t.report.policy else "-",
            "yes" if t.cached else "no",
            Text(reason, style="red" if reason else ""),
        )
    return table


def _reason_text(check: Check) -> Text:
    style = CHECK_STYLE[check.status]
    text = Text(check.reason, style=style)
    if check.status in (CheckStatus.FAIL, CheckStatus.ERROR):
        text.highlight_regex(_EVENT_REF, "bold reverse red")
    return text


def report_tables(r: TrustReport) -> list[Table]:
    """The report header, its checks (FAIL red, PASS green, INFO dim) and, when events
    failed, a table of the failing events."""
    head = Table(show_header=False, title=f"Trust report {r.report_id}")
    head.add_column("field", style="bold")
    head.add_column("value")
    head.add_row("host", r.host)
    head.add_row("status", status_text(r.status))
    failed = r.failures()
    if failed:
        head.add_row("failed checks", Text(str(len(failed)), style="bold red"))
    head.add_row("created", when(r.created_at) or "-")
    head.add_row("policy", f"{r.policy}@{r.policy_version}" if r.policy else "-")
    head.add_row("whitelists", ", ".join(f"{n}@{v}" for n, v in r.whitelists) or "-")
    head.add_row(
        "TPM", f"resetCount {r.reset_count}, restartCount {r.restart_count}, clock {r.clock}"
    )
    if r.reboot_detected:
        head.add_row("reboot", Text("detected since the previous report", style="yellow"))
    checks = Table(title="Checks")
    for col in ("status", "check", "component", "reason", "where"):
        checks.add_column(col)
    for c in r.checks:
        where = []
        if c.pcr is not None:
            where.append(f"PCR {c.pcr}" + (f" ({c.bank})" if c.bank else ""))
        if c.event_index is not None:
            where.append(f"event {c.event_index}")
        checks.add_row(
            Text(c.status.value, style=CHECK_STYLE[c.status]),
            Text(c.id, style=CHECK_STYLE[c.status]),
            c.component,
            _reason_text(c),
            Text(", ".join(where), style="bold red" if c.status is CheckStatus.FAIL else ""),
        )
    tables = [head, checks]
    events = [c for c in r.checks if c.status is CheckStatus.FAIL and c.event_index is not None]
    if events:
        failing = Table(title="Failing events", title_style="bold red")
        for col in ("event", "PCR", "bank", "actual", "expected", "check"):
            failing.add_column(col, style="red")
        for c in events:
            failing.add_row(
                str(c.event_index),
                "-" if c.pcr is None else str(c.pcr),
                c.bank or "-",
                c.actual or "-",
                c.expected or "-",
                c.id,
            )
        tables.append(failing)
    return tables


def reports_table(reports: Iterable[TrustReport], total: int) -> Table:
    table = Table(title=f"Trust reports ({total} in all)")
    for col in ("id", "host", "status", "created", "policy", "first failure"):
        table.add_column(col)
    for r in reports:
        table.add_row(
            str(r.report_id),
            r.host,
            status_text(r.status),
            when(r.created_at) or "-",
            f"{r.policy}@{r.policy_version}" if r.policy else "-",
            Text(first_failure(r), style="red"),
        )
    return table


def entries_table(entries: Iterable[WhitelistEntry], title: str, style: str = "") -> Table:
    table = Table(title=title)
    for col in ("kind", "bank", "PCR", "digest", "path / label"):
        table.add_column(col, style=style)
    for e in entries:
        table.add_row(e.kind.value, e.bank, str(e.pcr), e.digest.hex(), e.path or e.label)
    return table


def whitelists_table(items: Iterable[WhitelistSummary]) -> Table:
    table = Table(title="Whitelists (latest versions)")
    for col in ("name", "version", "entries", "source host", "created", "description"):
        table.add_column(col)
    for w in items:
        table.add_row(
            w.name,
            str(w.version),
            str(w.entry_count),
            w.source_host or "-",
            when(w.created_at) or "-",
            w.description,
        )
    return table


def policy_table(p: Policy) -> Table:
    table = Table(title=f"Policy {p.name} v{p.version}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in policy_json(p).items():
        if isinstance(value, list):
            value = ", ".join(
                f"{v['name']}@{v['version'] or 'latest'}" if isinstance(v, dict) else str(v)
                for v in value
            )
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        table.add_row(key, "-" if value is None else str(value))
    return table


def policies_table(items: Iterable[Policy]) -> Table:
    table = Table(title="Policies (latest versions)")
    for col in ("name", "version", "combine", "whitelists", "banks", "event log", "ima"):
        table.add_column(col)
    for p in items:
        table.add_row(
            p.name,
            str(p.version),
            p.combine.value,
            ", ".join(str(r) for r in p.whitelists),
            ", ".join(p.banks),
            "yes" if p.use_event_log else "no",
            p.ima.mode.value,
        )
    return table


def decisions_table(items: Iterable[PlacementDecision], title: str) -> Table:
    table = Table(title=title)
    for col in ("host", "decision", "report", "reasons"):
        table.add_column(col)
    for d in items:
        table.add_row(
            d.host,
            Text("ALLOW", style="bold green") if d.allowed else Text("DENY", style="bold red"),
            "-" if d.report_id is None else str(d.report_id),
            "\n".join(d.reasons),
        )
    return table


def pools_table(items: Iterable[PoolInfo]) -> Table:
    table = Table(title="Pools")
    for col in ("pool", "policy", "hosts"):
        table.add_column(col)
    for p in items:
        table.add_row(p.name, p.policy or "-", str(p.host_count))
    return table


def audit_table(items: Iterable[AuditRecord], total: int) -> Table:
    table = Table(title=f"Audit records ({total} in all)")
    for col in ("id", "at", "actor", "action", "target", "outcome"):
        table.add_column(col)
    for a in items:
        table.add_row(
            str(a.record_id),
            when(a.at) or "-",
            a.actor,
            a.action,
            f"{a.target_type}:{a.target}",
            a.outcome,
        )
    return table
