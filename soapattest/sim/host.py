"""One simulated host: a swtpm that "booted" a real event log, plus its trust agent.

Life cycle (each step raises :class:`~soapattest.errors.SimulationError`):

1. manufacture (first start only): ``swtpm_setup`` with the log's banks, EK
   certificates from the cluster CA;
2. power on: start the swtpm, TPM2_Startup at the log's locality, provision the
   ECC P-256 EK certificate if missing, extend the log (and the IMA list);
3. start the agent (``python -m soapattest.agent.main``) on a free port;
4. power off: stop the agent, TPM2_Shutdown(CLEAR) (orderly, so the TPM's
   dictionary-attack counter is not bumped), stop the swtpm.

A restart is power off + power on + agent: the TPM state is kept, so the next
quote shows ``resetCount`` one higher.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soapattest
from soapattest.agent.templates import EK_CERT_NV_INDEX
from soapattest.agent.tpm import TpmAccess
from soapattest.errors import SimulationError, SoapAttestError
from soapattest.sim.boot import BootPlan, plan_boot, plan_ima, play
from soapattest.sim.ca import LocalCa
from soapattest.sim.catalog import DEFAULT_LOG, IMA_FOR_LOG, load_log, resolve
from soapattest.sim.process import rss_kib, spawn, stop_group, wait_for
from soapattest.sim.swtpm import Swtpm
from soapattest.tpm.public import parse_public

log = logging.getLogger("soapattest.sim")

HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
AGENT_START_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class HostSpec:
    """What to simulate.

    ``log``: a bundled log name or a path; ``tamper``: ``None``, ``"event"`` or
    ``"pcr"`` (see :mod:`soapattest.sim.boot`); ``ak_type``: ``"ecc"`` or
    ``"rsa"``; ``ima``: ``None`` (no IMA), ``True`` (the bundled list that
    belongs to the log) or a bundled IMA name / path.
    """

    name: str
    log: str | Path = DEFAULT_LOG
    tamper: str | None = None
    ak_type: str = "ecc"
    ima: str | Path | bool | None = None


class SimHost:
    """A simulated host in ``directory`` (use :class:`~soapattest.sim.cluster.SimCluster`)."""

    def __init__(self, spec: HostSpec, directory: Path, ca: LocalCa,
                 agent_log_level: str = "INFO") -> None:
        if not HOST_NAME.match(spec.name):
            raise SimulationError(f"invalid host name {spec.name!r}")
        if spec.ak_type not in ("ecc", "rsa"):
            raise SimulationError(f"invalid AK type {spec.ak_type!r}")
        self.spec = spec
        self.name = spec.name
        self.dir = directory
        self.ca = ca
        self.agent_log_level = agent_log_level
        self.log_name, raw, parsed = load_log(spec.log)
        self.plan: BootPlan = plan_boot(self.log_name, raw, parsed, spec.tamper)
        self.ima_name: str | None = None
        self._ima_raw = b""
        self._ima_alg = "sha1"
        self._ima_extends: tuple[tuple[int, Any], ...] = ()
        if spec.ima:
            ima_ref = IMA_FOR_LOG.get(self.log_name) if spec.ima is True else spec.ima
            if ima_ref is None:
                raise SimulationError(f"no bundled IMA list belongs to {self.log_name}")
            self.ima_name, ima_path = resolve(ima_ref, kind="ima")
            self._ima_raw = ima_path.read_bytes()
            self._ima_alg, self._ima_extends = plan_ima(self._ima_raw, self.plan.banks)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.swtpm = Swtpm(self.dir / "tpm", self.dir / "swtpm.log")
        self.agent_proc: subprocess.Popen[bytes] | None = None
        self.agent_port = 0
        self.boot_count = 0

    # ------------------------------------------------------------------ paths

    @property
    def eventlog_path(self) -> Path:
        """The event log file the agent serves."""
        return self.dir / "binary_bios_measurements"

    @property
    def ima_path(self) -> Path:
        """The IMA list file the agent serves (absent when the host has no IMA).

        Named like the kernel's files: ``binary_runtime_measurements`` for SHA-1
        template digests, ``binary_runtime_measurements_<alg>`` otherwise.
        """
        suffix = "" if self._ima_alg == "sha1" else f"_{self._ima_alg}"
        return self.dir / f"binary_runtime_measurements{suffix}"

    @property
    def agent_url(self) -> str:
        """The agent's SOAP endpoint (``http://127.0.0.1:PORT/``); its WSDL is at ``?wsdl``."""
        return f"http://127.0.0.1:{self.agent_port}/"

    @property
    def tamper(self) -> str | None:
        """The tamper mode of this host (``None``, ``"event"``, ``"pcr"``)."""
        return self.spec.tamper

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Manufacture (first time), power on and start the agent."""
        if not (self.swtpm.state_dir / "tpm2-00.permall").exists():
            self.ca.manufacture(self.swtpm.state_dir, self.plan.banks, self.name,
                                self.dir / "swtpm_setup.log")
        self.power_on()
        self.start_agent()

    def power_on(self) -> None:
        """Start the swtpm and replay the boot (event log, then IMA) into it."""
        self.swtpm.start()
        try:
            with TpmAccess(self.swtpm.tcti) as tpm:
                tpm.startup(self.plan.startup_locality)
                self._provision_ecc_ek(tpm)
                play(tpm, self.plan, self._ima_extends)
        except SoapAttestError as exc:
            self.swtpm.stop()
            raise SimulationError(f"{self.name}: boot failed: {exc.message}") from exc
        self.eventlog_path.write_bytes(self.plan.served_log)
        if self._ima_raw:
            self.ima_path.write_bytes(self._ima_raw)
        self.boot_count += 1

    def _provision_ecc_ek(self, tpm: TpmAccess) -> None:
        if tpm.nv_read(EK_CERT_NV_INDEX["ecc"]) is not None:
            return
        ek = tpm.ek("ecc")
        key = parse_public(ek.public).public_key()
        der = self.ca.issue_ek_certificate(key, self.name, tpm.info().firmware_version_1)
        tpm.provision_ek_certificate("ecc", der)

    def power_off(self) -> None:
        """Stop the agent, shut the TPM down in order and stop the swtpm."""
        self.stop_agent()
        if self.swtpm.pid is not None:
            try:
                with TpmAccess(self.swtpm.tcti) as tpm:
                    tpm.shutdown()
            except SoapAttestError as exc:
                log.warning("%s: TPM2_Shutdown failed: %s", self.name, exc.message)
        self.swtpm.stop()

    def restart(self) -> None:
        """Reboot: power off, power on (TPM Reset: resetCount + 1), start the agent."""
        self.power_off()
        self.power_on()
        self.start_agent()

    # ------------------------------------------------------------------ agent

    def _write_agent_config(self) -> Path:
        conf = self.dir / "agent.conf"
        conf.write_text(
            "[agent]\n"
            # A restarted agent keeps its port, as a real one would (its URL is registered).
            f"listen = 127.0.0.1:{self.agent_port}\n"
            f"port_file = {self.dir / 'agent.port'}\n"
            f"tcti = {self.swtpm.tcti}\n"
            f"ak_type = {self.spec.ak_type}\n"
            "ak_handle = 0x81010002\n"
            f"eventlog_path = {self.eventlog_path}\n"
            f"ima_path = {self.ima_path}\n"
            f"log_level = {self.agent_log_level}\n",
            encoding="utf-8",
        )
        return conf

    def start_agent(self) -> None:
        """Start the agent process and wait until it listens (no-op if it runs)."""
        if self.agent_pid is not None:
            return
        if self.swtpm.pid is None:
            raise SimulationError(f"{self.name}: the swtpm is not running")
        port_file = self.dir / "agent.port"
        port_file.unlink(missing_ok=True)
        conf = self._write_agent_config()
        env = dict(os.environ)
        root = str(Path(soapattest.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        argv = [sys.executable, "-m", "soapattest.agent.main", "--config", str(conf)]
        agent_log = self.dir / "agent.log"
        self.agent_proc = spawn(argv, agent_log, env=env)
        try:
            wait_for(port_file.exists, AGENT_START_TIMEOUT, f"agent of {self.name}",
                     self.agent_proc, agent_log)
        except SimulationError:
            stop_group(self.agent_proc, timeout=2)
            self.agent_proc = None
            raise
        self.agent_port = int(port_file.read_text().strip())

    def stop_agent(self) -> None:
        """Stop the agent gracefully (SIGTERM)."""
        stop_group(self.agent_proc)
        self.agent_proc = None

    def kill_agent(self) -> None:
        """Kill the agent abruptly (SIGKILL), as a crash would; the swtpm keeps running."""
        stop_group(self.agent_proc, sig=signal.SIGKILL)
        self.agent_proc = None

    @property
    def agent_pid(self) -> int | None:
        """The agent's pid while it runs."""
        p = self.agent_proc
        return p.pid if p is not None and p.poll() is None else None

    # ------------------------------------------------------------------ reporting

    def rss_kib(self) -> dict[str, int]:
        """Resident memory of the swtpm and the agent, KiB."""
        return {
            "swtpm": rss_kib(self.swtpm.pid) if self.swtpm.pid else 0,
            "agent": rss_kib(self.agent_pid) if self.agent_pid else 0,
        }

    def to_json(self) -> dict[str, Any]:
        """Inventory entry of this host."""
        return {
            "name": self.name,
            "agent_url": self.agent_url if self.agent_pid else None,
            "log": self.log_name,
            "banks": list(self.plan.banks),
            "tamper": self.tamper,
            "tampered_event": self.plan.tampered_event,
            "ak_type": self.spec.ak_type,
            "ima": self.ima_name,
            "boot_count": self.boot_count,
            "swtpm_pid": self.swtpm.pid,
            "swtpm_port": self.swtpm.port,
            "agent_pid": self.agent_pid,
            "dir": str(self.dir),
        }
