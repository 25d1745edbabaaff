"""The operation -> roles table and authorize()."""

from __future__ import annotations

import pytest
from lxml import etree

from soapattest.errors import NotAuthorizedError, OperationDeniedError
from soapattest.security.roles import (
    ADMIN,
    ASSERTION_CONSUMER,
    ATTESTER,
    HOST_ADMIN,
    OPERATIONS,
    PERMISSIONS,
    READER,
    ROLES,
    WHITELIST_ADMIN,
    allowed,
    authorize,
    check_table_covers,
    unknown_roles,
)
from tests.conftest import ROOT

# The WSDL operations of the attestation server (issue 6 baseline).
WSDL_OPERATIONS = [
    "RegisterHost", "GetHost", "ListHosts", "UpdateHost", "DeleteHost", "ReenrollHost",
    "RetrieveQuote", "GetMeasurements", "AttestHost", "AttestHosts", "PollHosts", "IssueNonce",
    "VerifyQuote", "GetTrustReport", "ListTrustReports", "CreateWhitelist", "GetWhitelist",
    "ListWhitelists", "AddWhitelistEntries", "RemoveWhitelistEntries", "DeleteWhitelist",
    "ImportWhitelistFromHost", "CreatePolicy", "UpdatePolicy", "GetPolicy", "ListPolicies",
    "DeletePolicy", "AssignPolicy", "ListPools", "ListTrustedHosts", "CheckPlacement",
    "GetTrustAssertion", "GetSigningCertificate", "ListAuditRecords",
]

READS = {op for op in WSDL_OPERATIONS if op.startswith(("Get", "List"))} - {
    "ListAuditRecords",
    "GetTrustAssertion",
} | {"CheckPlacement"}
WRITES = {
    "RegisterHost", "UpdateHost", "DeleteHost", "ReenrollHost", "CreateWhitelist",
    "AddWhitelistEntries", "RemoveWhitelistEntries", "DeleteWhitelist",
    "ImportWhitelistFromHost", "CreatePolicy", "UpdatePolicy", "DeletePolicy", "AssignPolicy",
}


def test_every_operation_has_an_entry() -> None:
    assert sorted(OPERATIONS) == sorted(WSDL_OPERATIONS)
    check_table_covers(WSDL_OPERATIONS)


def test_committed_wsdl_is_covered() -> None:
    wsdl = ROOT / "wsdl" / "soapattest.wsdl"
    root = etree.parse(str(wsdl), etree.XMLParser(resolve_entities=False, no_network=True))
    names = {
        op.get("name")
        for op in root.iterfind(".//{http://schemas.xmlsoap.org/wsdl/}portType/"
                                "{http://schemas.xmlsoap.org/wsdl/}operation")
    }
    assert names, "no operations found in the WSDL"
    check_table_covers(n for n in names if n)


def test_missing_operation_reported() -> None:
    with pytest.raises(RuntimeError, match="NewOperation"):
        check_table_covers([*WSDL_OPERATIONS, "NewOperation"])


def test_admin_may_do_everything() -> None:
    for op in OPERATIONS:
        authorize(op, [ADMIN])


def test_unknown_operation_denied_even_for_admin() -> None:
    with pytest.raises(OperationDeniedError) as info:
        authorize("DropDatabase", ROLES)
    assert info.value.code == "Client.NotAuthorized"
    assert info.value.operation == "DropDatabase"
    assert isinstance(info.value, NotAuthorizedError)


def test_clark_name_of_foreign_namespace_denied() -> None:
    with pytest.raises(OperationDeniedError):
        authorize("{urn:evil}GetHost", [ADMIN])
    authorize("GetHost", [READER])


def test_no_roles_no_access() -> None:
    for op in OPERATIONS:
        with pytest.raises(OperationDeniedError):
            authorize(op, [])


def test_unknown_roles_grant_nothing() -> None:
    assert unknown_roles(["root", ADMIN, "superuser"]) == ["root", "superuser"]
    for op in OPERATIONS:
        assert not allowed(op, ["root", "Admin", "ADMIN", " admin"])


def test_reader_reads_only() -> None:
    for op in OPERATIONS:
        assert allowed(op, [READER]) == (op in READS), op


@pytest.mark.parametrize("role", [HOST_ADMIN, WHITELIST_ADMIN, ATTESTER])
def test_every_operator_role_reads(role: str) -> None:
    for op in READS:
        authorize(op, [role])


def test_host_admin() -> None:
    host_ops = {"RegisterHost", "UpdateHost", "DeleteHost", "ReenrollHost", "AssignPolicy"}
    for op in OPERATIONS:
        assert allowed(op, [HOST_ADMIN]) == (op in READS | host_ops), op


def test_whitelist_admin() -> None:
    golden = {"CreateWhitelist", "AddWhitelistEntries", "RemoveWhitelistEntries",
              "DeleteWhitelist", "ImportWhitelistFromHost", "CreatePolicy", "UpdatePolicy",
              "DeletePolicy", "AssignPolicy"}
    for op in OPERATIONS:
        assert allowed(op, [WHITELIST_ADMIN]) == (op in READS | golden), op


def test_attester() -> None:
    attest = {"AttestHost", "AttestHosts", "PollHosts", "IssueNonce", "VerifyQuote",
              "RetrieveQuote", "GetTrustAssertion"}
    for op in OPERATIONS:
        assert allowed(op, [ATTESTER]) == (op in READS | attest), op
    for op in WRITES:
        with pytest.raises(OperationDeniedError):
            authorize(op, [ATTESTER])


def test_assertion_consumer() -> None:
    consumer = {"GetTrustAssertion", "GetSigningCertificate", "CheckPlacement",
                "ListTrustedHosts", "PollHosts"}
    for op in OPERATIONS:
        assert allowed(op, [ASSERTION_CONSUMER]) == (op in consumer), op


def test_audit_log_is_admin_only() -> None:
    assert PERMISSIONS["ListAuditRecords"] == frozenset({ADMIN})


def test_roles_combine() -> None:
    with pytest.raises(OperationDeniedError):
        authorize("RegisterHost", [READER, ASSERTION_CONSUMER])
    authorize("RegisterHost", [READER, HOST_ADMIN])


def test_denial_message_names_roles() -> None:
    with pytest.raises(OperationDeniedError) as info:
        authorize("DeleteHost", [READER])
    assert "reader" in info.value.message and "DeleteHost" in info.value.message
    assert info.value.roles == (READER,)
