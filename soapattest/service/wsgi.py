"""WSGI entry points: build the app from a configuration, serve it with gunicorn."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from soapattest.server.config import ServerConfig
from soapattest.server.context import ServerContext, build_context, utc_now
from soapattest.server.keys import load_signing_identity
from soapattest.service.app import build_wsgi
from soapattest.store import Store

log = logging.getLogger("soapattest.service")


def prepare(config: ServerConfig) -> None:
    """Once per deployment start, before workers fork: migrate the database, create the
    signing key if it is generated. Safe to run on several nodes at once."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with Store(config.db_url, busy_timeout_ms=int(config.busy_timeout * 1000)) as store:
        store.upgrade()
    load_signing_identity(
        config.saml_key, config.saml_certificate, config.state_dir, config.saml_issuer, utc_now()
    )


def create_app(config: ServerConfig, ctx: ServerContext | None = None) -> Any:
    """The WSGI application for ``config`` (one per worker process)."""
    context = ctx or build_context(config)
    return build_wsgi(context)


def serve(config: ServerConfig) -> None:
    """Run gunicorn in the foreground with ``config.workers`` workers (blocks)."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{config.listen_host}:{config.listen_port}",
                "workers": config.workers,
                "threads": config.threads,
                "worker_class": "gthread",
                "timeout": max(60, int(config.agent_timeout * 4)),
                "graceful_timeout": 20,
                "keepalive": 5,
                "limit_request_line": 8190,
                "accesslog": "-",
                "errorlog": "-",
                "loglevel": config.log_level.lower(),
                "proc_name": "soapattest",
            }
            # Believe X-Forwarded-Proto only from the configured proxies (none by default).
            options["forwarded_allow_ips"] = config.forwarded_allow_ips
            if config.tls_cert is not None:
                options["certfile"] = str(config.tls_cert)
                options["keyfile"] = str(config.tls_key)
                if config.tls_client_ca is not None:
                    options["ca_certs"] = str(config.tls_client_ca)
                    options["cert_reqs"] = ssl.CERT_REQUIRED
            if "control_socket" in self.cfg.settings:  # gunicorn >= 25.1
                options["control_socket"] = str(config.state_dir.resolve() / "gunicorn.ctl")
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(config)

    prepare(config)
    log.info("serving on %s (%d workers)", config.url, config.workers)
    _Server().run()
