"""An in-process service: the real WSGI app over a real SQLite store, called without HTTP.

The agent port is a caller-supplied object (tests give one that fails the way a
dead agent fails); nothing here stands in for a TPM.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from soapattest.errors import AgentUnreachableError
from soapattest.security.nonces import StoreNonceCache
from soapattest.security.users import ensure_user
from soapattest.security.wssecurity import Authenticator, build_security_header
from soapattest.server.config import ServerConfig
from soapattest.server.context import ServerContext
from soapattest.server.keys import load_signing_identity
from soapattest.service.app import build_wsgi
from soapattest.store import Store

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "urn:soapattest:v1"
ADMIN = ("admin-user", "correct horse battery staple")
READER = ("reader-user", "another long passphrase")


class DeadAgents:
    """An agent port whose every call fails like an agent that is down."""

    def _down(self, *_: Any, **__: Any) -> Any:
        raise AgentUnreachableError("cannot reach the agent: connection refused")

    identity = activate_credential = quote = event_log = ima_log = _down


@dataclass
class Response:
    status: int
    body: bytes

    @property
    def root(self) -> etree._Element:
        return etree.fromstring(self.body)

    @property
    def fault_code(self) -> str | None:
        code = self.root.findtext(f".//{{{SOAP_ENV}}}Fault/faultcode")
        return code.split(":", 1)[-1] if code else None

    @property
    def fault_string(self) -> str:
        return self.root.findtext(f".//{{{SOAP_ENV}}}Fault/faultstring") or ""

    def find(self, path: str) -> etree._Element | None:
        return self.root.find(path.replace("t:", f"{{{NS}}}"))


class InProcessService:
    """The WSGI app of a fresh server (SQLite under ``tmp``)."""

    def __init__(self, tmp: Path, agents: Any | None = None) -> None:
        self.config = ServerConfig(state_dir=tmp / "state")
        self.config.state_dir.mkdir(parents=True)
        store = Store(self.config.db_url)
        store.upgrade()
        signing = load_signing_identity(
            None, None, self.config.state_dir, self.config.saml_issuer, _now()
        )
        self.ctx = ServerContext(
            config=self.config,
            store=store,
            agents=agents or DeadAgents(),
            signing=signing,
            authenticator=Authenticator(nonce_cache=StoreNonceCache(store)),
        )
        now = _now()
        ensure_user(store, *ADMIN, ("admin",), actor="test", now=now)
        ensure_user(store, *READER, ("reader",), actor="test", now=now)
        self.app = build_wsgi(self.ctx)

    def call(
        self,
        body_xml: str,
        *,
        user: tuple[str, str] | None = ADMIN,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """POST ``body_xml`` (over "TLS": PasswordText is allowed) as ``user`` (None: anonymous)."""
        header = ""
        if user is not None:
            sec = build_security_header(user[0], user[1], mode="text")
            header = f"<soapenv:Header>{etree.tostring(sec).decode()}</soapenv:Header>"
        envelope = (
            f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:t="{NS}">'
            f"{header}<soapenv:Body>{body_xml}</soapenv:Body></soapenv:Envelope>"
        ).encode()
        return self.post(envelope, headers=headers)

    def post(self, data: bytes, *, headers: dict[str, str] | None = None) -> Response:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "8080",
            "CONTENT_TYPE": "text/xml; charset=utf-8",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": io.StringIO(),
            "HTTP_HOST": "localhost:8080",
        }
        for key, value in (headers or {}).items():
            environ["HTTP_" + key.upper().replace("-", "_")] = value
        status: list[str] = []
        body = b"".join(self.app(environ, lambda s, h, *a: status.append(s)))
        return Response(int(status[0].split()[0]), body)

    def close(self) -> None:
        self.ctx.close()


def _now() -> Any:
    from soapattest.server.context import utc_now

    return utc_now()
