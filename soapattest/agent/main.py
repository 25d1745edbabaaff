"""``soapattest-agent``: run the trust agent (SOAP service next to a TPM).

Start-up: read the configuration (file, then flags), open the TPM, create or
load the AK, read the identity, bind the HTTP port, write the port file, then
serve until SIGTERM or SIGINT, and stop gracefully (in-flight requests are
finished, the TPM context is closed). Exit status: 0 after a clean stop, 2 for
a configuration error, 1 when the TPM, the TLS files or the listening socket
cannot be used.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from soapattest import __version__
from soapattest.agent.config import AgentConfig, load_config
from soapattest.errors import AgentConfigError, SoapAttestError

log = logging.getLogger("soapattest.agent")

# flag -> config key (flags override the file)
_FLAG_KEYS = {
    "listen": "listen",
    "port_file": "port_file",
    "tcti": "tcti",
    "ak_type": "ak_type",
    "ak_handle": "ak_handle",
    "eventlog": "eventlog_path",
    "ima_log": "ima_path",
    "ima_chunk_max": "ima_chunk_max",
    "max_request_bytes": "max_request_bytes",
    "quote_attempts": "quote_attempts",
    "log_level": "log_level",
    "tls_cert": "tls_cert",
    "tls_key": "tls_key",
    "tls_client_ca": "tls_client_ca",
    "allowed_client_cn": "allowed_client_cn",
}


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (every option overrides the config file)."""
    p = argparse.ArgumentParser(
        prog="soapattest-agent",
        description="soapattest trust agent: serves TPM 2.0 quotes, the measured-boot event "
        "log and the IMA list over SOAP 1.1 (namespace urn:soapattest:agent:v1). "
        "Settings come from --config (INI, section [agent]); flags override them.",
        epilog="Example: soapattest-agent --config conf/agent.conf --listen 0.0.0.0:9290. "
        "SIGTERM or SIGINT stops the agent gracefully. The WSDL is served at ?wsdl.",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="INI configuration file")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="listen address (default 127.0.0.1:9290; port 0 picks a free port)")
    p.add_argument("--port-file", metavar="FILE",
                   help="write the bound port number to FILE once listening")
    p.add_argument("--tcti", metavar="NAME:CONF",
                   help="TPM transport, e.g. device:/dev/tpmrm0 (default), "
                   "swtpm:host=127.0.0.1,port=2321, tabrmd:bus_type=system")
    p.add_argument("--ak-type", choices=["ecc", "rsa"],
                   help="attestation key type: ecc (P-256, ECDSA-SHA256, default) or "
                   "rsa (2048, RSASSA-SHA256)")
    p.add_argument("--ak-handle", metavar="HANDLE",
                   help="persistent handle of the AK (default 0x81010002)")
    p.add_argument("--eventlog", metavar="PATH",
                   help="measured-boot event log (default "
                   "/sys/kernel/security/tpm0/binary_bios_measurements)")
    p.add_argument("--ima-log", metavar="PATH",
                   help="binary IMA list (default "
                   "/sys/kernel/security/ima/binary_runtime_measurements)")
    p.add_argument("--ima-chunk-max", metavar="BYTES",
                   help="largest GetImaLog answer in bytes (default 1048576)")
    p.add_argument("--max-request-bytes", metavar="BYTES",
                   help="largest SOAP request accepted (default 65536)")
    p.add_argument("--quote-attempts", metavar="N",
                   help="quotes retried when PCRs change meanwhile (default 3)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level (default INFO)")
    p.add_argument("--tls-cert", metavar="PEM",
                   help="serve HTTPS (TLS 1.2+) with this certificate (chain); needs --tls-key")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    p.add_argument("--tls-client-ca", metavar="PEM",
                   help="require client certificates issued by this CA bundle (mutual TLS): "
                   "only the attestation servers holding one are answered")
    p.add_argument("--allowed-client-cn", metavar="CN[,CN...]",
                   help="also require one of these client certificate subject CNs")
    p.add_argument("--version", action="version", version=f"soapattest-agent {__version__}")
    return p


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """Load ``--config`` and apply the flags given. Raises :class:`AgentConfigError`."""
    overrides = {
        key: str(getattr(args, flag))
        for flag, key in _FLAG_KEYS.items()
        if getattr(args, flag) is not None
    }
    return load_config(args.config, overrides)


def _write_port_file(path: Path, port: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="ascii")
    os.replace(tmp, path)


def run(config: AgentConfig, stop: threading.Event | None = None) -> int:
    """Run the agent until ``stop`` is set (or SIGTERM/SIGINT in the main thread).

    Returns the process exit status.
    """
    import ssl

    from soapattest.agent.backend import AgentBackend
    from soapattest.agent.httpserver import (
        ClientCertGuard,
        RequestGuard,
        make_server,
        serve_in_thread,
    )
    from soapattest.agent.service import build_wsgi_app
    from soapattest.agent.tpm import TpmAccess
    from soapattest.security.tls import server_context

    stop = stop or threading.Event()
    ssl_context = None
    if config.tls_cert is not None and config.tls_key is not None:
        try:
            ssl_context = server_context(config.tls_cert, config.tls_key,
                                         client_ca=config.tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            log.error("cannot load the TLS certificate, key or client CA: %s", exc)
            return 1
    try:
        tpm = TpmAccess(config.tcti, quote_attempts=config.quote_attempts)
    except SoapAttestError as exc:
        log.error("cannot open the TPM: %s", exc.message)
        return 1
    try:
        backend = AgentBackend(config, tpm)
        inner = build_wsgi_app(backend)
        if config.allowed_client_cn:
            inner = ClientCertGuard(inner, config.allowed_client_cn)
        app = RequestGuard(inner, config.max_request_bytes)
        server = make_server(config.host, config.port, app, ssl_context=ssl_context)
    except SoapAttestError as exc:
        log.error("start-up failed: %s: %s", exc.code, exc.message)
        tpm.close()
        return 1
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror or exc)
        tpm.close()
        return 1
    port = server.server_address[1]
    ak = backend.identity.ak
    log.info("AK %s at 0x%08x (%s), banks %s", ak.key_type, ak.handle,
             "created" if ak.created else "loaded", ",".join(backend.active_banks))
    if config.port_file is not None:
        _write_port_file(config.port_file, port)
    host = f"[{config.host}]" if ":" in config.host else config.host
    scheme = "https" if ssl_context is not None else "http"
    if ssl_context is not None:
        log.info("TLS on%s", ", client certificates required" if config.tls_client_ca else "")
    print(f"soapattest-agent listening on {scheme}://{host}:{port}/", flush=True)

    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    thread = serve_in_thread(server)
    try:
        while not stop.wait(0.5):
            if not thread.is_alive():
                log.error("HTTP server thread ended unexpectedly")
                return 1
    finally:
        server.shutdown()
        server.server_close()
        tpm.close()
        log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except AgentConfigError as exc:
        print(f"soapattest-agent: {exc.code}: {exc.message}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Spyne logs every fault with a traceback; the agent logs one line per request instead
    logging.getLogger("spyne.application").setLevel(
        logging.DEBUG if config.log_level == "DEBUG" else logging.CRITICAL
    )
    if config.log_level != "DEBUG":
        # libtss2 prints its own warnings on stderr; the agent logs TPM errors itself
        os.environ.setdefault("TSS2_LOG", "all+NONE")
    sys.exit(run(config))


if __name__ == "__main__":
    main()
