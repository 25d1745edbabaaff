"""The simulated cluster's TPM manufacturer: swtpm's own local CA and swtpm_setup.

Each cluster directory has its own CA (``swtpm_localca`` with a per-cluster
configuration: state dir, signing key, issuer certificate and serial file all
inside ``<cluster>/ca``), so EK certificates of simulated TPMs chain to a root
the attestation server is configured to trust (:attr:`LocalCa.root_cert`),
through an intermediate (:attr:`LocalCa.intermediate_cert`).

Manufacturing a TPM (:meth:`LocalCa.manufacture`) runs ``swtpm_setup --tpm2
--createek --create-ek-cert --pcr-banks ...``: it creates the RSA 2048 EK
(certificate at NV 0x01c00002) and an ECC NIST P-384 EK (0x01c00016). The
TCG low-range ECC NIST P-256 EK certificate (NV 0x01c0000a), which the agent
reads, is issued by :meth:`LocalCa.issue_ek_certificate` for the P-256 EK the
agent creates from template L-2, and written by the simulator
(:meth:`~soapattest.agent.tpm.TpmAccess.provision_ek_certificate`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from soapattest.errors import SimulationError

_SPEC = ["--tpm-spec-family", "2.0", "--tpm-spec-level", "0", "--tpm-spec-revision", "164",
         "--tpm-manufacturer", "id:00001014", "--tpm-model", "swtpm"]
_TIMEOUT = 120


class LocalCa:
    """A per-cluster swtpm local CA rooted in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self.localca_conf = directory / "swtpm-localca.conf"
        self.localca_options = directory / "swtpm-localca.options"
        self.setup_conf = directory / "swtpm_setup.conf"
        self.localca_conf.write_text(
            f"statedir = {directory}\n"
            f"signingkey = {directory / 'signkey.pem'}\n"
            f"issuercert = {directory / 'issuercert.pem'}\n"
            f"certserial = {directory / 'certserial'}\n",
            encoding="utf-8",
        )
        self.localca_options.write_text(
            "--platform-manufacturer soapattest\n--platform-version 2.1\n"
            "--platform-model simulated-host\n",
            encoding="utf-8",
        )
        tool = shutil.which("swtpm_localca")
        if tool is None:
            raise SimulationError("swtpm_localca is not installed (package swtpm-tools)")
        self.setup_conf.write_text(
            f"create_certs_tool = {tool}\n"
            f"create_certs_tool_config = {self.localca_conf}\n"
            f"create_certs_tool_options = {self.localca_options}\n"
            "active_pcr_banks = sha256\n",
            encoding="utf-8",
        )

    @property
    def root_cert(self) -> Path:
        """PEM root certificate: the trust anchor for EK certificates of this cluster."""
        return self.dir / "swtpm-localca-rootca-cert.pem"

    @property
    def intermediate_cert(self) -> Path:
        """PEM intermediate (issuing) certificate, signed by :attr:`root_cert`."""
        return self.dir / "issuercert.pem"

    def ensure(self) -> None:
        """Create the root and intermediate CA now if they do not exist yet.

        swtpm_localca creates them on its first certificate; this issues one
        throw-away certificate so that the root exists before any host.
        """
        with self._lock:
            if self.root_cert.exists() and self.intermediate_cert.exists():
                return
            key = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
            self._issue(f"x={key.x:064x},y={key.y:064x},id=secp256r1", "bootstrap",
                        "id:20191023")
            if not self.root_cert.exists():
                raise SimulationError(f"swtpm_localca did not create {self.root_cert}")

    def manufacture(self, state_dir: Path, banks: tuple[str, ...], vmid: str,
                    log_path: Path) -> None:
        """``swtpm_setup``: new TPM state with EKs, EK certificates and ``banks`` active.

        Raises :class:`SimulationError` (with the tool's log) when it fails.
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        argv = ["swtpm_setup", "--tpm2", "--tpmstate", str(state_dir), "--createek",
                "--create-ek-cert", "--config", str(self.setup_conf), "--pcr-banks",
                ",".join(banks), "--vmid", vmid, "--overwrite", "--logfile", str(log_path)]
        self._run(argv, "swtpm_setup", log_path)

    def issue_ek_certificate(self, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
                             vmid: str, tpm_version: int) -> bytes:
        """A DER EK certificate for ``public_key`` signed by this CA (swtpm_localca)."""
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            n = public_key.public_numbers()
            size = (public_key.curve.key_size + 7) // 8 * 2
            ek = f"x={n.x:0{size}x},y={n.y:0{size}x},id={public_key.curve.name}"
        else:
            ek = f"{public_key.public_numbers().n:x}"
        return self._issue(ek, vmid, f"id:{tpm_version:08X}")

    def _issue(self, ek: str, vmid: str, tpm_version: str) -> bytes:
        with tempfile.TemporaryDirectory(dir=self.dir, prefix="issue-") as tmp:
            out = Path(tmp)
            log_path = out / "localca.log"
            argv = ["swtpm_localca", "--type", "ek", "--ek", ek, "--dir", str(out), "--vmid",
                    vmid, *_SPEC, "--tpm-version", tpm_version, "--tpm2", "--configfile",
                    str(self.localca_conf), "--optsfile", str(self.localca_options),
                    "--logfile", str(log_path)]
            self._run(argv, "swtpm_localca", log_path)
            cert = out / "ek.cert"
            if not cert.exists():
                raise SimulationError("swtpm_localca wrote no certificate")
            return cert.read_bytes()

    @staticmethod
    def _run(argv: list[str], what: str, log_path: Path) -> None:
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SimulationError(f"{what} failed: {exc}") from exc
        if done.returncode != 0:
            logged = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise SimulationError(
                f"{what} exited with status {done.returncode}: "
                f"{(done.stderr or done.stdout).decode(errors='replace')[-1000:]}{logged}"
            )
