"""The server fixture on PostgreSQL (``ServerOptions(database="postgres")``): the bundled
client's core workflow against a server whose store is a throwaway PostgreSQL database."""

from __future__ import annotations

import pytest

from soapattest.model import Combine, Policy, TrustStatus, WhitelistRef
from soapattest.sim.host import HostSpec
from tests.e2e.server_fixture import GOOD_LOG, RunningServer, ServerOptions, attest_server  # noqa: F401

pytestmark = [pytest.mark.swtpm, pytest.mark.postgres]

PG = ServerOptions(database="postgres", hosts=(HostSpec("pg-1", GOOD_LOG),))


@pytest.mark.parametrize("attest_server", [PG], indirect=True)
def test_workflow_on_postgresql(attest_server: RunningServer) -> None:  # noqa: F811
    assert attest_server.database_url.startswith("postgresql://")
    with attest_server.client() as client:
        client.register_host("pg-1", attest_server.cluster.host("pg-1").agent_url, pool="pg")
        client.import_whitelist_from_host("pg-1", "pg-golden", range(8))
        client.create_policy(Policy("pg-policy", 0, Combine.ALL_OF, (WhitelistRef("pg-golden"),)))
        client.assign_policy("pg-policy", pool="pg")
        report = client.attest_host("pg-1")
        assert report.status is TrustStatus.TRUSTED
        page = client.list_trust_reports(host="pg-1")
        assert [r.report_id for r in page] == [report.report_id]
