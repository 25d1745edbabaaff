"""Generate the service's WSDL (committed as ``wsdl/soapattest.wsdl``).

``python -m soapattest.service.wsdl > wsdl/soapattest.wsdl`` regenerates it;
``tests/unit/test_service_wsdl.py`` fails when the committed file differs from
what the code generates. The committed file uses :data:`PLACEHOLDER_URL`.
"""

from __future__ import annotations

import sys

from spyne.interface.wsdl import Wsdl11
from spyne.server.wsgi import WsgiApplication

from soapattest.service.app import build_application
from soapattest.wsdl_canonical import canonical_wsdl

PLACEHOLDER_URL = "http://localhost:8080/"


def generate_wsdl(url: str = PLACEHOLDER_URL) -> bytes:
    """The WSDL as served over HTTP, in canonical form, with SOAP address ``url``."""
    app = build_application(None)
    WsgiApplication(app)  # binds the HTTP transport URI, as when serving
    wsdl = Wsdl11(app.interface)
    wsdl.build_interface_document(url)
    return canonical_wsdl(wsdl.get_interface_document(), location=url)


def main() -> None:
    """Write the canonical WSDL to stdout."""
    sys.stdout.buffer.write(generate_wsdl())


if __name__ == "__main__":
    main()
