"""A cluster of simulated hosts sharing one local CA, in one directory.

Typical use (tests, the demo, the server's end-to-end tests)::

    with SimCluster(tmp_path) as cluster:
        trust_anchor = cluster.ca_root_cert          # configure the server with it
        host = cluster.start_host("web-1", log="gotpmtools_rhel8-uefi")
        bad = cluster.start_host("web-2", tamper="event")
        many = cluster.start_hosts([HostSpec(f"h{i}") for i in range(20)])
        ... talk SOAP to host.agent_url ...
        cluster.restart_host("web-1")                 # reboot: resetCount + 1
    # every swtpm and agent is stopped here

Directory layout: ``ca/`` (the swtpm local CA), ``hosts/<name>/`` (TPM state,
agent configuration, served logs, process logs) and ``inventory.json`` (hosts,
agent URLs, pids; rewritten on every change). Opening a directory whose
inventory names still-running processes (a previous run killed with SIGKILL)
kills them first.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from soapattest.errors import SimulationError
from soapattest.sim.ca import LocalCa
from soapattest.sim.catalog import DEFAULT_LOG
from soapattest.sim.host import HostSpec, SimHost
from soapattest.sim.process import reap_stale

log = logging.getLogger("soapattest.sim")

DEFAULT_PARALLEL = 2  # this project's machines have 2 cores: swtpm_setup and agents are CPU-bound


class SimCluster:
    """Simulated hosts under ``base_dir`` (created if needed). Use as a context manager.

    ``agent_log_level`` is passed to every agent. :meth:`close` (also run at
    interpreter exit) stops every host.
    """

    def __init__(self, base_dir: Path | str, *, agent_log_level: str = "INFO") -> None:
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.inventory_path = self.base_dir / "inventory.json"
        self.agent_log_level = agent_log_level
        self._hosts: dict[str, SimHost] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._reap_previous_run()
        self.ca = LocalCa(self.base_dir / "ca")
        self.ca.ensure()
        atexit.register(self.close)
        self._write_inventory()

    # ------------------------------------------------------------------ CA

    @property
    def ca_root_cert(self) -> Path:
        """PEM root certificate of the cluster CA (the EK certificates' trust anchor)."""
        return self.ca.root_cert

    @property
    def ca_intermediate_cert(self) -> Path:
        """PEM intermediate certificate that issued the EK certificates."""
        return self.ca.intermediate_cert

    # ------------------------------------------------------------------ hosts

    @property
    def hosts(self) -> dict[str, SimHost]:
        """Running (or stopped but known) hosts by name (a copy)."""
        with self._lock:
            return dict(self._hosts)

    def host(self, name: str) -> SimHost:
        """The host called ``name``; raises ``KeyError``."""
        with self._lock:
            return self._hosts[name]

    def start_host(self, name: str, log: str | Path = DEFAULT_LOG, tamper: str | None = None,
                   ak_type: str = "ecc", ima: str | Path | bool | None = None) -> SimHost:
        """Create (or reuse the state of) host ``name``, boot it and start its agent.

        See :class:`HostSpec` for the arguments. Raises :class:`SimulationError`
        (or :class:`~soapattest.errors.UnsupportedSimLogError`).
        """
        return self._start(HostSpec(name, log, tamper, ak_type, ima))

    def start_hosts(self, specs: Iterable[HostSpec],
                    parallel: int = DEFAULT_PARALLEL) -> list[SimHost]:
        """Start several hosts, ``parallel`` at a time; returns them in ``specs`` order.

        If any fails, the ones that started keep running and the first error
        is raised after all attempts finished.
        """
        specs = list(specs)
        with ThreadPoolExecutor(max_workers=max(1, parallel),
                                thread_name_prefix="sim-start") as pool:
            futures = [pool.submit(self._start, s) for s in specs]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]
        return [f.result() for f in futures]

    def _start(self, spec: HostSpec) -> SimHost:
        if self._closed:
            raise SimulationError("the cluster is closed")
        with self._lock:
            if spec.name in self._hosts and self._hosts[spec.name].agent_pid is not None:
                raise SimulationError(f"host {spec.name} is already running")
            host = SimHost(spec, self.base_dir / "hosts" / spec.name, self.ca,
                           self.agent_log_level)
            self._hosts[spec.name] = host
        started = time.monotonic()
        try:
            host.start()
        except BaseException:
            self._power_off_quietly(host)
            with self._lock:
                self._hosts.pop(spec.name, None)
            raise
        finally:
            self._write_inventory()
        log.info("host %s up in %.2fs at %s (%s%s)", host.name, time.monotonic() - started,
                 host.agent_url, host.log_name, f", tamper={host.tamper}" if host.tamper else "")
        return host

    def stop_host(self, name: str) -> None:
        """Power the host off (agent and swtpm stopped) and forget it; its state stays on disk."""
        with self._lock:
            host = self._hosts.pop(name)
        host.power_off()
        self._write_inventory()

    def restart_host(self, name: str) -> SimHost:
        """Reboot host ``name`` (TPM Reset, boot replayed again, new agent port)."""
        host = self.host(name)
        host.restart()
        self._write_inventory()
        return host

    # ------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Stop every host (idempotent; also registered with ``atexit``)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            hosts = list(self._hosts.values())
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="sim-stop") as pool:
            for host in hosts:
                pool.submit(self._power_off_quietly, host)
        self._write_inventory()
        atexit.unregister(self.close)

    @staticmethod
    def _power_off_quietly(host: SimHost) -> None:
        try:
            host.power_off()
        except Exception:
            log.exception("stopping %s failed", host.name)

    def __enter__(self) -> SimCluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ inventory

    def inventory(self) -> dict[str, Any]:
        """The JSON inventory: CA certificates and every host with its agent URL and pids."""
        with self._lock:
            hosts = [h.to_json() for h in self._hosts.values()]
        return {
            "base_dir": str(self.base_dir),
            "ca_root_cert": str(self.ca.root_cert) if hasattr(self, "ca") else None,
            "ca_intermediate_cert": str(self.ca.intermediate_cert) if hasattr(self, "ca")
            else None,
            "supervisor_pid": os.getpid(),
            "hosts": sorted(hosts, key=lambda h: h["name"]),
        }

    def _write_inventory(self) -> None:
        data = json.dumps(self.inventory(), indent=2, sort_keys=True)
        with self._lock:
            tmp = self.inventory_path.with_name(f".inventory.{threading.get_ident()}.tmp")
            tmp.write_text(data + "\n", encoding="utf-8")
            os.replace(tmp, self.inventory_path)

    def _reap_previous_run(self) -> None:
        try:
            old = json.loads(self.inventory_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        pids = [p for h in old.get("hosts", []) for p in (h.get("swtpm_pid"), h.get("agent_pid"))
                if isinstance(p, int)]
        killed = reap_stale(pids, str(self.base_dir))
        if killed:
            log.warning("killed %d process(es) left running by a previous run in %s",
                        killed, self.base_dir)
