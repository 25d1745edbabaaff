"""The SOAP service in process: faults, validation and error mapping over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soapattest.model import Host, HostIdentity, QuoteState
from tests.integration.service_harness import READER, InProcessService


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[InProcessService]:
    s = InProcessService(tmp_path)
    yield s
    s.close()


def _add_host(svc: InProcessService, name: str = "h1", pool: str = "p") -> None:
    now = svc.ctx.clock()
    with svc.ctx.store.transaction() as tx:
        tx.hosts.add(Host(name=name, agent_url="http://127.0.0.1:1/", pool=pool), now)
        tx.hosts.set_identity(
            name,
            HostIdentity(b"ek", b"", b"ak", b"\x00\x0b" + bytes(32), now),
            now,
        )
        tx.hosts.record_quote_state(name, QuoteState(1, 1, 0, 0))


def test_unknown_host_is_a_client_fault_with_a_sentence(svc: InProcessService) -> None:
    r = svc.call("<t:GetHost><t:name>ghost</t:name></t:GetHost>")
    assert (r.status, r.fault_code) == (500, "Client.UnknownHost")
    assert "ghost" in r.fault_string
    _add_host(svc, "ghost")
    ok = svc.call("<t:GetHost><t:name>ghost</t:name></t:GetHost>")
    assert ok.status == 200 and ok.find(".//t:host/t:name").text == "ghost"


def test_schema_violations_are_refused_before_any_operation(svc: InProcessService) -> None:
    r = svc.call("<t:GetHost><t:name>bad name!</t:name></t:GetHost>")
    assert r.fault_code == "Client.SchemaValidationError"
    r = svc.call("<t:GetHost/>")
    assert r.fault_code == "Client.SchemaValidationError"


def test_paging_limit_is_bounded(svc: InProcessService) -> None:
    r = svc.call("<t:ListHosts><t:limit>5000</t:limit></t:ListHosts>")
    assert r.fault_code == "Client.InvalidArgument"
    ok = svc.call("<t:ListHosts><t:limit>10</t:limit></t:ListHosts>")
    assert ok.status == 200 and ok.find(".//t:total").text == "0"


def test_attesting_a_host_without_policy_is_refused_and_stores_nothing(
    svc: InProcessService,
) -> None:
    _add_host(svc)
    r = svc.call("<t:AttestHost><t:host>h1</t:host></t:AttestHost>")
    assert r.fault_code == "Client.NoPolicy"
    with svc.ctx.store.transaction(readonly=True) as tx:
        assert tx.reports.latest("h1") is None


def test_bulk_results_carry_per_host_faults(svc: InProcessService) -> None:
    _add_host(svc)
    r = svc.call("<t:AttestHosts><t:host>h1</t:host><t:host>nobody</t:host></t:AttestHosts>")
    assert r.status == 200
    codes = [e.text for e in r.root.iter("{urn:soapattest:v1}fault_code")]
    assert codes == ["Client.NoPolicy", "Client.UnknownHost"]


def test_unexpected_errors_become_server_internal_without_traceback(
    svc: InProcessService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import soapattest.server.trust as trust

    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(trust, "list_trusted_hosts", broken)
    r = svc.call("<t:ListTrustedHosts><t:pool>p</t:pool></t:ListTrustedHosts>")
    assert r.fault_code == "Server.Internal"
    assert "incident" in r.fault_string
    assert "Traceback" not in r.body.decode() and "boom" not in r.body.decode()
    assert any("ZeroDivisionError" in (rec.exc_text or "") for rec in caplog.records)


def test_signing_certificate_is_published(svc: InProcessService) -> None:
    r = svc.call("<t:GetSigningCertificate/>")
    assert r.status == 200
    assert "BEGIN CERTIFICATE" in r.find(".//t:certificate").text


def test_assertion_for_a_host_never_attested_is_refused(svc: InProcessService) -> None:
    _add_host(svc)
    r = svc.call("<t:GetTrustAssertion><t:host>h1</t:host></t:GetTrustAssertion>")
    assert r.fault_code == "Client.InvalidArgument"
    assert "never been attested" in r.fault_string


def test_every_operation_needs_an_authenticated_caller(svc: InProcessService) -> None:
    r = svc.call("<t:ListHosts/>", user=None)
    assert r.fault_code == "Client.NotAuthorized"
    r = svc.call("<t:ListHosts/>", user=("admin-user", "wrong password!!"))
    assert r.fault_code == "Client.NotAuthorized"
    assert svc.call("<t:ListHosts/>").status == 200


def test_roles_are_enforced_on_the_dispatched_operation(svc: InProcessService) -> None:
    _add_host(svc)
    assert svc.call("<t:GetHost><t:name>h1</t:name></t:GetHost>", user=READER).status == 200
    r = svc.call("<t:DeleteHost><t:name>h1</t:name></t:DeleteHost>", user=READER)
    assert r.fault_code == "Client.NotAuthorized"
    # a SOAPAction naming a read operation does not change what is authorized
    r = svc.call("<t:DeleteHost><t:name>h1</t:name></t:DeleteHost>", user=READER,
                 headers={"SOAPAction": '"GetHost"'})
    assert r.fault_code == "Client.NotAuthorized"
    with svc.ctx.store.transaction(readonly=True) as tx:
        assert tx.hosts.find("h1") is not None
        denied, _ = tx.audit.list(action="authorization.denied")
    assert denied and denied[0].actor == READER[0]
    assert svc.call("<t:DeleteHost><t:name>h1</t:name></t:DeleteHost>").status == 200
