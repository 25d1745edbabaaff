"""The hardened zeep connection under :class:`~soapattest.client.AttestationClient`.

- The WSDL is the one shipped in this package (``soapattest/client/wsdl/``), parsed
  once per process; it is never fetched over the network unless a caller passes
  another location explicitly. The endpoint address is always the caller's URL.
- zeep settings: strict parsing, no huge trees, DTDs/entities/external references
  refused, in the WSDL and in every response.
- One ``requests.Session`` per connection: TLS verification on (or a CA bundle),
  optional client certificate, no proxy/netrc from the environment unless asked.
- WS-Security UsernameToken when a user name is given: PasswordText over https,
  PasswordDigest (nonce + created) otherwise, unless chosen explicitly.
- Every zeep/requests failure is translated by :mod:`soapattest.client.faults`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import zeep
from zeep import exceptions as zx
from zeep.transports import Transport
from zeep.wsdl import Document
from zeep.wsse.username import UsernameToken

from soapattest import __version__
from soapattest.client.faults import translate
from soapattest.errors import InvalidArgumentError, ServerResponseError, SoapAttestError

WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "soapattest.wsdl"
BINDING = "{urn:soapattest:v1}SoapAttest"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024

_documents: dict[str, Document] = {}
_documents_lock = threading.Lock()

# zeep has no (or wrong) annotations: call it through Any-typed names.
_ZeepClient: Any = zeep.Client
_ZeepDocument: Any = Document
_ZeepUsernameToken: Any = UsernameToken
_ZeepTransportError: Any = zx.TransportError
_transport_init: Any = Transport.__init__


def hardened_settings() -> zeep.Settings:
    """zeep settings for an untrusted peer: strict, no DTD, no entities, no external
    references, no huge trees, parsed (never raw) responses."""
    return zeep.Settings(
        strict=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
        raw_response=False,
    )


def _document(location: str, transport: Transport) -> Document:
    """The parsed WSDL at ``location`` (cached per process: it is read-only once parsed)."""
    with _documents_lock:
        doc = _documents.get(location)
        if doc is None:
            doc = _ZeepDocument(location, transport, settings=hardened_settings())
            _documents[location] = doc
        return doc


class HardenedTransport(Transport):
    """zeep's transport, stricter: responses are read incrementally up to a byte cap,
    redirects are not followed (a redirected POST could carry credentials elsewhere),
    a status other than 200 (answer) or 500 (SOAP fault) is refused before parsing,
    and no request or response body is ever logged (it may hold a password)."""

    def __init__(self, session: requests.Session, timeout: float, max_response_bytes: int) -> None:
        _transport_init(self, timeout=timeout, operation_timeout=timeout, session=session)
        self.max_response_bytes = max_response_bytes
        self.session.headers["User-Agent"] = f"soapattest-client/{__version__}"

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        response = self.session.post(
            address,
            data=message,
            headers=headers,
            timeout=self.operation_timeout,
            stream=True,
            allow_redirects=False,
        )
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ServerResponseError(
                        f"the server's answer exceeds {self.max_response_bytes} bytes",
                        status=response.status_code,
                    )
                chunks.append(chunk)
        finally:
            response.close()
        response._content = b"".join(chunks)
        if response.status_code not in (200, 500):
            raise _ZeepTransportError(
                f"HTTP {response.status_code}", status_code=response.status_code
            )
        return response


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How to reach the server.

    ``verify``: ``True`` (system CAs), ``False`` (no verification: never in
    production) or a CA bundle path. ``client_cert``: a PEM file holding
    certificate and key, or a ``(cert, key)`` pair. ``password_digest``:
    ``None`` picks PasswordText for https and PasswordDigest otherwise.
    ``trust_env``: honour proxy/netrc environment variables.
    ``max_response_bytes``: larger answers are refused (ServerResponseError).
    """

    url: str
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    client_cert: str | tuple[str, str] | None = None
    password_digest: bool | None = None
    trust_env: bool = False
    wsdl: str | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; raises InvalidArgumentError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"not an http(s) URL: {url!r}", argument="url")
    return url


class Connection:
    """A zeep client bound to one endpoint, calling operations by name."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.url = check_url(settings.url)
        if not 0 < settings.timeout <= 3600:
            raise InvalidArgumentError(
                "timeout must be within (0, 3600] seconds", argument="timeout"
            )
        self.session = requests.Session()
        self.session.trust_env = settings.trust_env
        self.session.verify = settings.verify
        if settings.client_cert is not None:
            self.session.cert = settings.client_cert
        self.transport = HardenedTransport(
            self.session, settings.timeout, settings.max_response_bytes
        )
        location = settings.wsdl or str(WSDL_PATH)
        try:
            document = _document(location, self.transport)
        except SoapAttestError:
            raise
        except Exception as exc:  # noqa: BLE001 - any WSDL loading failure is one error
            raise translate(exc, "load WSDL", location) from None
        self.zeep = _ZeepClient(
            document,
            wsse=_username_token(settings, self.url),
            transport=self.transport,
            settings=hardened_settings(),
        )
        self.service = self.zeep.create_service(BINDING, self.url)

    def call(self, operation: str, **arguments: Any) -> Any:
        """Call ``operation`` with ``arguments``; return zeep's parsed result.

        Raises the project's exception for a fault (by its code), and
        :class:`ServerUnreachableError`, :class:`ServerResponseError` or
        :class:`InvalidArgumentError` for transport, answer or request problems.
        """
        try:
            return self.service[operation](**arguments)
        except Exception as exc:  # noqa: BLE001 - mapped to the error tree in one place
            raise translate(exc, operation, self.url) from None

    def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        self.session.close()


def _username_token(settings: ConnectionSettings, url: str) -> Any:
    if not settings.username:
        return None
    if settings.password is None:
        raise InvalidArgumentError("a user name was given without a password", argument="password")
    digest = settings.password_digest
    if digest is None:
        digest = urlsplit(url).scheme != "https"
    return _ZeepUsernameToken(
        settings.username, settings.password, use_digest=digest, zulu_timestamp=True
    )
