"""Simulated hosts: swtpm instances that replay real event logs, each with a trust agent.

Public API (see :mod:`soapattest.sim.cluster`)::

    from soapattest.sim import HostSpec, SimCluster

    with SimCluster(directory) as cluster:
        cluster.ca_root_cert                      # EK certificate trust anchor (PEM)
        host = cluster.start_host("h1", log="gotpmtools_rhel8-uefi", tamper=None,
                                  ak_type="ecc", ima=None)
        host.agent_url                            # http://127.0.0.1:PORT/
        cluster.start_hosts([HostSpec("h2"), HostSpec("h3", tamper="pcr")])
        cluster.restart_host("h1"); cluster.stop_host("h2")
        host.kill_agent(); host.start_agent()

Bundled logs: :func:`soapattest.sim.catalog.bundled_logs` (``soapattest sim list-logs``).

The names are imported on first use, so that importing the package (e.g. by
the ``soapattest`` command line) does not load tpm2-pytss.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soapattest.sim.boot import TAMPER_MODES
    from soapattest.sim.catalog import DEFAULT_LOG, bundled_logs
    from soapattest.sim.cluster import DEFAULT_PARALLEL, SimCluster
    from soapattest.sim.host import HostSpec, SimHost

_WHERE = {
    "TAMPER_MODES": "soapattest.sim.boot",
    "DEFAULT_LOG": "soapattest.sim.catalog",
    "bundled_logs": "soapattest.sim.catalog",
    "DEFAULT_PARALLEL": "soapattest.sim.cluster",
    "SimCluster": "soapattest.sim.cluster",
    "HostSpec": "soapattest.sim.host",
    "SimHost": "soapattest.sim.host",
}

__all__ = [
    "DEFAULT_LOG",
    "DEFAULT_PARALLEL",
    "TAMPER_MODES",
    "HostSpec",
    "SimCluster",
    "SimHost",
    "bundled_logs",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'soapattest.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
