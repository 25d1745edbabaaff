"""Roles and the operation -> roles table; :func:`authorize` fails closed.

Roles (a user may hold several):

``admin``
    Everything, including the audit log. The only role that may read
    ``ListAuditRecords`` (it names every user and every change).
``host-admin``
    The host inventory: register, update, re-enroll, delete hosts and assign
    policies to hosts/pools (RegisterHost already takes a policy, so AssignPolicy
    grants nothing new). Plus every read.
``whitelist-admin``
    What "good" means: whitelists (incl. capturing them from a golden host) and
    policies, and assigning policies. Plus every read.
``attester``
    Causes attestations and handles evidence: AttestHost(s), PollHosts,
    IssueNonce, VerifyQuote, RetrieveQuote (fresh evidence from an agent), and
    GetTrustAssertion. Plus every read.
``reader``
    Read-only, no side effects: Get*/List* (except the audit log and signed
    assertions), CheckPlacement, ListTrustedHosts.
``assertion-consumer``
    A scheduler or relying party: GetTrustAssertion, GetSigningCertificate,
    CheckPlacement, ListTrustedHosts and PollHosts (current trust of many hosts;
    it may attest hosts whose report is older than the max age, which only
    refreshes trust, it cannot change what is trusted).

Decisions: a reader gets no signed assertions (a signed statement is a
capability handed to third parties, not a view) and cannot trigger agent calls
(PollHosts, RetrieveQuote); nobody but admin reads the audit log; the signing
certificate is public to every role. An operation missing from the table is
refused for everybody, admin included (:func:`authorize` fails closed), and
:func:`check_table_covers` lets the service refuse to start when its WSDL has an
operation without an entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from soapattest.errors import OperationDeniedError

ADMIN = "admin"
HOST_ADMIN = "host-admin"
WHITELIST_ADMIN = "whitelist-admin"
ATTESTER = "attester"
READER = "reader"
ASSERTION_CONSUMER = "assertion-consumer"

ROLES: tuple[str, ...] = (ADMIN, HOST_ADMIN, WHITELIST_ADMIN, ATTESTER, READER,
                          ASSERTION_CONSUMER)

_ALL = frozenset(ROLES)
# Roles that see every read (Get*/List* except audit and assertions).
_READ = frozenset({ADMIN, HOST_ADMIN, WHITELIST_ADMIN, ATTESTER, READER})
_HOSTS = frozenset({ADMIN, HOST_ADMIN})
_GOLDEN = frozenset({ADMIN, WHITELIST_ADMIN})
_ATTEST = frozenset({ADMIN, ATTESTER})

# WSDL operation name -> roles allowed. Keep one line per operation.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    # hosts
    "RegisterHost": _HOSTS,
    "GetHost": _READ,
    "ListHosts": _READ,
    "UpdateHost": _HOSTS,
    "DeleteHost": _HOSTS,
    "ReenrollHost": _HOSTS,
    # measurements and attestation
    "RetrieveQuote": _ATTEST,
    "GetMeasurements": _READ,
    "AttestHost": _ATTEST,
    "AttestHosts": _ATTEST,
    "PollHosts": _ATTEST | {ASSERTION_CONSUMER},
    "IssueNonce": _ATTEST,
    "VerifyQuote": _ATTEST,
    "GetTrustReport": _READ,
    "ListTrustReports": _READ,
    # whitelists
    "CreateWhitelist": _GOLDEN,
    "GetWhitelist": _READ,
    "ListWhitelists": _READ,
    "AddWhitelistEntries": _GOLDEN,
    "RemoveWhitelistEntries": _GOLDEN,
    "DeleteWhitelist": _GOLDEN,
    "ImportWhitelistFromHost": _GOLDEN,
    # policies and pools
    "CreatePolicy": _GOLDEN,
    "UpdatePolicy": _GOLDEN,
    "GetPolicy": _READ,
    "ListPolicies": _READ,
    "DeletePolicy": _GOLDEN,
    "AssignPolicy": _HOSTS | _GOLDEN,
    "ListPools": _READ,
    # consumers
    "ListTrustedHosts": _READ | {ASSERTION_CONSUMER},
    "CheckPlacement": _READ | {ASSERTION_CONSUMER},
    "GetTrustAssertion": _ATTEST | {ASSERTION_CONSUMER},
    "GetSigningCertificate": _ALL,
    # audit
    "ListAuditRecords": frozenset({ADMIN}),
}

OPERATIONS: tuple[str, ...] = tuple(PERMISSIONS)


def unknown_roles(roles: Iterable[str]) -> list[str]:
    """The names in ``roles`` that are not roles (in order, for error messages)."""
    return [r for r in roles if r not in _ALL]


def allowed(operation: str, roles: Iterable[str]) -> bool:
    """True when one of ``roles`` may call ``operation``; False for an unknown operation."""
    permitted = PERMISSIONS.get(operation)
    return permitted is not None and not permitted.isdisjoint(roles)


def authorize(operation: str, roles: Iterable[str]) -> None:
    """Allow ``operation`` for a caller holding ``roles`` or raise OperationDeniedError
    (code Client.NotAuthorized). Unknown operations and unknown roles grant nothing.

    ``operation`` must be the local name of the dispatched SOAP Body element
    (see :mod:`soapattest.security.xmlguard`), never the SOAPAction header.
    """
    held = tuple(roles)
    if operation not in PERMISSIONS:
        raise OperationDeniedError(
            f"operation {operation[:80]!r} is not known to the authorization table",
            operation=operation,
            roles=held,
        )
    if not allowed(operation, held):
        raise OperationDeniedError(
            f"the caller's roles ({', '.join(held) or 'none'}) do not allow {operation}",
            operation=operation,
            roles=held,
        )


def check_table_covers(operations: Iterable[str]) -> None:
    """Raise RuntimeError naming every operation of the service without a table entry
    (call at start-up with the Spyne application's method names)."""
    missing = sorted(set(operations) - set(PERMISSIONS))
    if missing:
        raise RuntimeError(f"operations without an authorization entry: {', '.join(missing)}")
