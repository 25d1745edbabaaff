"""What every adversarial case asserts, and the in-process world most cases run in.

Every case ends with :func:`assert_defended`, which checks the four promises of
issue 6 for an attack's :class:`Outcome`:

1. a clear answer: the exact SOAP fault code, or a report whose failing
   (FAIL/ERROR) checks include the exact check id;
2. no trust granted: the outcome is not TRUSTED, and when a report was stored
   it is now the host's newest (it supersedes an earlier TRUSTED); when a fault
   was returned, no report was stored;
3. no change to hosts (identities included), identity history, whitelists,
   policies, pools or users (a :class:`Snapshot` before and after);
4. the server keeps serving (an honest follow-up call succeeds) and nothing
   leaked a traceback.

:class:`Lab` is the in-process world: the real WSGI application (XML guard,
WS-Security, Spyne, use cases) over a real SQLite store, whose agent port is the
production :class:`SoapAgentClient` talking real HTTP to hostile agents on
loopback. Software hosts (:mod:`tests.adversarial.soft`) are enrolled by the
test-only path. The real-server world (gunicorn + swtpm hosts) is in
:mod:`tests.adversarial.realworld`.
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from lxml import etree
from sqlalchemy import text

from soapattest.errors import SoapAttestError
from soapattest.model import (
    CheckStatus,
    Combine,
    EntryKind,
    ImaMode,
    ImaRequirements,
    Policy,
    SecureBootRequirements,
    TrustReport,
    TrustStatus,
    Whitelist,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.security.users import ensure_user
from soapattest.server.agents import SoapAgentClient
from soapattest.store import Store
from soapattest.tpm.eventlog import parse_event_log
from soapattest.tpm.ima import parse_ima
from soapattest.tpm.pcr import PcrSelection
from soapattest.verify.appraise import required_selection
from soapattest.verify.quote import QuoteEvidence
from tests.adversarial.hostile_agent import HostileAgent
from tests.adversarial.soft import SoftHost, enrol
from tests.conftest import EVENTLOG_DIR, IMA_DIR
from tests.integration.service_harness import ADMIN, NS, InProcessService, Response

GOOD_LOG = (EVENTLOG_DIR / "gotpmtools_rhel8-uefi.bin").read_bytes()  # Secure Boot on
IMA_BIOS_LOG = (EVENTLOG_DIR / "imaverify_vm_binary_bios_measurements.bin").read_bytes()
IMA_LIST = (IMA_DIR / "imaverify_vm_binary_runtime_measurements_sha256").read_bytes()
AGENT_TIMEOUT = 2.0  # seconds the lab's server waits for an agent

# Users of the roles other than admin (Lab.add_role_users creates them).
ROLE_USERS: dict[str, tuple[str, str]] = {
    "reader": ("reader-user", "another long passphrase"),  # the harness's READER
    "assertion-consumer": ("consumer-user", "consumer long passphrase"),
    "attester": ("attester-user", "attester long passphrase"),
    "host-admin": ("hostadmin-user", "host admin long passphrase"),
    "whitelist-admin": ("wladmin-user", "whitelist admin long passphrase"),
}


# ---------------------------------------------------------------------- outcome


@dataclass(frozen=True)
class Outcome:
    """What an attack got back: a fault (code, sentence) or a trust report."""

    fault: str | None = None
    message: str = ""
    status: TrustStatus | None = None
    checks: tuple[tuple[str, CheckStatus, str], ...] = ()
    report_id: int | None = None
    reboot_detected: bool = False

    def failing(self) -> dict[str, str]:
        """Check id -> reason of every FAIL or ERROR check."""
        return {
            cid: reason
            for cid, status, reason in self.checks
            if status in (CheckStatus.FAIL, CheckStatus.ERROR)
        }

    def has(self, check_id: str, status: CheckStatus) -> bool:
        return any(c == check_id and s is status for c, s, _ in self.checks)

    @classmethod
    def of_report(cls, report: TrustReport) -> Outcome:
        return cls(
            status=report.status,
            checks=tuple((c.id, c.status, c.reason) for c in report.checks),
            report_id=report.report_id,
            reboot_detected=report.reboot_detected,
        )

    @classmethod
    def of_error(cls, exc: SoapAttestError) -> Outcome:
        return cls(fault=exc.code, message=exc.message)

    @classmethod
    def of_response(cls, resp: Response) -> Outcome:
        """An in-process SOAP response holding a fault or a TrustReport."""
        if resp.fault_code:
            return cls(fault=resp.fault_code, message=resp.fault_string)
        assert resp.status == 200, resp.body[:500]
        report = resp.root.find(f".//{{{NS}}}report")
        assert report is not None, resp.body[:500]
        return cls.of_report_xml(report)

    @classmethod
    def of_report_xml(cls, report: etree._Element) -> Outcome:
        def text(el: etree._Element, local: str) -> str:
            return el.findtext(f"{{{NS}}}{local}") or ""

        return cls(
            status=TrustStatus(text(report, "status")),
            checks=tuple(
                (text(c, "id"), CheckStatus(text(c, "status")), text(c, "reason"))
                for c in report.iterfind(f"{{{NS}}}check")
            ),
            report_id=int(text(report, "report_id")),
            reboot_detected=text(report, "reboot_detected") == "true",
        )


# ---------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class Snapshot:
    """What no attack may change (``state``) and each host's newest report (``latest``).

    ``state`` leaves out a host's last verified clock state, which every verified
    quote legitimately advances, and the audit log, which records refusals.
    """

    state: Mapping[str, Any]
    latest: Mapping[str, tuple[int, TrustStatus] | None]


# Tables whose every row no attack may change (whole-table copies, ordered by id).
FROZEN_TABLES = (
    "host_identity_history",
    "whitelists",
    "whitelist_versions",
    "whitelist_entries",
    "policies",
    "policy_versions",
    "policy_whitelist_refs",
    "pools",
    "users",
)


def snapshot(store: Store) -> Snapshot:
    """Hosts (identity included), identity history, whitelists, policies, pools, users.

    Hosts are compared field by field (without their last verified clock state);
    the other tables row by row, every version of every whitelist and policy.
    """
    with store.transaction(readonly=True) as tx:
        hosts, _ = tx.hosts.list(limit=10_000)
        state: dict[str, Any] = {
            "hosts": {
                h.name: (
                    h.agent_url,
                    h.pool,
                    h.policy,
                    tuple(sorted(h.labels.items())),
                    h.description,
                    h.identity,
                    h.created_at,
                )
                for h in hosts
            },
        }
        latest_reports = tx.reports.latest_many([h.name for h in hosts]) if hosts else {}
    with store.engine.connect() as conn:
        for table in FROZEN_TABLES:
            state[table] = tuple(
                tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))  # noqa: S608
            )
    latest: dict[str, tuple[int, TrustStatus] | None] = {h.name: None for h in hosts}
    for name, report in latest_reports.items():
        latest[name] = (report.report_id, report.status)
    return Snapshot(state=state, latest=latest)


def whitelist_versions(store: Store, name: str) -> tuple[int, ...]:
    """Every version number of the active whitelist ``name``."""
    with store.transaction(readonly=True) as tx:
        return tuple(tx.whitelists.versions(name))


class World(Protocol):
    """A server under attack: its store, and an honest call that must keep working."""

    def snapshot(self) -> Snapshot: ...

    def alive(self) -> bool: ...


def assert_defended(
    world: World,
    before: Snapshot,
    outcome: Outcome,
    *,
    host: str | None,
    fault: str | None = None,
    check: str | None = None,
    status: TrustStatus | None = None,
) -> Outcome:
    """The four promises of every adversarial case (see the module docstring).

    Give exactly one of ``fault`` (the SOAP fault code) or ``check`` (a check id
    that must FAIL or ERROR in the report); ``status`` pins the verdict.
    """
    assert (fault is None) != (check is None), "give a fault code or a check id"
    # 1. A clear answer.
    assert "Traceback" not in outcome.message and outcome.fault != "Server.Internal", outcome
    if fault is not None:
        assert outcome.fault == fault, outcome
        assert outcome.message.strip(), "a fault needs a sentence"
    else:
        assert outcome.fault is None, outcome
        assert check in outcome.failing(), (check, outcome.failing(), outcome.status)
    # 2. No trust granted.
    assert outcome.status is not TrustStatus.TRUSTED, outcome
    if status is not None:
        assert outcome.status is status, outcome
    after = world.snapshot()
    if host is not None:
        latest = after.latest.get(host)
        if outcome.report_id is not None:
            assert latest == (outcome.report_id, outcome.status), (latest, outcome.report_id)
        else:
            assert latest == before.latest.get(host), "a refused request stored a report"
        assert latest is None or latest[1] is not TrustStatus.TRUSTED or latest == before.latest[
            host
        ], "trust was granted"
    # 3. Nothing changed.
    for key, value in before.state.items():
        assert after.state[key] == value, f"{key} changed"
    # 4. The server keeps serving.
    assert world.alive(), "the server stopped serving honest requests"
    return outcome


# ---------------------------------------------------------------------- SOAP bodies


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pcr_xml(pcrs: Mapping[str, Mapping[int, bytes]]) -> str:
    return "".join(
        f"<t:pcr><t:bank>{bank}</t:bank><t:index>{index}</t:index>"
        f"<t:value>{b64(value)}</t:value></t:pcr>"
        for bank, values in pcrs.items()
        for index, value in sorted(values.items())
    )


def verify_quote_xml(
    host: str,
    nonce: bytes,
    attest: bytes,
    signature: bytes,
    pcrs: Mapping[str, Mapping[int, bytes]],
    event_log: bytes | None = None,
    ima_log: bytes | None = None,
) -> str:
    parts = [
        f"<t:VerifyQuote><t:host>{host}</t:host><t:nonce>{b64(nonce)}</t:nonce>",
        f"<t:quote><t:attest>{b64(attest)}</t:attest><t:signature>{b64(signature)}</t:signature>",
        pcr_xml(pcrs),
        "</t:quote>",
    ]
    if event_log is not None:
        parts.append(f"<t:event_log>{b64(event_log)}</t:event_log>")
    if ima_log is not None:
        parts.append(f"<t:ima_log>{b64(ima_log)}</t:ima_log>")
    parts.append("</t:VerifyQuote>")
    return "".join(parts)


# ---------------------------------------------------------------------- golden data


def event_entries(log: bytes, bank: str, pcrs: Sequence[int]) -> set[WhitelistEntry]:
    parsed = parse_event_log(log)
    return {
        WhitelistEntry(EntryKind.EVENT, bank, e.pcr, e.digests[bank])
        for e in parsed.events
        if e.extends and e.pcr in pcrs
    }


def ima_entries(ima: bytes) -> set[WhitelistEntry]:
    return {
        WhitelistEntry(
            EntryKind.IMA, e.file_hash_alg or "sha1", 10, e.file_hash or b"", path=e.path
        )
        for e in parse_ima(ima).entries[1:]
        if not e.is_violation
    }


FIRMWARE = range(8)


def _policies() -> list[tuple[Whitelist, Policy]]:
    """The lab's whitelists and policies (name -> meaning):

    - ``p-events``: the Secure Boot rhel8 log's events of PCR 0-7 (sha256), Secure Boot
      required;
    - ``p-ima``: the IMA VM's firmware events and IMA integrity (replay, template
      digests, boot_aggregate) in sha256;
    - ``p-ima-allow``: the same plus every file hash of its IMA list (allowlist mode).
    """
    events = Whitelist("wl-events", 1, tuple(sorted(event_entries(GOOD_LOG, "sha256", FIRMWARE))))
    boot = event_entries(IMA_BIOS_LOG, "sha256", FIRMWARE)
    ima_boot = Whitelist("wl-ima", 1, tuple(sorted(boot)))
    ima_allow = Whitelist("wl-ima-allow", 1, tuple(sorted(boot | ima_entries(IMA_LIST))))
    return [
        (
            events,
            Policy(
                "p-events",
                1,
                Combine.ALL_OF,
                (WhitelistRef("wl-events"),),
                secure_boot=SecureBootRequirements(),
            ),
        ),
        (
            ima_boot,
            Policy(
                "p-ima",
                1,
                Combine.ALL_OF,
                (WhitelistRef("wl-ima"),),
                ima=ImaRequirements(ImaMode.INTEGRITY, "sha256"),
            ),
        ),
        (
            ima_allow,
            Policy(
                "p-ima-allow",
                1,
                Combine.ALL_OF,
                (WhitelistRef("wl-ima-allow"),),
                ima=ImaRequirements(ImaMode.ALLOWLIST, "sha256"),
            ),
        ),
    ]


# ---------------------------------------------------------------------- the lab


class LabClock:
    """The lab server's clock: real time plus a settable offset."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Lab:
    """The in-process world (see the module docstring). Use one per test module."""

    def __init__(self, tmp: Path) -> None:
        from soapattest.server.config import ServerConfig

        cap = ServerConfig().event_log_max_bytes * 4 // 3 + 256 * 1024  # as build_context does
        self.agents = SoapAgentClient(timeout=AGENT_TIMEOUT, max_response_bytes=cap)
        self.svc = InProcessService(tmp, agents=self.agents)
        self.ctx = self.svc.ctx
        self.store = self.ctx.store
        self.clock = LabClock()
        self.ctx.clock = self.clock
        self._hostile: list[HostileAgent] = []
        self._lock = threading.Lock()
        now = datetime.now(UTC)
        self.policies: dict[str, tuple[Whitelist, ...]] = {}
        with self.store.transaction() as tx:
            for wl, pol in _policies():
                stored_wl = tx.whitelists.create(
                    wl.name, wl.entries, description="", actor="adversarial", now=now
                )
                tx.policies.create(pol, actor="adversarial", now=now)
                self.policies[pol.name] = (stored_wl,)

    def add_role_users(self) -> None:
        """Create a user for every role of :data:`ROLE_USERS` (the harness has the reader)."""
        now = datetime.now(UTC)
        for role, (user, password) in ROLE_USERS.items():
            if role != "reader":
                ensure_user(self.store, user, password, (role,), actor="adversarial", now=now)

    def close(self) -> None:
        for agent in self._hostile:
            agent.close()
        self.svc.close()

    # ------------------------------------------------------------------ hosts

    def selection(self, policy: str = "p-events") -> PcrSelection:
        """The PCR selection the server asks for under ``policy``."""
        with self.store.transaction(readonly=True) as tx:
            pol = tx.policies.get(policy)
        return required_selection(pol, self.policies[policy])

    def agent(self, soft: SoftHost | None = None, *, upstream: str | None = None) -> HostileAgent:
        """A hostile agent (closed with the lab)."""
        agent = HostileAgent(soft=soft, upstream=upstream)
        with self._lock:
            self._hostile.append(agent)
        return agent

    def soft_host(
        self,
        name: str,
        *,
        policy: str = "p-events",
        log: bytes = GOOD_LOG,
        ima: bytes | None = None,
        banks: tuple[str, ...] = ("sha1", "sha256"),
        sig_hash: str = "sha256",
        pool: str = "",
    ) -> tuple[SoftHost, HostileAgent]:
        """A software host enrolled by the TEST-ONLY path, behind a hostile agent that is
        honest until told otherwise."""
        host = SoftHost(name, log, ima=ima, banks=banks, sig_hash=sig_hash)
        agent = self.agent(host)
        enrol(self.store, host, agent_url=agent.url, policy=policy, pool=pool)
        return host, agent

    # ------------------------------------------------------------------ calls

    def call(self, body: str, *, user: tuple[str, str] | None = ADMIN) -> Response:
        return self.svc.call(body, user=user)

    def outcome(self, body: str, *, user: tuple[str, str] | None = ADMIN) -> Outcome:
        return Outcome.of_response(self.call(body, user=user))

    def issue_nonce(self, host: str) -> bytes:
        resp = self.call(f"<t:IssueNonce><t:host>{host}</t:host></t:IssueNonce>")
        assert resp.status == 200, resp.body[:500]
        text = resp.root.findtext(f".//{{{NS}}}nonce")
        return base64.b64decode(text or "")

    def verify_quote(
        self,
        host: str,
        nonce: bytes,
        quote: QuoteEvidence,
        *,
        event_log: bytes | None = None,
        ima_log: bytes | None = None,
    ) -> Outcome:
        return self.outcome(
            verify_quote_xml(
                host, nonce, quote.attest, quote.signature, quote.raw_pcrs, event_log, ima_log
            )
        )

    def attest(self, host: str) -> Outcome:
        return self.outcome(f"<t:AttestHost><t:host>{host}</t:host></t:AttestHost>")

    def poll(self, hosts: Sequence[str], max_age: int = 0) -> dict[str, Outcome]:
        """PollHosts; host -> its report (or its per-host fault)."""
        body = "".join(f"<t:host>{h}</t:host>" for h in hosts)
        resp = self.call(f"<t:PollHosts>{body}<t:max_age>{max_age}</t:max_age></t:PollHosts>")
        assert resp.status == 200, resp.body[:500]
        out: dict[str, Outcome] = {}
        for result in resp.root.iter(f"{{{NS}}}result"):
            name = result.findtext(f"{{{NS}}}host") or ""
            report = result.find(f"{{{NS}}}report")
            if report is not None:
                out[name] = Outcome.of_report_xml(report)
            else:
                out[name] = Outcome(
                    fault=result.findtext(f"{{{NS}}}fault_code"),
                    message=result.findtext(f"{{{NS}}}fault_string") or "",
                )
        return out

    @contextlib.contextmanager
    def clock_offset(self, seconds: float) -> Iterator[None]:
        """Run the block with the server's clock shifted by ``seconds``."""
        self.clock.offset = timedelta(seconds=seconds)
        try:
            yield
        finally:
            self.clock.offset = timedelta()

    # ------------------------------------------------------------------ World

    def snapshot(self) -> Snapshot:
        return snapshot(self.store)

    def alive(self) -> bool:
        resp = self.call("<t:ListHosts><t:limit>1</t:limit></t:ListHosts>")
        return resp.status == 200 and resp.fault_code is None

    def latest(self, host: str) -> TrustReport | None:
        with self.store.transaction(readonly=True) as tx:
            return tx.reports.latest(host)
