"""One swtpm process (TPM 2.0 simulator) listening on loopback TCP.

The data port ``p`` and control port ``p + 1`` are what tpm2-tss's swtpm
TCTI expects (``swtpm:host=127.0.0.1,port=p``; it sets the locality through
the control channel). The swtpm is started with ``--flags not-need-init``
and *without* ``startup-clear``: the simulator issues TPM2_Startup itself, at
the locality the event log says (see :mod:`soapattest.sim.boot`).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from soapattest.errors import SimulationError
from soapattest.sim.process import free_port_pair, port_open, spawn, stop_group, wait_for

log = logging.getLogger("soapattest.sim")

START_TIMEOUT = 30.0
_BIND_RETRIES = 5


class Swtpm:
    """A swtpm over a state directory (made by ``swtpm_setup``).

    :meth:`start` picks free ports and waits until it accepts connections;
    :meth:`stop` ends it (SIGTERM to its process group, SIGKILL after a
    timeout). Restarting with the same state is a power cycle: the next
    TPM2_Startup(CLEAR) is a TPM Reset (resetCount + 1).
    """

    def __init__(self, state_dir: Path, log_path: Path) -> None:
        self.state_dir = state_dir
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ctrl_port(self) -> int:
        """The control channel port (data port + 1)."""
        return self.port + 1

    @property
    def tcti(self) -> str:
        """The TCTI string to reach this swtpm through tpm2-tss."""
        return f"swtpm:host=127.0.0.1,port={self.port}"

    @property
    def pid(self) -> int | None:
        """The swtpm's pid while it runs."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        """Start the swtpm; raises :class:`SimulationError` when it does not come up."""
        if self.pid is not None:
            return
        last: SimulationError | None = None
        for _ in range(_BIND_RETRIES):
            port, ctrl = free_port_pair()
            argv = [
                "swtpm", "socket", "--tpm2",
                "--tpmstate", f"dir={self.state_dir}",
                "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
                "--flags", "not-need-init",
                "--log", "level=1",
            ]
            self.proc = spawn(argv, self.log_path)
            self.port = port
            try:
                wait_for(lambda p=port, c=ctrl: port_open(c) and port_open(p),
                         START_TIMEOUT, f"swtpm on port {port}", self.proc, self.log_path)
                return
            except SimulationError as exc:  # most likely a port taken meanwhile: retry
                last = exc
                stop_group(self.proc, timeout=2)
                self.proc = None
        raise last or SimulationError("swtpm did not start")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the swtpm (it saves its state on SIGTERM)."""
        stop_group(self.proc, timeout)
        self.proc = None
