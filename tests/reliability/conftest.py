"""Fixtures of the reliability tests: one simulated cluster and one registered template
database per pytest process (see :mod:`tests.reliability.harness`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soapattest.sim.host import HostSpec
from tests.e2e.server_fixture import GOOD_LOG, run_cluster
from tests.reliability.harness import HOSTS, Template, build_template


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """Simulated hosts :data:`HOSTS` (good event log) registered in a template database."""
    from tests.swtpm_fixture import have_swtpm

    if not have_swtpm():
        pytest.skip("swtpm is not installed")
    base = tmp_path_factory.mktemp("reliability")
    with run_cluster(base / "sim", tuple(HostSpec(n, GOOD_LOG) for n in HOSTS)) as cluster:
        yield build_template(base / "template", cluster)
