"""Unauthenticated and wrong-role calls of every operation a role may not call (in process).

For each operation of the roles table (``soapattest.security.roles.PERMISSIONS``)
that some role other than admin may not call, a schema-valid request is sent
anonymously, with a wrong password, and by every role that lacks the right
(``reader`` included): each gets ``Client.NotAuthorized`` and changes nothing
(hosts, whitelists, policies, users, reports, no audit record but the denial).
The positive twin is the same request by a role that may call it, which gets
past authorization (and, for most operations, succeeds).

The in-process service tests already show the mechanism on one operation
(``tests/integration/test_service_inprocess.py``); this is the whole matrix.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from soapattest.model import Combine, EntryKind, Policy, WhitelistEntry, WhitelistRef
from soapattest.security.roles import ADMIN, PERMISSIONS, ROLES
from tests.adversarial.hostile_agent import HostileAgent
from tests.adversarial.soft import SoftHost
from tests.adversarial.support import (
    ROLE_USERS,
    Lab,
    assert_defended,
    verify_quote_xml,
)
from tests.integration.service_harness import ADMIN as ADMIN_USER


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Targets:
    """Fresh objects for one operation's test (so an admin's successful call harms no one)."""

    lab: Lab
    host: SoftHost
    agent: HostileAgent
    whitelist: str
    spare_whitelist: str
    policy: str
    new: str  # a name nothing uses yet


def _targets(lab: Lab, op: str) -> Targets:
    tag = op.lower()
    host, agent = lab.soft_host(f"authz-{tag}")
    entries = lab.policies["p-events"][0].entries
    now = lab.clock()
    with lab.store.transaction() as tx:
        tx.whitelists.create(f"wl-{tag}", entries, description="", actor="t", now=now)
        tx.whitelists.create(f"wl-spare-{tag}", entries[:3], description="", actor="t", now=now)
        tx.policies.create(
            Policy(f"p-{tag}", 1, Combine.ALL_OF, (WhitelistRef(f"wl-{tag}"),)),
            actor="t",
            now=now,
        )
    return Targets(lab, host, agent, f"wl-{tag}", f"wl-spare-{tag}", f"p-{tag}", f"new-{tag}")


def _entry(digest: bytes = bytes(32)) -> str:
    return (
        "<t:entry><t:kind>pcr</t:kind><t:bank>sha256</t:bank><t:pcr>0</t:pcr>"
        f"<t:digest>{b64(digest)}</t:digest></t:entry>"
    )


def _existing_entry(t: Targets) -> str:
    e: WhitelistEntry = t.lab.policies["p-events"][0].entries[0]
    assert e.kind is EntryKind.EVENT
    return (
        f"<t:entry><t:kind>event</t:kind><t:bank>{e.bank}</t:bank><t:pcr>{e.pcr}</t:pcr>"
        f"<t:digest>{b64(e.digest)}</t:digest></t:entry>"
    )


def _policy(name: str, whitelist: str) -> str:
    return (
        f"<t:policy><t:name>{name}</t:name><t:combine>ALL_OF</t:combine>"
        f"<t:whitelist><t:name>{whitelist}</t:name></t:whitelist><t:bank>sha256</t:bank>"
        "</t:policy>"
    )


def _verify_quote(t: Targets) -> str:
    nonce = t.lab.issue_nonce(t.host.name)
    q = t.host.tpm.quote(nonce, t.lab.selection())
    return verify_quote_xml(t.host.name, nonce, q.attest, q.signature, q.raw_pcrs,
                            t.host.event_log)


H = "<t:host>{h}</t:host>"
BODIES: dict[str, Callable[[Targets], str]] = {
    "RegisterHost": lambda t: (
        f"<t:RegisterHost><t:name>{t.new}</t:name><t:agent_url>{t.agent.url}</t:agent_url>"
        "</t:RegisterHost>"
    ),
    "UpdateHost": lambda t: (
        f"<t:UpdateHost><t:name>{t.host.name}</t:name><t:description>changed</t:description>"
        "</t:UpdateHost>"
    ),
    "DeleteHost": lambda t: f"<t:DeleteHost><t:name>{t.host.name}</t:name></t:DeleteHost>",
    "ReenrollHost": lambda t: f"<t:ReenrollHost><t:name>{t.host.name}</t:name></t:ReenrollHost>",
    "RetrieveQuote": lambda t: (
        f"<t:RetrieveQuote><t:host>{t.host.name}</t:host><t:selection><t:bank>sha256</t:bank>"
        "<t:pcr>0</t:pcr></t:selection></t:RetrieveQuote>"
    ),
    "AttestHost": lambda t: f"<t:AttestHost><t:host>{t.host.name}</t:host></t:AttestHost>",
    "AttestHosts": lambda t: f"<t:AttestHosts><t:host>{t.host.name}</t:host></t:AttestHosts>",
    "PollHosts": lambda t: (
        f"<t:PollHosts><t:host>{t.host.name}</t:host><t:max_age>0</t:max_age></t:PollHosts>"
    ),
    "IssueNonce": lambda t: f"<t:IssueNonce><t:host>{t.host.name}</t:host></t:IssueNonce>",
    "VerifyQuote": _verify_quote,
    "GetTrustAssertion": lambda t: (
        f"<t:GetTrustAssertion><t:host>{t.host.name}</t:host></t:GetTrustAssertion>"
    ),
    "CreateWhitelist": lambda t: (
        f"<t:CreateWhitelist><t:name>{t.new}</t:name>{_entry()}</t:CreateWhitelist>"
    ),
    "AddWhitelistEntries": lambda t: (
        f"<t:AddWhitelistEntries><t:name>{t.whitelist}</t:name>{_entry(b'e' * 32)}"
        "</t:AddWhitelistEntries>"
    ),
    "RemoveWhitelistEntries": lambda t: (
        f"<t:RemoveWhitelistEntries><t:name>{t.whitelist}</t:name>{_existing_entry(t)}"
        "</t:RemoveWhitelistEntries>"
    ),
    "DeleteWhitelist": lambda t: (
        f"<t:DeleteWhitelist><t:name>{t.spare_whitelist}</t:name></t:DeleteWhitelist>"
    ),
    "ImportWhitelistFromHost": lambda t: (
        f"<t:ImportWhitelistFromHost><t:host>{t.host.name}</t:host><t:name>{t.new}</t:name>"
        "<t:pcr>0</t:pcr><t:pcr>7</t:pcr></t:ImportWhitelistFromHost>"
    ),
    "CreatePolicy": lambda t: f"<t:CreatePolicy>{_policy(t.new, t.whitelist)}</t:CreatePolicy>",
    "UpdatePolicy": lambda t: f"<t:UpdatePolicy>{_policy(t.policy, t.whitelist)}</t:UpdatePolicy>",
    "DeletePolicy": lambda t: f"<t:DeletePolicy><t:name>{t.policy}</t:name></t:DeletePolicy>",
    "AssignPolicy": lambda t: (
        f"<t:AssignPolicy><t:policy>{t.policy}</t:policy><t:host>{t.host.name}</t:host>"
        "</t:AssignPolicy>"
    ),
    "ListAuditRecords": lambda t: "<t:ListAuditRecords/>",
    # reads (refused to assertion-consumer)
    "GetHost": lambda t: f"<t:GetHost><t:name>{t.host.name}</t:name></t:GetHost>",
    "ListHosts": lambda t: "<t:ListHosts/>",
    "GetMeasurements": lambda t: (
        f"<t:GetMeasurements><t:host>{t.host.name}</t:host></t:GetMeasurements>"
    ),
    "GetTrustReport": lambda t: (
        "<t:GetTrustReport><t:report_id>987654321</t:report_id></t:GetTrustReport>"
    ),
    "ListTrustReports": lambda t: "<t:ListTrustReports/>",
    "GetWhitelist": lambda t: f"<t:GetWhitelist><t:name>{t.whitelist}</t:name></t:GetWhitelist>",
    "ListWhitelists": lambda t: "<t:ListWhitelists/>",
    "GetPolicy": lambda t: f"<t:GetPolicy><t:name>{t.policy}</t:name></t:GetPolicy>",
    "ListPolicies": lambda t: "<t:ListPolicies/>",
    "ListPools": lambda t: "<t:ListPools/>",
}

# Operations some non-admin role may not call: every one must have a body above.
RESTRICTED = sorted(op for op, roles in PERMISSIONS.items() if set(ROLES) - {ADMIN} - roles)
# What an authorized caller gets when the request cannot succeed for a reason of its own
# (the soft host's EK certificate chains to no configured root; never attested yet).
EXPECTED_REFUSALS = {
    "RegisterHost": "Client.InvalidIdentity",
    "ReenrollHost": "Client.InvalidIdentity",
    "GetTrustAssertion": "Client.InvalidArgument",
    "GetMeasurements": "Client.ReportNotFound",
    "GetTrustReport": "Client.ReportNotFound",
}
# The operations a reader may not call: every write, and the reads with side effects.
READER_REFUSED = sorted(op for op, roles in PERMISSIONS.items() if "reader" not in roles)


def test_every_restricted_operation_has_a_request() -> None:
    assert set(RESTRICTED) <= set(BODIES), sorted(set(RESTRICTED) - set(BODIES))
    assert set(READER_REFUSED) <= set(RESTRICTED)
    assert {"RegisterHost", "DeleteHost", "CreateWhitelist", "CreatePolicy"} <= set(
        READER_REFUSED
    )


def _audit_totals(lab: Lab) -> tuple[int, int]:
    with lab.store.transaction(readonly=True) as tx:
        _, everything = tx.audit.list(limit=1)
        _, denials = tx.audit.list(action="authorization.denied", limit=1)
    return everything, denials


# Every operation is called anonymously and by each role that may not call it; callers
# with bad credentials cost a full scrypt each (by design), so they try a few writes.
BAD_CREDENTIALS = {
    "wrong-password": (ADMIN_USER[0], "not the admin password at all"),
    "unknown-user": ("mallory", "a long enough passphrase"),
}
BAD_CREDENTIAL_OPS = ("DeleteHost", "CreateWhitelist", "RegisterHost", "AssignPolicy")


@pytest.fixture(scope="module", autouse=True)
def _role_users(lab: Lab) -> None:
    lab.add_role_users()


@pytest.mark.parametrize("op", RESTRICTED)
def test_unauthenticated_and_wrong_role_calls_change_nothing(lab: Lab, op: str) -> None:
    t = _targets(lab, op)
    body = BODIES[op](t)
    refused_roles = [r for r in ROLES if r != ADMIN and r not in PERMISSIONS[op]]
    callers: dict[str, tuple[str, str] | None] = {"anonymous": None}
    if op in BAD_CREDENTIAL_OPS:
        callers.update(BAD_CREDENTIALS)
    callers.update({role: ROLE_USERS[role] for role in refused_roles})
    assert ("reader" in callers) == (op in READER_REFUSED)
    for who, user in callers.items():
        before = lab.snapshot()
        audit_before = _audit_totals(lab)
        out = lab.outcome(body, user=user)
        assert_defended(lab, before, out, host=t.host.name, fault="Client.NotAuthorized")
        everything, denials = _audit_totals(lab)
        # nothing was done: the only new audit records are denials of authenticated roles
        assert everything - audit_before[0] == denials - audit_before[1], who
        assert denials - audit_before[1] == (1 if who in refused_roles else 0), who
    # positive twin: a role that may call it gets past authorization
    allowed = next((r for r in ROLES if r != ADMIN and r in PERMISSIONS[op]), ADMIN)
    user = ROLE_USERS[allowed] if allowed != ADMIN else ADMIN_USER
    resp = lab.call(body, user=user)
    expected = EXPECTED_REFUSALS.get(op)
    assert resp.fault_code == expected, (allowed, resp.fault_code, resp.fault_string)
    if expected is None:
        assert resp.status == 200
